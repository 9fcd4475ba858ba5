/* I/O priority is per thread: the main thread puts itself in the idle
 * class, a worker sets best-effort level 4 for itself (ionice does this
 * for a process; databases and backup tools per thread). So is the
 * memory-failure kill policy (PR_MCE_KILL, which databases set): early
 * for the main thread, late for the worker. Each step the main thread
 * prints both threads' values, as each thread reads its own. */
#include <sys/prctl.h>
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

static atomic_int worker_prio = -1;
static atomic_int worker_mce = -1;
static atomic_int stop;

static int get_own(void) { return (int)syscall(SYS_ioprio_get, 1, 0); }

static void *worker(void *arg) {
    (void)arg;
    if (syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 4) != 0)
        perror("ioprio_set worker");
    if (prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_LATE, 0, 0) != 0)
        perror("PR_MCE_KILL worker");
    while (!atomic_load(&stop)) {
        atomic_store(&worker_mce, prctl(PR_MCE_KILL_GET, 0, 0, 0, 0));
        atomic_store(&worker_prio, get_own());
        struct timespec t = {0, 5000000};
        nanosleep(&t, NULL);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (syscall(SYS_ioprio_set, 1, 0, 3 << 13) != 0)
        perror("ioprio_set main");
    if (prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0) != 0)
        perror("PR_MCE_KILL main");
    pthread_t w;
    pthread_create(&w, NULL, worker, NULL);
    while (atomic_load(&worker_prio) < 0) {
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        struct timespec t = {0, 25000000};
        nanosleep(&t, NULL);
        printf("step %d: main %#x, worker %#x; memory-failure kill: main %d, worker %d\n", i,
               get_own(), atomic_load(&worker_prio), prctl(PR_MCE_KILL_GET, 0, 0, 0, 0),
               atomic_load(&worker_mce));
    }
    atomic_store(&stop, 1);
    pthread_join(w, NULL);
    return 0;
}
