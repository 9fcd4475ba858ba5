/* RLIMIT_CPU across a restart: soft 2 s (SIGXCPU), hard 30 s. Each step
 * burns 50 ms of CPU (the test checkpoints at step 19, about 1 s in). At
 * step 25 the program reads its limits, sets them again to the same
 * values and reads them once more; it stops once SIGXCPU came, and says
 * whether it came when its CPU time reached the soft limit. A restarted
 * process's kernel count starts from zero: without ckpt's correction the
 * signal comes a second late (or, if the program sets its limit again,
 * against the kernel's count). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include "checkpoint_window.h"

static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static volatile sig_atomic_t got;
static volatile double at;

static void on_xcpu(int s) {
    (void)s;
    if (!got) at = cpu();
    got = 1;
}

static void limits(const char *when) {
    struct rlimit l;
    getrlimit(RLIMIT_CPU, &l);
    printf("%s: soft %llu hard %llu\n", when, (unsigned long long)l.rlim_cur,
           (unsigned long long)l.rlim_max);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGXCPU, on_xcpu);
    struct rlimit l = {2, 30};
    setrlimit(RLIMIT_CPU, &l);
    limits("start");
    for (int step = 0; !got && step < 100; step++) {
        checkpoint_window(step);
        /* Steps past 30 (1.5 s) are not printed: how many fit before
         * 2 s depends on the CPU the checkpoint itself took. */
        if (step < 30) printf("step %d\n", step);
        if (step == 25) {
            limits("step 25");
            setrlimit(RLIMIT_CPU, &l);
            limits("set again");
        }
        double end = cpu() + 0.05;
        volatile unsigned long x = 0;
        while (!got && cpu() < end)
            for (int i = 0; i < 1000; i++) x += i;
    }
    printf("SIGXCPU %s\n", !got ? "never came"
                           : at < 1.5 ? "came early"
                           : at > 2.6 ? "came late"
                                      : "came when the CPU time reached the soft limit");
    return 0;
}
