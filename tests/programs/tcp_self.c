/* A process that talks to itself over TCP on 127.0.0.1 (a server thread
 * and its own client, as test harnesses and embedded servers do): a
 * listener, a connection to it and the accepted end. The client sends a
 * line the server leaves unread until the end, then one line each step
 * (read by the server, answered). At step 40 a second client connects to
 * the listener. Prints "step N" lines and what each end sees of the
 * other's address (the same connection: ports agree). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

static int port_of(int fd, int peer) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &len))
        return -1;
    return ntohs(a.sin_port);
}

static int read_line(int fd, char *buf, size_t n) {
    size_t have = 0;
    while (have < n - 1) {
        ssize_t k = read(fd, buf + have, 1);
        if (k <= 0)
            return -1;
        if (buf[have++] == '\n')
            break;
    }
    buf[have] = 0;
    return (int)have;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4) ||
        getsockname(l, (struct sockaddr *)&a, &len)) {
        perror("listen");
        return 1;
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) {
        perror("connect");
        return 1;
    }
    int s = accept(l, NULL, NULL);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (write(c, "left for the end\n", 17) != 17)
        return 1;
    for (int i = 0; i < 60; i++) {
        checkpoint_window(i);
        char buf[64], back[64];
        int n = snprintf(buf, sizeof buf, "ping %d\n", i);
        if (write(s, buf, n) != n || read_line(c, back, sizeof back) < 0) {
            printf("step %d: the connection broke\n", i);
            return 2;
        }
        int nodelay = 0;
        socklen_t ol = sizeof nodelay;
        getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &nodelay, &ol);
        printf("step %d: client got %s", i, back);
        printf("step %d: ports agree %d %d, nodelay %d\n", i,
               port_of(c, 1) == port_of(s, 0) && port_of(c, 1) == port_of(l, 0),
               port_of(s, 1) == port_of(c, 0), nodelay);
        if (i == 40) {
            int d = socket(AF_INET, SOCK_STREAM, 0);
            int e = connect(d, (struct sockaddr *)&a, sizeof a) == 0 ? accept(l, NULL, NULL) : -1;
            if (e < 0 || write(d, "second\n", 7) != 7 || read_line(e, back, sizeof back) < 0)
                printf("step %d: the listener does not answer\n", i);
            else
                printf("step %d: a second client said %s", i, back);
            close(d);
            close(e);
        }
        struct timespec t = {0, 20000000};
        nanosleep(&t, NULL);
    }
    char end[64];
    if (read_line(s, end, sizeof end) > 0)
        printf("the server reads at last: %s", end);
    return 0;
}
