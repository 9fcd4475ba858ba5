/* Thread ids across a restart: each thread notes gettid() when it starts
 * and checks it every step; one holds a recursive mutex and an
 * error-checking mutex across the checkpoint and, afterwards, locks the
 * first again (recursion) and unlocks both: glibc compares the owner tid
 * it stored with the thread's tid, so a changed tid would deadlock or fail.
 * getpid() must not change either. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define N 3
static pid_t start_pid;
static pthread_mutex_t rec, chk;
static int bad[N + 1];

static void steps(int id) {
    pid_t tid = (pid_t)syscall(SYS_gettid);
    for (int i = 0; i < 40; i++) {
        if (syscall(SYS_gettid) != tid || getpid() != start_pid)
            bad[id]++;
        usleep(50000);
    }
}

static void *worker(void *arg) {
    int id = (int)(long)arg;
    if (id == 1) {
        pthread_mutex_lock(&rec);
        pthread_mutex_lock(&chk);
        steps(id);
        int r1 = pthread_mutex_lock(&rec); /* recursion: owner must be us */
        int r2 = pthread_mutex_unlock(&rec);
        int r3 = pthread_mutex_unlock(&rec);
        int r4 = pthread_mutex_unlock(&chk); /* EPERM if the owner tid changed */
        if (r1 || r2 || r3 || r4)
            bad[id] += 100;
    } else {
        steps(id);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    start_pid = getpid();
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&rec, &a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&chk, &a);
    pthread_t t[N];
    for (long i = 1; i <= N; i++)
        pthread_create(&t[i - 1], NULL, worker, (void *)i);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        if (getpid() != start_pid)
            bad[0]++;
        if (i % 10 == 9)
            printf("step %d\n", i);
        usleep(50000);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    int total = 0;
    for (int i = 0; i <= N; i++)
        total += bad[i];
    printf("tids and pid kept: %s\n", total == 0 ? "yes" : "no");
    return 0;
}
