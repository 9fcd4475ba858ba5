/* Socket pairs with an end shut down (shutdown(2)) before the checkpoint,
 * some with data still unread. After a restart each end must behave as
 * it did: bytes, then end of file where the writer shut its sending
 * side; EPIPE on a write to a shut-down side; a datagram pair with an
 * end shut down keeps its queued messages (an empty one among them,
 * which the checkpoint cannot queue again fresh: it must say so).
 * Output: what each end reads and writes after the loop. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void drain(const char *name, int fd) {
    char buf[64];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
            printf("%s: recv %s\n", name, errno == EAGAIN ? "would wait" : strerror(errno));
            return;
        }
        printf("%s: %zd bytes '%.*s'\n", name, n, (int)n, buf);
        if (n == 0 && name[0] != 'd')
            return; /* end of file (a stream's) */
    }
}

static void try_send(const char *name, int fd) {
    ssize_t n = send(fd, "z", 1, MSG_DONTWAIT);
    printf("%s: send %s\n", name, n == 1 ? "ok" : strerror(errno));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    int st[2], sq[2], rd[2], dg[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq) ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, rd) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg))
        return 1;
    /* A stream whose writer said it is done: bytes, then end of file. */
    if (write(st[1], "hello", 5) != 5 || shutdown(st[1], SHUT_WR))
        return 1;
    /* Seqpacket: two messages, then the writer shuts both ways. */
    if (send(sq[1], "one", 3, 0) != 3 || send(sq[1], "two", 3, 0) != 3 ||
        shutdown(sq[1], SHUT_RDWR))
        return 1;
    /* A stream whose reader shut its receiving side (bytes already there stay). */
    if (write(rd[1], "kept", 4) != 4 || shutdown(rd[0], SHUT_RD))
        return 1;
    /* Datagrams, an empty one among them; the sender then shut its sending side. */
    if (send(dg[1], "a", 1, 0) != 1 || send(dg[1], "", 0, 0) != 0 || send(dg[1], "b", 1, 0) != 1 ||
        shutdown(dg[1], SHUT_WR))
        return 1;
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    drain("stream", st[0]);
    try_send("stream reader", st[0]);
    try_send("stream writer", st[1]);
    drain("seqpacket", sq[0]);
    try_send("seqpacket reader", sq[0]);
    drain("shut reader", rd[0]);
    try_send("shut reader's peer", rd[1]);
    drain("dgram", dg[0]);
    try_send("dgram sender", dg[1]);
    try_send("dgram receiver", dg[0]);
    return 0;
}
