/* Opens "virtual.txt" (which a preloaded library maps to "real.txt") by
 * open and by openat, duplicates a descriptor with dup, dup2 and dup3, and
 * prints what it read and got. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static void show(const char *how, int fd) {
    char buf[64] = {0};
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    printf("%s: fd>=0 %d, read %zd: %s", how, fd >= 0, n, n > 0 ? buf : "\n");
    if (fd >= 0) close(fd);
}

int main(void) {
    show("open", open("virtual.txt", O_RDONLY));
    show("openat", openat(AT_FDCWD, "virtual.txt", O_RDONLY));
    int fd = open("real.txt", O_RDONLY);
    int a = dup(fd) > 0;
    int b = dup2(fd, 40) == 40;
    int c = dup3(fd, 41, O_CLOEXEC) == 41;
    printf("dups: %d %d %d\n", a, b, c);
    return 0;
}
