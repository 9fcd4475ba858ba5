/* Guard pages (MADV_GUARD_INSTALL, Linux 6.13) and sealed mappings
 * (mseal, Linux 6.10), in small regions (copied in before the restarted
 * program runs) and in 32 MiB ones (filled by the pager while it runs):
 *   A: 3 pages, the middle one a guard page;
 *   B: 32 MiB of a pattern, two guard pages at 16 MiB;
 *   C: one sealed read-write page;
 *   D: 32 MiB sealed read-write, one page of it written each step;
 *   E: a sealed read-only page (written before it was made read-only);
 *   F: a sealed private read-only mapping of the program's own file.
 * Each step prints, for every guard page and its neighbours, whether the
 * kernel can read it (a write(2) from it: a guard page gives EFAULT),
 * for every sealed region whether mprotect to its own protection is
 * refused (EPERM: sealed), and a checksum of the regions' contents.
 * Before, a restart put back neither: the guard pages read as zeros and
 * the seals were gone. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define PAGE 4096UL
#define BIG (32UL << 20)

static int pfd[2];

/* 'r': the kernel reads the page; 'G': EFAULT (a guard page). */
static char readable(const char *p) {
    char c;
    if (write(pfd[1], p, 1) != 1)
        return errno == EFAULT ? 'G' : '?';
    if (read(pfd[0], &c, 1) != 1)
        return '?';
    return 'r';
}

/* 'S': mprotect to its own protection is refused with EPERM (sealed). */
static char sealed(void *p, size_t len, int prot) {
    if (mprotect(p, len, prot) == 0)
        return '-';
    return errno == EPERM ? 'S' : '?';
}

static uint64_t sum(const unsigned char *p, size_t len, size_t stride) {
    uint64_t s = 0;
    for (size_t i = 0; i < len; i += stride)
        s = s * 31 + p[i];
    return s;
}

static void *anon(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        _exit(1);
    }
    return p;
}

static void seal(void *p, size_t len) {
    if (syscall(462 /* mseal */, p, len, 0) != 0) {
        perror("mseal");
        _exit(1);
    }
}

static void guard(void *p, size_t len) {
    if (madvise(p, len, 102 /* MADV_GUARD_INSTALL */) != 0) {
        perror("MADV_GUARD_INSTALL");
        _exit(1);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    setvbuf(stdout, NULL, _IONBF, 0);
    if (pipe(pfd) != 0)
        return 1;
    unsigned char *a = anon(3 * PAGE), *b = anon(BIG), *c = anon(PAGE), *d = anon(BIG),
                  *e = anon(PAGE);
    memset(a, 'a', 3 * PAGE);
    for (size_t i = 0; i < BIG; i++) {
        b[i] = (unsigned char)(i * 7 + (i >> 12));
        d[i] = (unsigned char)(i * 13 + (i >> 12));
    }
    memset(c, 'c', PAGE);
    memset(e, 'e', PAGE);
    guard(a + PAGE, PAGE);
    guard(b + BIG / 2, 2 * PAGE);
    seal(c, PAGE);
    seal(d, BIG);
    mprotect(e, PAGE, PROT_READ);
    seal(e, PAGE);
    int fd = open(argv[0], O_RDONLY);
    unsigned char *f = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    if (fd < 0 || f == MAP_FAILED) {
        perror("map own file");
        return 1;
    }
    close(fd);
    seal(f, PAGE);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        d[(size_t)step * 97 * PAGE % BIG] += (unsigned char)step;
        c[step] = (unsigned char)step;
        printf("step %d guards A %c%c%c B %c%c%c%c seals C%c D%c E%c F%c sums %llx %llx "
               "%llx %llx %llx %llx\n",
               step, readable((char *)a), readable((char *)a + PAGE),
               readable((char *)a + 2 * PAGE), readable((char *)b + BIG / 2 - PAGE),
               readable((char *)b + BIG / 2), readable((char *)b + BIG / 2 + PAGE),
               readable((char *)b + BIG / 2 + 2 * PAGE), sealed(c, PAGE, PROT_READ | PROT_WRITE),
               sealed(d, BIG, PROT_READ | PROT_WRITE), sealed(e, PAGE, PROT_READ),
               sealed(f, PAGE, PROT_READ), (unsigned long long)sum(a, PAGE, 1),
               (unsigned long long)sum(b, BIG / 2, 61), (unsigned long long)sum(c, PAGE, 1),
               (unsigned long long)sum(d, BIG, 61), (unsigned long long)sum(e, PAGE, 1),
               (unsigned long long)sum(f, PAGE, 1));
        struct timespec ts = {0, 40 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}
