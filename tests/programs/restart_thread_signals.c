/* Real-time signals queued to one thread (rt_tgsigqueueinfo), not to the
 * process: three SIGRTMIN with values 100..102 to the main thread, two
 * SIGRTMIN+1 with values 7, 8 and one SIGUSR1 (tgkill) to a second thread,
 * all blocked. After step 30 each thread takes its own with sigtimedwait
 * and prints signal, value, code and whether the sender was itself. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void queue_to(pid_t tid, int sig, int value) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = value;
    syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, sig, &si);
}

static void drain(const char *who) {
    sigset_t all;
    sigemptyset(&all);
    sigaddset(&all, SIGRTMIN);
    sigaddset(&all, SIGRTMIN + 1);
    sigaddset(&all, SIGUSR1);
    struct timespec zero = {0, 0};
    siginfo_t si;
    int sig;
    while ((sig = sigtimedwait(&all, &si, &zero)) > 0)
        printf("%s got %d value %d code %d from self %d\n", who, sig, si.si_value.sival_int,
               si.si_code, si.si_pid == getpid());
    fflush(stdout);
}

static pthread_barrier_t queued, step30, drained;
static pid_t other_tid;

static void *other(void *arg) {
    (void)arg;
    other_tid = (pid_t)syscall(SYS_gettid);
    pthread_barrier_wait(&queued);
    pthread_barrier_wait(&step30);
    drain("other");
    pthread_barrier_wait(&drained);
    return NULL;
}

int main(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    sigaddset(&set, SIGRTMIN + 1);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_barrier_init(&queued, NULL, 2);
    pthread_barrier_init(&step30, NULL, 2);
    pthread_barrier_init(&drained, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, other, NULL);
    while (!__atomic_load_n(&other_tid, __ATOMIC_ACQUIRE))
        usleep(1000);
    pid_t me = (pid_t)syscall(SYS_gettid);
    for (int v = 100; v <= 102; v++)
        queue_to(me, SIGRTMIN, v);
    queue_to(other_tid, SIGRTMIN + 1, 7);
    queue_to(other_tid, SIGRTMIN + 1, 8);
    syscall(SYS_tgkill, getpid(), other_tid, SIGUSR1);
    pthread_barrier_wait(&queued);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        fflush(stdout);
        if (step == 30) {
            drain("main");
            pthread_barrier_wait(&step30);
            pthread_barrier_wait(&drained);
        }
        usleep(20000);
    }
    pthread_join(t, NULL);
    return 0;
}
