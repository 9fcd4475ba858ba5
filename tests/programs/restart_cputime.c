/* CPU-time clocks across a restart. The main thread burns 20 ms of its own
 * CPU time per step (40 steps, idling a second after step 19, when the test
 * checkpoints), a worker burns CPU all along, and a child burned 100 ms and
 * was reaped before step 0. Each step reads every way a program has to ask
 * for CPU time; at the end the program says, in lines that do not depend
 * on timing, whether each count only ever went up, grew by what was burned
 * (not by less, as when a restart counted from zero, nor by more), and
 * whether absolute deadlines on a CPU-time clock (clock_nanosleep, a
 * timer) came when due. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define STEPS 40

static double secs(clockid_t c) {
    struct timespec t;
    if (clock_gettime(c, &t) != 0) return -1;
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double usage(int who) {
    struct rusage r;
    getrusage(who, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

/* What each thread knows it burned, in ns: a count is never less. */
static _Atomic long burned_main, burned_worker;

static void burn(double s, _Atomic long *count) {
    double end = secs(CLOCK_THREAD_CPUTIME_ID) + s;
    volatile unsigned long x = 0;
    while (secs(CLOCK_THREAD_CPUTIME_ID) < end)
        for (int i = 0; i < 1000; i++) x += i;
    if (count) *count += (long)(s * 1e9);
}

static volatile int done;
static double worker_end_clock, worker_end_usage;

static void *worker(void *a) {
    (void)a;
    while (!done) burn(0.005, &burned_worker);
    worker_end_clock = secs(CLOCK_THREAD_CPUTIME_ID);
    worker_end_usage = usage(RUSAGE_THREAD);
    return NULL;
}

/* name, then each step's reading */
struct series {
    const char *name;
    double v[STEPS];
};

enum { PROC, CLOCK, SELF, TIMES, MAIN, WORKER, PID0, THREAD, N };

static int monotone(const double *v) {
    for (int i = 1; i < STEPS; i++)
        if (v[i] < v[i - 1]) return 0;
    return 1;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    long tick = sysconf(_SC_CLK_TCK);
    pid_t kid = fork();
    if (kid == 0) {
        burn(0.1, NULL);
        _exit(0);
    }
    waitpid(kid, NULL, 0);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    clockid_t wclock, pclock;
    pthread_getcpuclockid(th, &wclock);
    clock_getcpuclockid(0, &pclock);
    struct series s[N] = {{"clock_gettime(PROCESS)"}, {"clock()"},       {"getrusage(SELF)"},
                          {"times()"},                {"thread clock"},  {"worker's clock"},
                          {"clock_getcpuclockid(0)"}, {"getrusage(THREAD)"}};
    int nsleep_ok = -1, timer_ok = -1;
    /* each reading is at least what was burned before it */
    int covers[N];
    for (int k = 0; k < N; k++) covers[k] = 1;
    for (int i = 0; i < STEPS; i++) {
        checkpoint_window(i);
        burn(0.02, &burned_main);
        double bm = burned_main / 1e9, bw = burned_worker / 1e9, all = bm + bw;
        struct tms t;
        times(&t);
        s[PROC].v[i] = secs(CLOCK_PROCESS_CPUTIME_ID);
        s[CLOCK].v[i] = (double)clock() / CLOCKS_PER_SEC;
        s[SELF].v[i] = usage(RUSAGE_SELF);
        s[TIMES].v[i] = (double)(t.tms_utime + t.tms_stime) / tick;
        s[MAIN].v[i] = secs(CLOCK_THREAD_CPUTIME_ID);
        s[WORKER].v[i] = secs(wclock);
        s[PID0].v[i] = secs(pclock);
        s[THREAD].v[i] = usage(RUSAGE_THREAD);
        for (int k = 0; k < N; k++) {
            double least = k == MAIN || k == THREAD ? bm : k == WORKER ? bw : all;
            /* times() truncates each count to clock ticks (and adds two
             * such counts after a restart) */
            double slack = k == TIMES ? 4.0 / tick : k == THREAD ? 0.02 : 0.001;
            if (s[k].v[i] < least - slack) covers[k] = 0;
        }
        if (i % 10 == 9) printf("step %d\n", i);
        if (i == 30) {
            /* the worker burns while this thread sleeps on the process's clock */
            struct timespec d;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &d);
            double want = d.tv_sec + d.tv_nsec / 1e9 + 0.1;
            d.tv_nsec += 100000000;
            if (d.tv_nsec >= 1000000000) d.tv_sec++, d.tv_nsec -= 1000000000;
            clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, TIMER_ABSTIME, &d, NULL);
            double got = secs(CLOCK_PROCESS_CPUTIME_ID);
            nsleep_ok = got >= want && got < want + 0.3;
        }
        if (i == 35) {
            timer_t tm;
            struct sigevent ev = {.sigev_notify = SIGEV_NONE};
            timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &tm);
            struct itimerspec its = {0};
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &its.it_value);
            double want = its.it_value.tv_sec + its.it_value.tv_nsec / 1e9 + 0.1;
            its.it_value.tv_nsec += 100000000;
            if (its.it_value.tv_nsec >= 1000000000) its.it_value.tv_sec++, its.it_value.tv_nsec -= 1000000000;
            timer_settime(tm, TIMER_ABSTIME, &its, NULL);
            struct itimerspec left;
            do {
                burn(0.001, &burned_main);
                timer_gettime(tm, &left);
            } while (left.it_value.tv_sec || left.it_value.tv_nsec);
            double got = secs(CLOCK_PROCESS_CPUTIME_ID);
            timer_ok = got >= want && got < want + 0.3;
            timer_delete(tm);
        }
    }
    done = 1;
    pthread_join(th, NULL);
    for (int k = 0; k < N; k++)
        printf("%s only goes up: %d, never below what was burned: %d\n", s[k].name, monotone(s[k].v),
               covers[k]);
    /* nor above: what was burned, and a little for the reading and for
     * ckpt's own threads (not the restart's work) */
    double bm = burned_main / 1e9, bw = burned_worker / 1e9, all = bm + bw, most = 0.3;
    struct tms t0;
    times(&t0);
    double ends[] = {secs(CLOCK_PROCESS_CPUTIME_ID), (double)clock() / CLOCKS_PER_SEC, usage(RUSAGE_SELF),
                     (double)(t0.tms_utime + t0.tms_stime) / tick, secs(pclock)};
    const char *names[] = {s[PROC].name, s[CLOCK].name, s[SELF].name, s[TIMES].name, s[PID0].name};
    for (int k = 0; k < 5; k++)
        printf("%s at the end: what was burned: %d\n", names[k],
               ends[k] >= all - (k == 3 ? 4.0 / tick : 0.001) && ends[k] <= all + most);
    double mc = secs(CLOCK_THREAD_CPUTIME_ID), mu = usage(RUSAGE_THREAD);
    printf("each thread's at the end: what it burned: %d %d %d %d\n", mc >= bm && mc <= bm + most,
           mu >= bm - 0.02 && mu <= bm + most, worker_end_clock >= bw && worker_end_clock <= bw + most,
           worker_end_usage >= bw - 0.02 && worker_end_usage <= bw + most);
    struct tms t;
    times(&t);
    printf("the reaped child's time is kept: %d %d\n", usage(RUSAGE_CHILDREN) >= 0.09,
           t.tms_cutime + t.tms_cstime >= tick / 10 - 1);
    printf("an absolute sleep on the CPU clock woke on time: %d\n", nsleep_ok);
    printf("an absolute CPU-clock timer expired on time: %d\n", timer_ok);
    return 0;
}
