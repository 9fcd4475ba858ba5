/* Incremental checkpoints that leave regions out of the writer's fork:
 * large private regions that changed little since the previous image
 * have their written pages copied while frozen, the rest taken from the
 * earlier image. Everything a region can go through between two
 * checkpoints without changing its bounds must come back exactly:
 *   A  32 MiB of pseudo-random bytes: a few pages written, some zapped
 *      (MADV_DONTNEED: one read back as zero, one written again, the
 *      rest missing), one page written to all zeros;
 *   B  8 MiB never written after the first checkpoint;
 *   C  8 MiB mostly rewritten (forked as usual);
 *   D  a 1 GiB MAP_NORESERVE reservation with 4 MiB in use, a few pages
 *      written (it must come back NORESERVE: smaps says "nr");
 *   E  4 MiB in small pages (MADV_NOHUGEPAGE), some zapped and not read
 *      before the next checkpoint (reading maps the zero page): such a
 *      page is simply gone, neither written nor there, and must come
 *      back zero, not as the earlier image holds it. Its pages 8-63 are
 *      left out of the hashes until the end.
 * Three checkpoints (phase1: whole, phase2 and phase3: incremental), the
 * test restarts from the third; the hashes printed at the end must equal
 * an uninterrupted run's. */
#include "ckpt_test.h"
#include <stdint.h>
#include <sys/mman.h>

#define MIB (1u << 20)
#define PG 4096u

/* A mapping of its own: a PROT_NONE page after it keeps the kernel from
 * merging it with the next one. */
static unsigned char *region(size_t len, int flags) {
    unsigned char *p = mmap(NULL, len + PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK(mprotect(p + len, PG, PROT_NONE) == 0);
    return p;
}

static void fill(unsigned char *p, size_t len) {
    for (size_t i = 0; i < len / 8; i++) ((uint64_t *)p)[i] = next_rand();
}

/* Whether the mapping at p is MAP_NORESERVE, as smaps says. */
static int noreserve(void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    CHECK(f != NULL);
    char line[512];
    int in = 0, nr = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (unsigned long)p >= a && (unsigned long)p < b;
        } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            nr = strstr(line, " nr") != NULL;
            in = 0;
        }
    }
    fclose(f);
    return nr;
}

static unsigned char *e;

static void report(const char *what, unsigned char *a, unsigned char *b, unsigned char *c, unsigned char *d) {
    printf("%s A %016llx B %016llx C %016llx D %016llx E %016llx\n", what, (unsigned long long)hash_bytes(a, 32 * MIB),
           (unsigned long long)hash_bytes(b, 8 * MIB), (unsigned long long)hash_bytes(c, 8 * MIB),
           (unsigned long long)hash_bytes(d, 4 * MIB),
           (unsigned long long)(hash_bytes(e, 8 * PG) ^ hash_bytes(e + 64 * PG, 4 * MIB - 64 * PG)));
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    setvbuf(stdout, NULL, _IONBF, 0);
    unsigned char *a = region(32 * MIB, 0);
    unsigned char *b = region(8 * MIB, 0);
    unsigned char *c = region(8 * MIB, 0);
    unsigned char *d = region(1024 * MIB, MAP_NORESERVE);
    e = region(4 * MIB, 0);
    CHECK(madvise(e, 4 * MIB, MADV_NOHUGEPAGE) == 0);
    fill(e, 4 * MIB);
    fill(a, 32 * MIB);
    fill(b, 8 * MIB);
    fill(c, 8 * MIB);
    fill(d, 4 * MIB);
    report("filled", a, b, c, d);
    marker("phase1", "ok\n");
    wait_for("go1", 60);

    for (int k = 0; k < 16; k++) a[(next_rand() % (32 * MIB / PG)) * PG + 17] ^= 0x5a;
    CHECK(madvise(a + 300 * PG, 8 * PG, MADV_DONTNEED) == 0);
    volatile unsigned char r = a[301 * PG];
    (void)r;
    a[302 * PG + 5] = 9;
    memset(a + 600 * PG, 0, PG);
    for (size_t i = 0; i < 7 * MIB; i += 64) c[i] ^= 1;
    for (int k = 0; k < 4; k++) d[(next_rand() % (4 * MIB / PG)) * PG + 3] ^= 0x33;
    CHECK(madvise(e + 10 * PG, 3 * PG, MADV_DONTNEED) == 0);
    e[50 * PG] ^= 1;
    report("phase2", a, b, c, d);
    marker("phase2", "ok\n");
    wait_for("go2", 60);

    /* The pages zapped before stay missing; others go now. */
    CHECK(madvise(a + 900 * PG, 4 * PG, MADV_DONTNEED) == 0);
    for (int k = 0; k < 16; k++) a[(next_rand() % (32 * MIB / PG)) * PG + 99] ^= 0xa5;
    a[302 * PG + 6] = 10;
    for (int k = 0; k < 4; k++) d[(next_rand() % (4 * MIB / PG)) * PG + 5] ^= 0x44;
    CHECK(madvise(e + 20 * PG, 2 * PG, MADV_DONTNEED) == 0);
    report("phase3", a, b, c, d);
    marker("phase3", "ok\n");
    wait_for("go3", 60);

    report("restarted", a, b, c, d);
    printf("zapped %d %d %d %d, D noreserve %d, E %016llx\n", a[300 * PG], a[903 * PG], e[11 * PG],
           e[21 * PG], noreserve(d), (unsigned long long)hash_bytes(e, 4 * MIB));
    /* Go on writing: the memory is the program's again. */
    for (size_t i = 0; i < 32 * MIB; i += PG) a[i] += 1;
    report("after", a, b, c, d);
    return 0;
}
