/* Guard pages (MADV_GUARD_INSTALL, Linux 6.13): the middle page of three
 * faults when touched. The image writer must not read it (a read killed
 * it: "the image writer ended without finishing the image"), and the
 * checkpoint must say that a restart does not install it again. Prints
 * "step N" while it waits. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    char *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 'x', 3 * 4096);
    if (madvise(p + 4096, 4096, 102 /* MADV_GUARD_INSTALL */) != 0) {
        perror("MADV_GUARD_INSTALL");
        return 1;
    }
    for (int i = 0; i < 40; i++) {
        printf("step %d %c%c\n", i, p[0], p[2 * 4096]);
        usleep(40000);
    }
    return 0;
}
