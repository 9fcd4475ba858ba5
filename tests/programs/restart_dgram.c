/* Datagram and seqpacket socket pairs with several messages queued each
 * way at the checkpoint (of different sizes, one empty, one larger than a
 * page; at one end an empty one first): every message must come back, in
 * order, each with its boundary.
 * Output: each message read after the loop (length and a checksum). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "checkpoint_window.h"

static char big[10000];

static void fill(const char *name, int fd, int empty_first) {
    if (empty_first && send(fd, "", 0, 0) != 0)
        printf("%s: empty send failed\n", name);
    const char *msgs[] = {"first", "", "third message"};
    for (int i = 0; i < 3; i++)
        if (send(fd, msgs[i], strlen(msgs[i]), 0) != (ssize_t)strlen(msgs[i]))
            printf("%s: send %d failed\n", name, i);
    if (send(fd, big, sizeof big, 0) != (ssize_t)sizeof big)
        printf("%s: big send failed\n", name);
    if (send(fd, "last", 4, 0) != 4)
        printf("%s: send last failed\n", name);
}

static void drain(const char *name, int fd) {
    for (;;) {
        static char buf[20000];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
            printf("%s: %s\n", name, errno == EAGAIN ? "no more" : "error");
            return;
        }
        unsigned sum = 0;
        for (ssize_t i = 0; i < n; i++)
            sum = sum * 31 + (unsigned char)buf[i];
        printf("%s: message of %zd bytes, sum %u\n", name, n, sum);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    for (unsigned i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7 + 3);
    int d[2], s[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, d) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, s))
        return 1;
    fill("dgram a->b", d[0], 1);
    fill("dgram b->a", d[1], 0);
    fill("seqpacket a->b", s[0], 1);
    fill("seqpacket b->a", s[1], 0);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    drain("dgram at b", d[1]);
    drain("dgram at a", d[0]);
    drain("seqpacket at b", s[1]);
    drain("seqpacket at a", s[0]);
    return 0;
}
