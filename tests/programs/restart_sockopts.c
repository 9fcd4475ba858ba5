/* Socket options across a restart: a socket pair with enlarged buffers
 * holding more unread bytes than default buffers take, a TCP listener with
 * TCP_NODELAY, keep-alive settings, SO_LINGER, timeouts and a smaller
 * receive buffer. After step 30 it prints each option and reads the pair's
 * bytes back; the output must equal an uninterrupted run's. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "checkpoint_window.h"

static int geti(int fd, int level, int name) {
    int v = -1;
    socklen_t l = sizeof v;
    if (getsockopt(fd, level, name, &v, &l) != 0) return -1;
    return v;
}

int main(void) {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0) return 1;
    int big = 400000;
    setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sp[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    fcntl(sp[0], F_SETFL, O_NONBLOCK);
    /* More than a default buffer holds (a bit over 200 KB here). */
    static char chunk[4096];
    size_t sent = 0;
    for (int i = 0; i < 90; i++) {
        memset(chunk, 'a' + i % 26, sizeof chunk);
        ssize_t n = write(sp[0], chunk, sizeof chunk);
        if (n <= 0) break;
        sent += (size_t)n;
    }
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1, idle = 77, intvl = 11, cnt = 5, small = 8192;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(l, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(l, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(l, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(l, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct linger lg = {1, 3};
    setsockopt(l, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct timeval tv = {2, 500000};
    setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* (Policy routing's mark: CAP_NET_ADMIN; 0 without it, alike in both runs.) */
    int mark = 1234;
    setsockopt(l, SOL_SOCKET, SO_MARK, &mark, sizeof mark);
    int u = socket(AF_INET6, SOCK_DGRAM, 0), tclass = 0x28;
    setsockopt(u, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof tclass);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 4) != 0) return 2;
    for (int step = 0; step <= 30; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        fflush(stdout);
        usleep(20000);
    }
    printf("sent %s\n", sent > 300000 ? "more than default buffers" : "too little");
    printf("pair sndbuf %d rcvbuf %d\n", geti(sp[0], SOL_SOCKET, SO_SNDBUF), geti(sp[1], SOL_SOCKET, SO_RCVBUF));
    printf("nodelay %d keepalive %d idle %d intvl %d cnt %d rcvbuf %d\n", geti(l, IPPROTO_TCP, TCP_NODELAY),
           geti(l, SOL_SOCKET, SO_KEEPALIVE), geti(l, IPPROTO_TCP, TCP_KEEPIDLE), geti(l, IPPROTO_TCP, TCP_KEEPINTVL),
           geti(l, IPPROTO_TCP, TCP_KEEPCNT), geti(l, SOL_SOCKET, SO_RCVBUF));
    socklen_t ll = sizeof lg;
    getsockopt(l, SOL_SOCKET, SO_LINGER, &lg, &ll);
    socklen_t tl = sizeof tv;
    getsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl);
    printf("linger %d %d rcvtimeo %ld.%06ld\n", lg.l_onoff, lg.l_linger, (long)tv.tv_sec, (long)tv.tv_usec);
    printf("mark %d tclass %#x\n", geti(l, SOL_SOCKET, SO_MARK), geti(u, IPPROTO_IPV6, IPV6_TCLASS));
    fcntl(sp[1], F_SETFL, O_NONBLOCK);
    size_t got = 0, bad = 0;
    for (;;) {
        ssize_t n = read(sp[1], chunk, sizeof chunk);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++)
            if (chunk[i] != 'a' + (int)((got + (size_t)i) / 4096) % 26) bad++;
        got += (size_t)n;
    }
    printf("read back %s, %zu wrong\n", got == sent ? "everything" : "not everything", bad);
    return 0;
}
