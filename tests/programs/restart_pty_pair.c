/* A process holding both ends of two pseudo-terminal pairs of its own
 * (a terminal library's test, an expect-like tool driving itself).
 * Pair A: echo off, canonical, window 40x100; each step writes a line
 * into the master (through a dup of it every other step), reads it from
 * the slave, answers through the slave and reads the answer (with the
 * terminal's \r) from the master. Pair B: raw, holds 7 bytes written into
 * its master that nobody reads (a restart cannot keep them: the
 * checkpoint must say so). Descriptors: A 3 (master) 4 (slave),
 * B 5 (master) 6 (slave), 7 a dup of A's master. */
#define _GNU_SOURCE
#include <pty.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void nap(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
}

static ssize_t read_line(int fd, char *buf, size_t n) {
    size_t have = 0;
    while (have < n - 1) {
        ssize_t k = read(fd, buf + have, n - 1 - have);
        if (k <= 0)
            return -1;
        have += k;
        if (buf[have - 1] == '\n')
            break;
    }
    buf[have] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    return have;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct termios t;
    struct winsize w = {.ws_row = 40, .ws_col = 100};
    int am, as, bm, bs;
    if (openpty(&am, &as, NULL, NULL, &w) || openpty(&bm, &bs, NULL, NULL, NULL)) {
        perror("openpty");
        return 1;
    }
    tcgetattr(as, &t);
    t.c_lflag &= ~(ECHO | ECHONL);
    tcsetattr(as, TCSANOW, &t);
    tcgetattr(bs, &t);
    cfmakeraw(&t);
    tcsetattr(bs, TCSANOW, &t);
    if (write(bm, "unread\n", 7) != 7)
        return 1;
    int dm = dup(am);
    printf("fds %d %d %d %d %d\n", am, as, bm, bs, dm);
    for (int i = 0; i < 60; i++) {
        checkpoint_window(i);
        char msg[64], got[128], back[128];
        int len = snprintf(msg, sizeof msg, "ping %d\n", i);
        if (write(i % 2 ? dm : am, msg, len) != len || read_line(as, got, sizeof got) < 0)
            return 2;
        len = snprintf(msg, sizeof msg, "pong %d\n", i);
        if (write(as, msg, len) != len || read_line(am, back, sizeof back) < 0)
            return 3;
        struct winsize now = {0};
        ioctl(am, TIOCGWINSZ, &now);
        tcgetattr(as, &t);
        printf("step %d: slave got '%s', master got '%s', echo=%d icanon=%d size=%dx%d\n", i,
               got, back, (t.c_lflag & ECHO) != 0, (t.c_lflag & ICANON) != 0, now.ws_row,
               now.ws_col);
        nap(20);
    }
    printf("done\n");
    return 0;
}
