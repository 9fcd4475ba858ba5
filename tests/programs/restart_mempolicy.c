/* NUMA memory policies (numactl --interleave, mbind): the main thread's
 * (MPOL_INTERLEAVE), another thread's own (MPOL_PREFERRED), a small
 * region's (MPOL_BIND) and a 32 MiB region's (MPOL_BIND, one page of it
 * written each step, so an incremental checkpoint leaves it out of its
 * writer's fork). Node 0 only: every machine has it. Each step prints
 * each policy as get_mempolicy reads it; a restart must bring back
 * every one (before, all four came back as the default, silently). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define MPOL_PREFERRED 1
#define MPOL_BIND 2
#define MPOL_INTERLEAVE 3
#define MPOL_F_ADDR (1 << 1)
#define BIG (32UL << 20)

static volatile int thread_mode = -1;

static int policy(void *addr, unsigned long *mask) {
    int mode = -1;
    unsigned long m[16] = {0};
    long r = syscall(SYS_get_mempolicy, &mode, m, 1024, addr, addr ? MPOL_F_ADDR : 0);
    *mask = m[0];
    return r == 0 ? mode : -100;
}

static void *other(void *arg) {
    (void)arg;
    unsigned long node0 = 1, m;
    syscall(SYS_set_mempolicy, MPOL_PREFERRED, &node0, 64);
    for (;;) {
        thread_mode = policy(NULL, &m) * 100 + (int)m;
        usleep(5000);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    unsigned long node0 = 1, m1, m2, m3;
    if (syscall(SYS_set_mempolicy, MPOL_INTERLEAVE, &node0, 64) != 0) {
        perror("set_mempolicy");
        return 1;
    }
    char *small = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *big = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (syscall(SYS_mbind, small, 1 << 20, MPOL_BIND, &node0, 64, 0) != 0 ||
        syscall(SYS_mbind, big, BIG, MPOL_BIND, &node0, 64, 0) != 0) {
        perror("mbind");
        return 1;
    }
    memset(small, 's', 1 << 20);
    memset(big, 'b', BIG);
    pthread_t t;
    pthread_create(&t, NULL, other, NULL);
    while (thread_mode < 0)
        usleep(1000);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        big[(size_t)step * 97 * 4096 % BIG] += 1;
        /* Each policy read before printf (an argument's order of
         * evaluation is unspecified: the mask was read before the call
         * that sets it, stack garbage at step 0, seen failing in CI). */
        int p1 = policy(NULL, &m1), p2 = policy(small, &m2), p3 = policy(big, &m3);
        printf("step %d main %d/%lx thread %d small %d/%lx big %d/%lx\n", step, p1, m1,
               thread_mode, p2, m2, p3, m3);
        struct timespec ts = {0, 40 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}
