/* Two memfd_secret descriptors across a restart: A empty (as a program
 * holds one before it sizes and maps it), B sized 8192 but not mapped. At
 * step 30 the program maps both and writes and reads through them, and
 * prints what /proc says they are. Before, both came back as ordinary
 * unlinked files (memory mapped from them later not kept from the
 * kernel), without a word. memfd_secret unavailable: says so once. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void use(const char *name, int fd, off_t size) {
    struct stat st;
    fstat(fd, &st);
    printf("%s: size %lld", name, (long long)st.st_size);
    if (size && ftruncate(fd, size)) {
        printf(", ftruncate failed\n");
        return;
    }
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        printf(", mmap failed\n");
        return;
    }
    int zero = p[100] == 0;
    strcpy(p, "hidden");
    char link[64], path[256] = "";
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n > 0 ? n : 0] = 0;
    printf(", zeros %d, reads back %s, is %s\n", zero, p, path);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int a = syscall(SYS_memfd_secret, 0);
    int b = syscall(SYS_memfd_secret, 0);
    if (a < 0 || b < 0 || ftruncate(b, 8192)) {
        printf("no memfd_secret here\n");
        return 0;
    }
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        if (step == 30) {
            use("A", a, 4096);
            use("B", b, 0);
        }
        usleep(20000);
    }
    return 0;
}
