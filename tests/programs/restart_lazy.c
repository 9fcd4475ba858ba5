/* What a program does to its memory right after a lazy restart, while
 * the pager still fills it (tests slow the fill down with
 * CKPT_TEST_PAGER_SLOW_MS): at "step 20" it drops pages
 * (MADV_DONTNEED), unmaps a range and maps it again, moves a region
 * (mremap), has the kernel copy pages it has not touched into pages it
 * has not touched (a pipe), and forks a child that reads memory nobody
 * touched since the restart. It prints what it finds and hashes; a
 * restarted run must print exactly what an uninterrupted one does.
 * Regions: a (16 MiB), b (8 MiB), c (8 MiB, moved), d (4 MiB shared),
 * f (32 MiB). While a file "pause" exists in its directory it waits at
 * step 19. While a file "hold" exists, it waits at
 * the start of step 20 (having made a file "held"), touching nothing:
 * tests act there while the fill goes on. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (1ul << 20)

static uint64_t x = 88172645463325252ull;
static uint64_t next(void) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

static void fill(unsigned char *p, size_t n) {
    uint64_t *w = (uint64_t *)p;
    for (size_t i = 0; i < n / 8; i++) w[i] = next();
}

static uint64_t hash(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* A second thread drops the first 8 MiB of f, a MiB at a time, while
 * the main thread reads a: faults and removals at once. */
static unsigned char *f_base;
static void *dropper(void *arg) {
    (void)arg;
    for (int i = 0; i < 8; i++)
        if (madvise(f_base + i * MiB, MiB, MADV_DONTNEED) != 0) return (void *)1;
    return NULL;
}

static unsigned char *map(size_t n, int shared) {
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    unsigned char *a = map(16 * MiB, 0), *b = map(8 * MiB, 0), *c = map(8 * MiB, 0);
    unsigned char *d = map(4 * MiB, 1), *f = map(32 * MiB, 0);
    if (!a || !b || !c || !d || !f) return 1;
    fill(a, 16 * MiB);
    fill(b, 8 * MiB);
    fill(c, 8 * MiB);
    fill(d, 4 * MiB);
    fill(f, 32 * MiB);
    for (int step = 0; step < 40; step++) {
        printf("step %d\n", step);
        if (step == 20) {
            if (access("hold", F_OK) == 0) {
                close(creat("held", 0644));
                while (access("hold", F_OK) == 0) usleep(10000);
            }
            /* c moves to a place of our choosing, its contents with it. */
            unsigned char *to = mmap(NULL, 8 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (to == MAP_FAILED) return 7;
            unsigned char *moved = mremap(c, 8 * MiB, 8 * MiB, MREMAP_MAYMOVE | MREMAP_FIXED, to);
            if (moved != to) return 8;
            c = moved;
            printf("c %016llx\n", (unsigned long long)hash(c, 8 * MiB));
            /* Dropped pages read zeros, the rest of a is intact. */
            if (madvise(a + 5 * MiB, 3 * MiB, MADV_DONTNEED) != 0) return 2;
            printf("dropped %s\n", all_zero(a + 5 * MiB, 3 * MiB) ? "zero" : "NOT ZERO");
            /* The kernel copies untouched pages of f into untouched
             * pages of a. */
            int p[2];
            if (pipe(p) != 0) return 3;
            if (write(p[1], f + 20 * MiB + 123, 60000) != 60000) return 4;
            size_t got = 0;
            while (got < 60000) {
                ssize_t n = read(p[0], a + 12 * MiB + got, 60000 - got);
                if (n <= 0) return 5;
                got += n;
            }
            printf("pipe copy %s\n", memcmp(a + 12 * MiB, f + 20 * MiB + 123, 60000) == 0 ? "same" : "DIFFERENT");
            printf("a %016llx\n", (unsigned long long)hash(a, 16 * MiB));
            /* Unmapped and mapped again: zeros there, the rest intact. */
            if (munmap(b + 2 * MiB, 2 * MiB) != 0) return 6;
            void *r = mmap(b + 2 * MiB, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
            printf("mapped again %s\n", r == b + 2 * MiB && all_zero(b + 2 * MiB, 2 * MiB) ? "zero" : "WRONG");
            printf("b %016llx\n", (unsigned long long)hash(b, 8 * MiB));
            /* Faults and removals from two threads at once. */
            f_base = f;
            pthread_t t;
            if (pthread_create(&t, NULL, dropper, NULL) != 0) return 9;
            uint64_t ha = hash(a, 16 * MiB);
            void *dropped = NULL;
            pthread_join(t, &dropped);
            printf("two threads %s a %016llx\n", dropped == NULL && all_zero(f, 8 * MiB) ? "zero" : "WRONG",
                   (unsigned long long)ha);
            /* A child sees what the parent has not touched. */
            fflush(stdout);
            pid_t k = fork();
            if (k == 0) {
                printf("child f %016llx d %016llx\n", (unsigned long long)hash(f, 32 * MiB),
                       (unsigned long long)hash(d, 4 * MiB));
                _exit(0);
            }
            int st = 0;
            waitpid(k, &st, 0);
            printf("child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
        /* Tests checkpoint it here, while the file "pause" exists. */
        if (step == 19)
            while (access("pause", F_OK) == 0) usleep(10000);
        usleep(20000);
    }
    printf("hash %016llx\n", (unsigned long long)(hash(a, 16 * MiB) ^ hash(b, 8 * MiB) ^ hash(c, 8 * MiB) ^
                                                 hash(d, 4 * MiB) ^ hash(f, 32 * MiB)));
    return 0;
}
