/* Incremental checkpoints: memory that changes between two checkpoints
 * without being written in place must not be taken from the first image.
 * Phase 1 fills 16 MiB with pseudo-random bytes; the test checkpoints it
 * (a whole image), then lets phase 2 change it in every way the kernel
 * allows: plain writes to a few pages, a page moved over another by
 * mremap, pages zapped by MADV_DONTNEED (one read back as zero, one written
 * again), a page mapped anew at the same address, pages written by a
 * forked child (its copy only) and by read(2) into the buffer. The test
 * checkpoints again (incremental), SIGKILLs, restarts from that image; the
 * hash printed at the end must equal an uninterrupted run's. With
 * "smooth" as its second argument it fills its memory with data that
 * compresses (tests/compression.rs). */
#include "ckpt_test.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define LEN (16u << 20)
#define PG 4096u

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    setvbuf(stdout, NULL, _IONBF, 0);
    unsigned char *a = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED);
    uint64_t *w = (uint64_t *)a;
    /* "smooth" (argv[2]): doubles of a smooth field instead, which
     * compress (the compression tests run this same program). */
    int smooth = argc > 2 && strcmp(argv[2], "smooth") == 0;
    for (size_t i = 0; i < LEN / 8; i++) {
        uint64_t v = next_rand();
        if (smooth) {
            double d = (double)(i % 1021) * 0.25 + (double)(i / 1021) * 1e-3;
            memcpy(&v, &d, 8);
        }
        w[i] = v;
    }
    printf("filled %016llx\n", (unsigned long long)hash_bytes(a, LEN));
    marker("phase1", "ok\n");
    wait_for("go1", 60);

    /* Plain writes. */
    for (int k = 0; k < 8; k++) a[(next_rand() % (LEN / PG)) * PG + 17] ^= 0x5a;
    /* A page moved over another (its bytes change without a write there). */
    CHECK(mremap(a + 100 * PG, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, a + 200 * PG) == a + 200 * PG);
    /* The hole it left, mapped again and written. */
    CHECK(mmap(a + 100 * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
          a + 100 * PG);
    a[100 * PG] = 7;
    /* Zapped pages: one read (zero), one written, the rest left missing. */
    CHECK(madvise(a + 300 * PG, 8 * PG, MADV_DONTNEED) == 0);
    volatile unsigned char r = a[301 * PG];
    (void)r;
    a[302 * PG + 5] = 9;
    /* A page mapped anew over untouched memory, left zero. */
    CHECK(mmap(a + 400 * PG, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
          a + 400 * PG);
    /* A child writes its own copy: ours is unchanged. */
    pid_t kid = fork();
    CHECK(kid >= 0);
    if (kid == 0) {
        memset(a, 0xee, LEN);
        _exit(0);
    }
    CHECK(waitpid(kid, NULL, 0) == kid);
    /* The kernel writes into it. */
    int fd = open("/proc/self/exe", O_RDONLY);
    CHECK(fd >= 0);
    CHECK(read(fd, a + 500 * PG + 100, 64) == 64);
    close(fd);
    /* Memory mapped after the first checkpoint. */
    unsigned char *b = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(b != MAP_FAILED);
    memset(b, 0x33, 64 * PG);

    marker("phase2", "ok\n");
    wait_for("go2", 60);
    printf("changed %016llx %016llx\n", (unsigned long long)hash_bytes(a, LEN), (unsigned long long)hash_bytes(b, 64 * PG));
    /* Go on writing after the restart: the memory is the program's again. */
    for (size_t i = 0; i < LEN / 8; i += 512) w[i] += i;
    printf("after %016llx\n", (unsigned long long)hash_bytes(a, LEN));
    return 0;
}
