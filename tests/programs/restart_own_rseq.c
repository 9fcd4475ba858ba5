/* An rseq area the program registers itself (run with
 * GLIBC_TUNABLES=glibc.pthread.rseq=0, so glibc registers none): the main
 * thread and a second thread each register their own area with a
 * signature of their own, by the raw system call. Every step each asks
 * the kernel whether exactly that area is registered (registering it
 * again answers EBUSY only for the same area, length and signature) and
 * whether the kernel keeps its cpu_id up to date. A restart must register
 * both again. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

struct area {
    uint32_t cpu_id_start;
    uint32_t cpu_id;
    uint64_t rseq_cs;
    uint32_t flags;
    uint32_t pad[3];
} __attribute__((aligned(32)));

static __thread struct area mine = {.cpu_id = (uint32_t)-1};
static volatile const char *thread_state = "?";
static volatile int stop;

static int do_register(uint32_t sig) {
    return (int)syscall(SYS_rseq, &mine, sizeof mine, 0, sig);
}

/* "registered" when exactly this area is, with a live cpu_id. */
static const char *state(uint32_t sig) {
    int r = do_register(sig);
    if (r == 0) {
        /* Not registered: leave it so, every later step says so too. */
        syscall(SYS_rseq, &mine, sizeof mine, 1 /* RSEQ_FLAG_UNREGISTER */, sig);
        return "NOT registered";
    }
    if (errno != EBUSY)
        return errno == EINVAL ? "another area registered" : "other signature";
    return (int32_t)mine.cpu_id >= 0 ? "registered" : "registered, cpu_id unset";
}

static void *second(void *arg) {
    (void)arg;
    if (do_register(0x0badf00d) != 0) {
        thread_state = "cannot register";
        return NULL;
    }
    while (!stop) {
        thread_state = state(0x0badf00d);
        usleep(5000);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (do_register(0x53053053 ^ 0xffff) != 0) {
        printf("cannot register rseq: %d (glibc's own registered? run with "
               "GLIBC_TUNABLES=glibc.pthread.rseq=0)\n", errno);
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, second, NULL);
    usleep(20000);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d: main %s, second %s\n", step, state(0x53053053 ^ 0xffff), thread_state);
        usleep(50000);
    }
    stop = 1;
    pthread_join(t, NULL);
    return 0;
}
