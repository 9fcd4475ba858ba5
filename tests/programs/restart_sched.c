/* Scheduling state of threads: the main thread pinned to CPU 0, a worker
 * pinned to the last CPU with nice 7. Each prints, every 10 steps, what
 * the kernel says about its affinity and nice value; a restart must give
 * both back (the kernel tid changes, the settings must not). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

static int last_cpu;
/* The worker's reports, printed by main after the join (one writer keeps
 * the output order deterministic). */
static char wbuf[4096];
static int wlen;

static void report(char *out, int *len, int cap, const char *who, int step) {
    cpu_set_t s;
    CPU_ZERO(&s);
    sched_getaffinity(0, sizeof s, &s);
    int first = -1;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &s)) {
            first = i;
            break;
        }
    int nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    char line[128];
    int n = snprintf(line, sizeof line, "%s step %d: cpus=%d first=%d nice=%d\n", who, step,
                     CPU_COUNT(&s), first, nice);
    if (out) {
        if (*len + n < cap) {
            memcpy(out + *len, line, n);
            *len += n;
        }
    } else {
        fputs(line, stdout);
    }
}

static void *worker(void *arg) {
    (void)arg;
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(last_cpu, &s);
    sched_setaffinity(0, sizeof s, &s);
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 7);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        if (i % 10 == 9)
            report(wbuf, &wlen, sizeof wbuf, "worker", i);
        usleep(50000);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    last_cpu = (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(0, &s);
    sched_setaffinity(0, sizeof s, &s);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        if (i % 10 == 9)
            report(NULL, NULL, 0, "main", i);
        usleep(50000);
    }
    pthread_join(t, NULL);
    fwrite(wbuf, 1, wlen, stdout);
    printf("done\n");
    return 0;
}
