/* Shared memory across a restart: a 4 MiB MAP_SHARED|MAP_ANONYMOUS
 * region, a second view of part of it (mremap with old size 0), a memfd
 * mapped shared with its descriptor kept, an unlinked /dev/shm file mapped
 * shared with its descriptor kept (and a dup of it, read through), and a
 * memfd mapped twice (read-write and read-only) whose descriptor was
 * closed. Each step checks every
 * byte against what the program wrote, writes through one side and reads
 * through the other: after a restart the contents must be there and every
 * pair must still share its pages. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define ANON (4 << 20)
#define MFD (1 << 20)
#define SHM (256 << 10)
#define DBL (64 << 10)

static uint8_t *anon, *dup_view, *mfd_map, *shm_map, *dbl_rw, *dbl_ro;
static int mfd, shm;
/* What each byte should hold (private memory: restored from the fork). */
static uint8_t want_anon[ANON], want_mfd[MFD], want_shm[SHM], want_dbl[DBL];

static int same(const uint8_t *a, const uint8_t *b, size_t n) {
    return memcmp(a, b, n) == 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    anon = mmap(NULL, ANON, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED)
        return 1;
    for (size_t i = 0; i < ANON; i++)
        anon[i] = want_anon[i] = (uint8_t)(i * 31 + 7);
    /* A second view of the region's first 64 KiB. */
    dup_view = mremap(anon, 0, DBL, MREMAP_MAYMOVE);
    if (dup_view == MAP_FAILED)
        return 2;

    mfd = memfd_create("ring", 0);
    if (mfd < 0 || ftruncate(mfd, MFD) != 0)
        return 3;
    mfd_map = mmap(NULL, MFD, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (mfd_map == MAP_FAILED)
        return 4;
    for (size_t i = 0; i < MFD; i++)
        mfd_map[i] = want_mfd[i] = (uint8_t)(i * 13 + 1);

    char name[64];
    snprintf(name, sizeof name, "/ckpt-shared-%d", (int)getpid());
    shm = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (shm < 0 || ftruncate(shm, SHM) != 0)
        return 5;
    shm_map = mmap(NULL, SHM, PROT_READ | PROT_WRITE, MAP_SHARED, shm, 0);
    if (shm_map == MAP_FAILED)
        return 6;
    shm_unlink(name);
    int shm_dup = dup(shm);
    if (shm_dup < 0)
        return 5;
    for (size_t i = 0; i < SHM; i++)
        want_shm[i] = (uint8_t)(i * 7 + 3);
    if (pwrite(shm, want_shm, SHM, 0) != SHM)
        return 7;

    int d = memfd_create("ckpt-double", 0);
    if (d < 0 || ftruncate(d, DBL) != 0)
        return 8;
    dbl_rw = mmap(NULL, DBL, PROT_READ | PROT_WRITE, MAP_SHARED, d, 0);
    dbl_ro = mmap(NULL, DBL, PROT_READ, MAP_SHARED, d, 0);
    if (dbl_rw == MAP_FAILED || dbl_ro == MAP_FAILED)
        return 9;
    close(d);
    for (size_t i = 0; i < DBL; i++)
        dbl_rw[i] = want_dbl[i] = (uint8_t)(i * 5 + 11);

    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        /* Write through one side, read through the other. */
        size_t at = (size_t)step * 1000;
        anon[at]++, want_anon[at]++;
        uint8_t via_dup = dup_view[at];
        mfd_map[at]++, want_mfd[at]++;
        uint8_t via_fd = 0;
        if (pread(mfd, &via_fd, 1, at) != 1)
            return 10;
        uint8_t b = (uint8_t)(want_shm[at] + 1);
        if (pwrite(shm, &b, 1, at) != 1)
            return 11;
        want_shm[at] = b;
        uint8_t via_dup_fd = 0;
        if (pread(shm_dup, &via_dup_fd, 1, at) != 1 || via_dup_fd != b)
            return 12;
        dbl_rw[at]++, want_dbl[at]++;
        printf("step %d: anon %s dup %s | memfd %s fd %s | shm %s map %s | double %s ro %s\n", step,
               same(anon, want_anon, ANON) ? "ok" : "WRONG", via_dup == want_anon[at] ? "shared" : "APART",
               same(mfd_map, want_mfd, MFD) ? "ok" : "WRONG", via_fd == want_mfd[at] ? "shared" : "APART",
               same(shm_map, want_shm, SHM) ? "ok" : "WRONG", shm_map[at] == b ? "shared" : "APART",
               same(dbl_rw, want_dbl, DBL) ? "ok" : "WRONG", dbl_ro[at] == want_dbl[at] ? "shared" : "APART");
        usleep(50000);
    }
    struct stat;
    off_t end = lseek(mfd, 0, SEEK_END);
    printf("memfd size %lld, shm size %lld\n", (long long)end, (long long)lseek(shm, 0, SEEK_END));
    return 0;
}
