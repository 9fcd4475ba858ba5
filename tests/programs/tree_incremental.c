/* tree_incremental CTL: incremental checkpoints of a job. A parent and
 * two children each hold 16 MiB of pseudo-random private memory (each its
 * own, from its own seed). Three phases; in phase k (1..3) each process
 * rewrites one page in 64 (phase 1: every page), then tells the parent
 * (a pipe); the parent writes marker "phaseK" once both children did,
 * and every process waits for CTL/goK. After phase 3's go each child
 * sends the parent a checksum of its whole memory over its pipe, the
 * parent prints the three checksums in order, reaps both children and
 * prints their exit statuses (tests/process_trees.rs checkpoints after
 * each phase; the restart from the third must print the same). */
#include "ckpt_test.h"
#include <sys/mman.h>
#include <sys/wait.h>

#ifndef MEM
#define MEM (16u << 20)
#endif
#define PAGE 4096u

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void phase(uint64_t *m, uint64_t *seed, int k) {
    size_t words = MEM / 8, per_page = PAGE / 8;
    for (size_t p = 0; p < words / per_page; p++) {
        if (k > 1 && (p + (size_t)k) % 64)
            continue;
        for (size_t i = 0; i < per_page; i++)
            m[p * per_page + i] = next(seed);
    }
}

static uint64_t sum(const uint64_t *m) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < MEM / 8; i++)
        h = (h ^ m[i]) * 1099511628211ull;
    return h;
}

static void write_all(int fd, const void *b, size_t n) {
    CHECK(write(fd, b, n) == (ssize_t)n);
}

static void read_all(int fd, void *b, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        CHECK(r > 0);
        got += (size_t)r;
    }
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    setvbuf(stdout, NULL, _IONBF, 0);
    int up[2][2];
    pid_t kids[2];
    for (int c = 0; c < 2; c++) {
        CHECK(pipe(up[c]) == 0);
        kids[c] = fork();
        CHECK(kids[c] >= 0);
        if (kids[c] == 0) {
            close(up[c][0]);
            uint64_t *m = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            CHECK(m != MAP_FAILED);
            uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(c + 2);
            for (int k = 1; k <= 3; k++) {
                phase(m, &seed, k);
                write_all(up[c][1], "p", 1);
                char go[8];
                snprintf(go, sizeof go, "go%d", k);
                wait_for(go, 120);
            }
            uint64_t h = sum(m);
            write_all(up[c][1], &h, sizeof h);
            return 10 + c;
        }
        close(up[c][1]);
    }
    uint64_t *m = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int k = 1; k <= 3; k++) {
        phase(m, &seed, k);
        for (int c = 0; c < 2; c++) {
            char b;
            read_all(up[c][0], &b, 1);
        }
        char name[16], go[8];
        snprintf(name, sizeof name, "phase%d", k);
        snprintf(go, sizeof go, "go%d", k);
        marker(name, "pids=%d,%d\n", (int)kids[0], (int)kids[1]);
        wait_for(go, 120);
    }
    printf("parent: %016llx\n", (unsigned long long)sum(m));
    for (int c = 0; c < 2; c++) {
        uint64_t h;
        read_all(up[c][0], &h, sizeof h);
        printf("child %d: %016llx\n", c, (unsigned long long)h);
    }
    for (int c = 0; c < 2; c++) {
        int st;
        CHECK(waitpid(kids[c], &st, 0) == kids[c]);
        printf("child %d exited %d\n", c, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    return 0;
}
