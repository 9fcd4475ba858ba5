/* A POSIX timer made by a raw system call (past ckpt's timer_create
 * wrapper), armed to tick every 50 ms: a checkpoint must be refused (the
 * timer could not come back) and the program must go on unharmed.
 * Prints "ready", then after 1.5 s how many ticks it counted. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t ticks;
static void on_tick(int s) { (void)s; ticks++; }

int main(void) {
    signal(SIGUSR1, on_tick);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    int id = -1;
    if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id) != 0) return 1;
    struct itimerspec its = {{0, 50000000}, {0, 50000000}};
    if (syscall(SYS_timer_settime, id, 0, &its, NULL) != 0) return 1;
    printf("ready\n");
    fflush(stdout);
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += 2;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) != 0) {
    }
    printf("ticked: %d\n", ticks > 20);
    return 0;
}
