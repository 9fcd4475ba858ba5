/* Runs under a limit on its address space (`ulimit -v`, RLIMIT_AS, as
 * shared clusters set it): each step starts and joins a thread (an 8 MiB
 * stack mapping) and maps, fills and unmaps 32 MiB; prints "step N" with
 * a checksum and the limit it runs under. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

static void *work(void *arg) {
    uint64_t *v = arg;
    *v = *v * 6364136223846793005ull + 1442695040888963407ull;
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct rlimit lim;
    getrlimit(RLIMIT_AS, &lim);
    uint64_t v = 1;
    for (int i = 0; i < 60; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, work, &v) != 0) {
            printf("step %d: cannot start a thread\n", i);
            return 1;
        }
        pthread_join(t, NULL);
        size_t len = 32 << 20;
        unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            printf("step %d: cannot map 32 MiB\n", i);
            return 1;
        }
        memset(m, (int)(v & 0xff), len);
        v += m[len - 1];
        munmap(m, len);
        printf("step %d: %016llx, limit %llu MiB\n", i, (unsigned long long)v,
               (unsigned long long)(lim.rlim_cur >> 20));
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}
