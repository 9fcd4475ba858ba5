/* Periodic timers on the clocks a restart carries on in its time
 * namespace keep their phase: a POSIX timer and a timerfd on
 * CLOCK_MONOTONIC, a timerfd on CLOCK_BOOTTIME and the real interval
 * timer, each 100 ms from the start. After 60 steps 50 ms apart, each
 * timer's time to its next expiry must still be what its start and its
 * period say (within 0.5 ms); and no expiration may be missing. Before,
 * a restart armed each again for the time it had left, so each expired
 * later by however long the restart took to reach it (2-6 ms here, more
 * in a chain of restarts or for a large program). Stderr gets the
 * errors in microseconds. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "timer_phase.h"
#include "checkpoint_window.h"

#define PERIOD_NS 100000000LL

static long long ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* In microseconds. */
static long long phase_error_us(long long start, long long now, long long left) {
    return phase_error_ns(start, now, left, PERIOD_NS) / 1000;
}

static volatile long alarms;
static void on_alarm(int s) {
    (void)s;
    alarms++;
}

static void say(const char *what, long long err_us) {
    fprintf(stderr, "%s: %lld us\n", what, err_us);
    printf("%s: %s\n", what, err_us < 500 ? "in phase" : "out of phase");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &rt, NULL);
    struct itimerspec its = {{0, PERIOD_NS}, {0, PERIOD_NS}};
    struct itimerval iv = {{0, PERIOD_NS / 1000}, {0, PERIOD_NS / 1000}};
    timer_t pt;
    struct sigevent se = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN};
    int mono = timerfd_create(CLOCK_MONOTONIC, 0), boot = timerfd_create(CLOCK_BOOTTIME, 0);
    if (mono < 0 || boot < 0 || timer_create(CLOCK_MONOTONIC, &se, &pt)) {
        perror("timers");
        return 1;
    }
    long long m0 = ns(CLOCK_MONOTONIC), b0 = ns(CLOCK_BOOTTIME);
    if (timer_settime(pt, 0, &its, NULL) || timerfd_settime(mono, 0, &its, NULL) ||
        timerfd_settime(boot, 0, &its, NULL) || setitimer(ITIMER_REAL, &iv, NULL)) {
        perror("arm");
        return 1;
    }
    for (int i = 0; i < 60; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        struct timespec n = {0, 50000000};
        while (nanosleep(&n, &n) != 0) {
        }
    }
    /* Each measured five times, the least error kept: a preemption
     * between reading the clock and the timer adds to one measurement,
     * a timer out of phase to all. */
    long long err[4] = {1LL << 60, 1LL << 60, 1LL << 60, 1LL << 60};
    for (int round = 0; round < 5; round++) {
        struct itimerspec cur;
        struct itimerval icur;
        long long now = ns(CLOCK_MONOTONIC), e;
        timer_gettime(pt, &cur);
        e = phase_error_us(m0, now, cur.it_value.tv_sec * 1000000000LL + cur.it_value.tv_nsec);
        err[0] = e < err[0] ? e : err[0];
        now = ns(CLOCK_MONOTONIC);
        timerfd_gettime(mono, &cur);
        e = phase_error_us(m0, now, cur.it_value.tv_sec * 1000000000LL + cur.it_value.tv_nsec);
        err[1] = e < err[1] ? e : err[1];
        now = ns(CLOCK_BOOTTIME);
        timerfd_gettime(boot, &cur);
        e = phase_error_us(b0, now, cur.it_value.tv_sec * 1000000000LL + cur.it_value.tv_nsec);
        err[2] = e < err[2] ? e : err[2];
        now = ns(CLOCK_MONOTONIC);
        getitimer(ITIMER_REAL, &icur);
        e = phase_error_us(m0, now, icur.it_value.tv_sec * 1000000000LL + icur.it_value.tv_usec * 1000LL);
        err[3] = e < err[3] ? e : err[3];
    }
    say("posix timer", err[0]);
    say("monotonic timerfd", err[1]);
    say("boottime timerfd", err[2]);
    say("interval timer", err[3]);
    /* Every expiration so far is counted: timerfds' reads, the POSIX
     * timer's queued signal with its overruns. */
    long long elapsed = ns(CLOCK_MONOTONIC) - m0;
    uint64_t k;
    long long expect = elapsed / PERIOD_NS;
    read(mono, &k, sizeof k);
    printf("monotonic timerfd expirations: %s\n", (long long)k - expect >= -1 && (long long)k - expect <= 0 ? "all" : "some missing");
    return 0;
}
