/* CPUID faulting (arch_prctl ARCH_SET_CPUID 0: a cpuid instruction
 * raises SIGSEGV, as emulators and record/replay tools ask): on in the
 * main thread, off in a second thread made before it was turned on (it
 * is per thread). Each step the main thread runs cpuid (its SIGSEGV
 * handler steps over the two-byte instruction and counts) and prints
 * both threads' ARCH_GET_CPUID and its count. A restart must turn it on
 * again in the main thread only (before, it came back off, silently).
 * Where the machine cannot fault cpuid, it says so in both runs. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define ARCH_GET_CPUID 0x1011
#define ARCH_SET_CPUID 0x1012

static volatile int faults, other_cpuid = -1;

static void segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)si;
    faults++;
    ((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP] += 2;
}

static void *other(void *arg) {
    (void)arg;
    for (;;) {
        other_cpuid = (int)syscall(SYS_arch_prctl, ARCH_GET_CPUID, 0);
        usleep(5000);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa = {0};
    sa.sa_sigaction = segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, other, NULL);
    while (other_cpuid < 0)
        usleep(1000);
    int on = syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) == 0;
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        if (!on) {
            printf("step %d cpuid faulting unsupported here\n", step);
        } else {
            unsigned a = 0, b, c, d;
            __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
            printf("step %d main cpuid allowed %ld other %d faults %d\n", step,
                   syscall(SYS_arch_prctl, ARCH_GET_CPUID, 0), other_cpuid, faults);
        }
        struct timespec ts = {0, 40 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}
