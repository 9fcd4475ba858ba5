/* POSIX timers whose signal is pending (blocked) at the checkpoint: a
 * periodic one (every millisecond, SIGRTMIN+1) and a one-shot one
 * (SIGRTMIN). The checkpoint must say that the periodic one's signal can
 * come twice (it takes queued signals to read them and puts copies back,
 * and the timer queues its own again at its next expiry); the one-shot
 * timer never fires again and is not named. Prints "step N" while it
 * waits. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    sigaddset(&s, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    timer_t once, often;
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGRTMIN;
    if (timer_create(CLOCK_MONOTONIC, &ev, &once) != 0)
        return 1;
    ev.sigev_signo = SIGRTMIN + 1;
    if (timer_create(CLOCK_MONOTONIC, &ev, &often) != 0)
        return 1;
    struct itimerspec one = {{0, 0}, {0, 1000000}}, each = {{0, 1000000}, {0, 1000000}};
    timer_settime(once, 0, &one, NULL);
    timer_settime(often, 0, &each, NULL);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    return 0;
}
