/* File locks across a restart: an fcntl write lock on bytes 10-29 and a
 * read lock from byte 100 to the end of `data`, an flock on `flocked`, an
 * OFD lock on bytes 0-4 of `ofd`. After step 19 it idles a second (the
 * test checkpoints then). At the end a child process checks that each
 * lock is still held (by its parent): after a restart the locks must have
 * been taken again. Output must match an uninterrupted run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#include "checkpoint_window.h"

static int conflicts(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (fcntl(fd, cmd, &fl) != 0) return -1;
    return fl.l_type != F_UNLCK;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int data = open("data", O_RDWR | O_CREAT, 0644);
    int fl = open("flocked", O_RDWR | O_CREAT, 0644);
    int ofd = open("ofd", O_RDWR | O_CREAT, 0644);
    struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 20};
    struct flock r = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 0};
    struct flock o = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 5};
    printf("locks taken: %d %d %d %d\n", fcntl(data, F_SETLK, &w), fcntl(data, F_SETLK, &r),
           flock(fl, LOCK_EX | LOCK_NB), fcntl(ofd, F_OFD_SETLK, &o));
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(30000);
    }
    pid_t kid = fork();
    if (kid == 0) {
        int d = open("data", O_RDWR), f = open("flocked", O_RDWR), x = open("ofd", O_RDWR);
        printf("write lock 10-29 held: %d\n", conflicts(d, F_GETLK, F_RDLCK, 15, 1));
        printf("bytes 30-99 free: %d\n", !conflicts(d, F_GETLK, F_WRLCK, 30, 70));
        printf("read lock 100- held: %d\n", conflicts(d, F_GETLK, F_WRLCK, 5000, 1));
        printf("flock held: %d\n", flock(f, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK);
        printf("ofd lock held: %d\n", conflicts(x, F_OFD_GETLK, F_WRLCK, 0, 1));
        _exit(0);
    }
    waitpid(kid, NULL, 0);
    return 0;
}
