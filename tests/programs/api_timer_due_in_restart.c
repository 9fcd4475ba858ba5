/* The real interval timer (every 50 ms) is due a few milliseconds after
 * the program checkpoints itself: the restart outlasts that, so the
 * restarted program's timer has an expiry behind it before it runs
 * again. It must have fired there (one SIGALRM more, none missing) and
 * go on in phase from it. Before, it was armed to fire at once and went
 * on from the restart's own moment: out of phase by however long the
 * restart outlasted its expiry (CI, two busy cores: 'interval timer: out
 * of phase' in one run of three). Stderr gets the checkpoint call's
 * result and the phase error in microseconds. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "ckpt.h"
#include "timer_phase.h"

#define PERIOD_NS 50000000LL

static long long ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long left_ns(void) {
    struct itimerval v;
    getitimer(ITIMER_REAL, &v);
    return v.it_value.tv_sec * 1000000000LL + v.it_value.tv_usec * 1000LL;
}

static volatile long alarms;
static void on_alarm(int s) {
    (void)s;
    alarms++;
}

static void sleep_ms(long ms) {
    struct timespec n = {0, ms * 1000000L};
    while (nanosleep(&n, &n) != 0) {
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    struct itimerval iv = {{0, PERIOD_NS / 1000}, {0, PERIOD_NS / 1000}};
    long long m0 = ns();
    setitimer(ITIMER_REAL, &iv, NULL);
    for (int i = 0; i < 10; i++) {
        printf("step %d\n", i);
        sleep_ms(20);
    }
    /* Just before an expiry: 1.5 to 2 ms ahead (a restart here takes
     * about 3 ms of the program's clock to reach its timers). */
    while (left_ns() < 1500000 || left_ns() >= 2000000) {
    }
    char out[4096];
    long long called = ns();
    int r = ckpt_active() ? ckpt_checkpoint(NULL, out, sizeof out) : CKPT_FAILED;
    /* Expiries while the program could not take their signal (kept as one
     * pending SIGALRM by the kernel, as for a stopped program): on this
     * clock, the checkpoint and the restart. */
    long long unseen = (ns() - m0) / PERIOD_NS - (called - m0) / PERIOD_NS;
    if (r == CKPT_WRITTEN) {
        fprintf(stderr, "checkpoint written: %s\n", out);
        for (;;)
            pause();
    }
    if (r == CKPT_RESTARTED)
        fprintf(stderr, "restarted\n");
    for (int i = 10; i < 20; i++) {
        printf("step %d\n", i);
        sleep_ms(20);
    }
    /* The least of five measurements: a preemption between reading the
     * clock and the timer adds to one, a timer out of phase to all. */
    long long err = 1LL << 60;
    for (int round = 0; round < 5; round++) {
        long long now = ns(), left = left_ns();
        long long e = phase_error_ns(m0, now, left, PERIOD_NS);
        err = e < err ? e : err;
    }
    fprintf(stderr, "phase error: %lld us\n", err / 1000);
    printf("interval timer: %s\n", err < 500000 ? "in phase" : "out of phase");
    /* Each expiry gave one SIGALRM (the handler runs at once), but those
     * the program could not take share one. Counted mid-period, where no
     * signal is on its way. */
    while (left_ns() < 20000000 || left_ns() >= 30000000) {
    }
    long long expect = (ns() - m0) / PERIOD_NS, got = alarms;
    long long shared = unseen > 1 ? unseen - 1 : 0;
    printf("alarms: %s\n", got <= expect && got >= expect - shared ? "all" : "not one each");
    if (got > expect || got < expect - shared)
        fprintf(stderr, "alarms: %lld, expiries: %lld\n", got, expect);
    return 0;
}
