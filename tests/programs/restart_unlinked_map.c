/* Private mappings of files no path leads to: an unlinked file mapped
 * read-only (its descriptor closed), another mapped read-write with one
 * page written, and a memfd mapped read-only with its descriptor closed.
 * Their clean pages are the file's, which a restart must bring back
 * (they are not in the program's anonymous memory). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "checkpoint_window.h"

static uint8_t *map_unlinked(const char *name, size_t size, size_t maplen, int prot, uint8_t seed) {
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return NULL;
    uint8_t buf[4096];
    for (size_t off = 0; off < size; off += sizeof buf) {
        size_t n = size - off < sizeof buf ? size - off : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)((off + i) * seed + 1);
        if (write(fd, buf, n) != (ssize_t)n)
            return NULL;
    }
    if (seed == 3)
        memcpy(buf, "hello", 5), pwrite(fd, buf, 5, 0);
    uint8_t *p = mmap(NULL, maplen, prot, MAP_PRIVATE, fd, 0);
    close(fd);
    unlink(name);
    return p == MAP_FAILED ? NULL : p;
}

static unsigned long sum(const uint8_t *p, size_t n) {
    unsigned long s = 0;
    for (size_t i = 0; i < n; i++)
        s = s * 31 + p[i];
    return s;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    /* 10000 bytes mapped over 16 KiB: the last page lies past the end. */
    uint8_t *ro = map_unlinked("unlinked-ro.dat", 10000, 16384, PROT_READ, 3);
    uint8_t *rw = map_unlinked("unlinked-rw.dat", 8192, 8192, PROT_READ | PROT_WRITE, 5);
    int m = memfd_create("private-view", 0);
    uint8_t page[8192];
    for (size_t i = 0; i < sizeof page; i++)
        page[i] = (uint8_t)(i * 11 + 2);
    if (!ro || !rw || m < 0 || write(m, page, sizeof page) != sizeof page)
        return 1;
    uint8_t *mv = mmap(NULL, sizeof page, PROT_READ, MAP_PRIVATE, m, 0);
    close(m);
    if (mv == MAP_FAILED)
        return 2;
    rw[4096] = 'W'; /* page 1 is the program's own copy; page 0 the file's */
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        rw[4097 + step] = (uint8_t)step;
        printf("step %d: ro %.5s %lu | rw %lu %lu | memfd %lu\n", step, (const char *)ro, sum(ro, 10000),
               sum(rw, 4096), sum(rw + 4096, 4096), sum(mv, sizeof page));
        usleep(50000);
    }
    return 0;
}
