/* A file whose name itself ends in " (deleted)" (the kernel's mark for a
 * removed file in /proc/self/fd) is written before and after the
 * checkpoint, then read back by its name: it holds both lines. Taken for
 * a removed file, it came back as an anonymous copy and the second line
 * never reached the real file. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    char dir[64], path[96];
    snprintf(dir, sizeof dir, "/tmp/ckpt-deleted-name-%d", getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/notes (deleted)", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0)
        return 1;
    write(fd, "first\n", 6);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        fflush(stdout);
        usleep(20000);
    }
    write(fd, "second\n", 7);
    close(fd);
    char buf[64] = {0};
    int r = open(path, O_RDONLY);
    ssize_t n = read(r, buf, sizeof buf - 1);
    printf("the file holds %zd bytes: %s", n, buf);
    unlink(path);
    rmdir(dir);
    return 0;
}
