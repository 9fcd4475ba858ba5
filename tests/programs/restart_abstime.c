/* Timers set for an absolute wall-clock time (CLOCK_REALTIME with
 * TIMER_ABSTIME / TFD_TIMER_ABSTIME: "at 14:00"), armed at start for 4 s
 * later: a POSIX timer (its signal blocked, taken with sigwaitinfo) and a
 * timerfd. Prints 40 steps 50 ms apart, then waits for both and says
 * whether each fired on time (within 0.5 s of its wall-clock target). A
 * restart after downtime must keep the targets, not the time that was
 * left at the checkpoint. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

static double since(struct timespec t) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (now.tv_sec - t.tv_sec) + (now.tv_nsec - t.tv_nsec) / 1e9;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct timespec target;
    clock_gettime(CLOCK_REALTIME, &target);
    target.tv_sec += 4;
    struct itimerspec its = {{0, 0}, target};
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &s, NULL);
    timer_t t;
    struct sigevent se = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN};
    int tfd = timerfd_create(CLOCK_REALTIME, 0);
    if (timer_create(CLOCK_REALTIME, &se, &t) || timer_settime(t, TIMER_ABSTIME, &its, NULL) ||
        tfd < 0 || timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL)) {
        perror("timers");
        return 1;
    }
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        struct timespec n = {0, 50000000};
        nanosleep(&n, NULL);
    }
    siginfo_t si;
    while (sigwaitinfo(&s, &si) < 0) {
    }
    double late = since(target);
    printf("posix timer: %s\n", late > -0.05 && late < 0.5 ? "on time" : "not on time");
    uint64_t k;
    if (read(tfd, &k, sizeof k) != sizeof k)
        return 2;
    late = since(target);
    printf("timerfd: %s\n", late > -0.05 && late < 0.5 ? "on time" : "not on time");
    return 0;
}
