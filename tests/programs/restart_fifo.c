/* Named FIFOs holding bytes at the checkpoint:
 * - one opened read-write (non-blocking), bytes written and not read; its
 *   path stays: it is reopened by path, and its bytes must be there;
 * - one opened read-only and write-only, bytes written, then its path
 *   unlinked: it must come back (as a pipe) with its bytes, its ends still
 *   connected, end of file once the write end is closed;
 * - one opened read-write alone, bytes written, path unlinked.
 * Output: what each read and write gives after the loop. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void get(const char *name, int fd) {
    char buf[64] = {0};
    ssize_t r = read(fd, buf, sizeof buf - 1);
    printf("%s: read %zd '%s'%s\n", name, r, r > 0 ? buf : "",
           r < 0 ? (errno == EAGAIN ? " EAGAIN" : " error") : "");
}

static void put(const char *name, int fd, const char *s) {
    ssize_t r = write(fd, s, strlen(s));
    printf("%s: write %zd%s\n", name, r, r < 0 ? " error" : "");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    char dir[] = "/tmp/ckpt-fifo-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char named[128], gone[128], alone[128];
    snprintf(named, sizeof named, "%s/named", dir);
    snprintf(gone, sizeof gone, "%s/gone", dir);
    snprintf(alone, sizeof alone, "%s/alone", dir);
    if (mkfifo(named, 0600) || mkfifo(gone, 0600) || mkfifo(alone, 0600))
        return 1;
    int a = open(alone, O_RDWR | O_NONBLOCK);
    if (a < 0 || unlink(alone))
        return 1;
    put("alone fill", a, "alone bytes");
    int rw = open(named, O_RDWR | O_NONBLOCK);
    int r = open(gone, O_RDONLY | O_NONBLOCK);
    int w = open(gone, O_WRONLY);
    if (rw < 0 || r < 0 || w < 0)
        return 1;
    put("named fill", rw, "named bytes");
    put("gone fill", w, "unlinked bytes");
    if (unlink(gone))
        return 1;
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    get("named", rw);
    get("named again", rw);
    get("gone", r);
    put("gone", w, "more");
    get("gone again", r);
    close(w);
    get("gone after close", r);
    get("alone", a);
    put("alone", a, "again");
    get("alone again", a);
    unlink(named);
    rmdir(dir);
    return 0;
}
