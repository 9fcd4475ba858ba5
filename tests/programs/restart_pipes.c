/* Pipes whose ends are not where pipe() put them:
 * - a read end whose write end was closed, with bytes in it: the bytes,
 *   then end of file;
 * - a write end whose read end was closed: EPIPE;
 * - a pipe whose read end number was taken over by another pipe's read
 *   end (dup2): the two must not come back cross-wired;
 * - a pipe with a second, non-blocking read end opened through
 *   /proc/self/fd (another open file of the same pipe);
 * - a packet pipe (O_DIRECT) holding three packets and a 5000-byte write
 *   (two packets: one page, then the rest), each read gives one;
 * - a pipe holding two packets, then plain bytes written once O_DIRECT
 *   was turned off (read 4 bytes at a time: a packet's rest is dropped,
 *   plain bytes are not);
 * - a packet pipe holding one packet, read together with one written
 *   after the restart (a packet is read alone).
 * Bytes are written into each before the checkpoint and read after. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void get(const char *name, int fd, size_t n) {
    char buf[64] = {0};
    ssize_t r = read(fd, buf, n);
    printf("%s: read %zd '%s'%s\n", name, r, r > 0 ? buf : "",
           r < 0 ? (errno == EAGAIN ? " EAGAIN" : errno == EBADF ? " EBADF" : " error") : "");
}

static void put(const char *name, int fd, const char *s) {
    ssize_t r = write(fd, s, strlen(s));
    printf("%s: write %zd%s\n", name, r,
           r < 0 ? (errno == EPIPE ? " EPIPE" : errno == EBADF ? " EBADF" : " error") : "");
}

/* Every read of non-blocking `fd` until it is empty: each one's length
 * and first bytes. */
static void packets(const char *name, int fd, size_t n) {
    char buf[8192];
    ssize_t r;
    while ((r = read(fd, buf, n)) > 0)
        printf("%s: read %zd '%.*s'\n", name, r, (int)(r < 12 ? r : 12), buf);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    int lone_r[2], lone_w[2], c[2], d[2], e[2];
    if (pipe(lone_r) || pipe(lone_w) || pipe(c) || pipe(d) || pipe(e))
        return 1;
    /* Lone read end, with bytes. */
    put("lone-r fill", lone_r[1], "bytes");
    close(lone_r[1]);
    /* Lone write end. */
    close(lone_w[0]);
    /* d's read end takes c's read end number. */
    put("c fill", c[1], "for c");
    put("d fill", d[1], "for d");
    if (dup2(d[0], c[0]) != c[0])
        return 1;
    /* A second read end of e, non-blocking. */
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", e[0]);
    int e2 = open(p, O_RDONLY | O_NONBLOCK);
    if (e2 < 0)
        return 1;
    put("e fill", e[1], "shared");
    /* Packets. */
    int f[2], g[2], h[2];
    if (pipe2(f, O_DIRECT | O_NONBLOCK) || pipe2(g, O_DIRECT | O_NONBLOCK) ||
        pipe2(h, O_DIRECT | O_NONBLOCK))
        return 1;
    put("h fill", h[1], "solo");
    static char big[5000];
    memset(big, 'B', sizeof big);
    put("f fill", f[1], "one");
    put("f fill", f[1], "three");
    put("f fill", f[1], "seventeen");
    printf("f fill big: write %zd\n", write(f[1], big, sizeof big));
    put("g fill", g[1], "p1");
    put("g fill", g[1], "p2");
    fcntl(g[1], F_SETFL, O_NONBLOCK);
    put("g fill", g[1], "plain");
    put("g fill", g[1], "more");
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    get("lone-r", lone_r[0], 63);
    get("lone-r again", lone_r[0], 63);
    put("lone-w", lone_w[1], "x");
    get("c[0] (d's read end)", c[0], 63);
    put("c[1]", c[1], "y");
    put("d[1]", d[1], "more");
    get("d[0]", d[0], 63);
    get("e[0]", e[0], 3);
    get("e2", e2, 63);
    get("e2 again", e2, 63);
    packets("f", f[0], 8192);
    put("f after", f[1], "ab");
    put("f after", f[1], "cd");
    packets("f", f[0], 8192);
    packets("g", g[0], 4);
    put("h after", h[1], "x");
    packets("h", h[0], 8192);
    return 0;
}
