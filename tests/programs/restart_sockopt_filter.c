/* Socket options beyond the common ones, and a classic BPF filter, come
 * back on the sockets a restart makes again: a TCP listener (segment size,
 * deferred accept, fast open, cork, unsent low mark, congestion control),
 * a bound UDP socket (packet info, errors queue, path MTU discovery,
 * free bind, multicast TTL and loop, a filter dropping datagrams that
 * start with 'B', locked), and a unix pair whose peek offset moves with
 * each MSG_PEEK. Before, all of these came back at their defaults: the
 * filter let 'B' through and the peek read the same bytes again. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "checkpoint_window.h"

static int geti(int fd, int level, int name) {
    int v = -99;
    socklen_t l = sizeof v;
    getsockopt(fd, level, name, &v, &l);
    return v;
}

static void seti(int fd, int level, int name, int v, const char *what) {
    if (setsockopt(fd, level, name, &v, sizeof v) < 0) perror(what);
}

int main(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    seti(l, SOL_SOCKET, SO_REUSEADDR, 1, "reuseaddr");
    seti(l, IPPROTO_TCP, TCP_MAXSEG, 1200, "maxseg");
    seti(l, IPPROTO_TCP, TCP_DEFER_ACCEPT, 7, "defer");
    seti(l, IPPROTO_TCP, TCP_FASTOPEN, 8, "fastopen");
    seti(l, IPPROTO_TCP, TCP_CORK, 1, "cork");
    seti(l, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 9999, "notsent");
    if (setsockopt(l, IPPROTO_TCP, TCP_CONGESTION, "reno", 4) < 0) perror("congestion");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(l, (void *)&a, sizeof a) < 0 || listen(l, 4) < 0) perror("listen");

    int u = socket(AF_INET, SOCK_DGRAM, 0);
    seti(u, IPPROTO_IP, IP_PKTINFO, 1, "pktinfo");
    seti(u, IPPROTO_IP, IP_RECVERR, 1, "recverr");
    seti(u, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO, "mtu");
    seti(u, IPPROTO_IP, IP_FREEBIND, 1, "freebind");
    seti(u, IPPROTO_IP, IP_MULTICAST_TTL, 7, "mttl");
    seti(u, IPPROTO_IP, IP_MULTICAST_LOOP, 0, "mloop");
    struct sockaddr_in ua = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t ul = sizeof ua;
    if (bind(u, (void *)&ua, sizeof ua) < 0 || getsockname(u, (void *)&ua, &ul) < 0) perror("udp");
    /* The UDP payload starts after the 8-byte header. */
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 8),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 'B', 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0),
        BPF_STMT(BPF_RET | BPF_K, 0xffff),
    };
    struct sock_fprog prog = {4, code};
    if (setsockopt(u, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) perror("filter");
    seti(u, SOL_SOCKET, SO_LOCK_FILTER, 1, "lock");

    int sp[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
    seti(sp[0], SOL_SOCKET, SO_PEEK_OFF, 0, "peekoff");
    write(sp[1], "abcdefghijklmnopqrstuvwxyz", 26);
    char b[8];
    recv(sp[0], b, 3, MSG_PEEK);

    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        char cc[16] = {0};
        socklen_t cl = sizeof cc;
        getsockopt(l, IPPROTO_TCP, TCP_CONGESTION, cc, &cl);
        printf("step %d: tcp maxseg %d defer %d fastopen %d cork %d notsent %d %s; "
               "udp pktinfo %d recverr %d mtu %d freebind %d mttl %d mloop %d lock %d; peek off %d\n",
               step, geti(l, IPPROTO_TCP, TCP_MAXSEG), geti(l, IPPROTO_TCP, TCP_DEFER_ACCEPT),
               geti(l, IPPROTO_TCP, TCP_FASTOPEN), geti(l, IPPROTO_TCP, TCP_CORK),
               geti(l, IPPROTO_TCP, TCP_NOTSENT_LOWAT), cc, geti(u, IPPROTO_IP, IP_PKTINFO),
               geti(u, IPPROTO_IP, IP_RECVERR), geti(u, IPPROTO_IP, IP_MTU_DISCOVER),
               geti(u, IPPROTO_IP, IP_FREEBIND), geti(u, IPPROTO_IP, IP_MULTICAST_TTL),
               geti(u, IPPROTO_IP, IP_MULTICAST_LOOP), geti(u, SOL_SOCKET, SO_LOCK_FILTER),
               geti(sp[0], SOL_SOCKET, SO_PEEK_OFF));
        fflush(stdout);
        usleep(20000);
    }
    int n = recv(sp[0], b, 3, MSG_PEEK);
    printf("peeked next: %.*s\n", n, b);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    sendto(s, "Bdropped", 8, 0, (void *)&ua, sizeof ua);
    sendto(s, "Akept", 5, 0, (void *)&ua, sizeof ua);
    usleep(50000);
    char d[16];
    while ((n = recv(u, d, sizeof d, MSG_DONTWAIT)) > 0) printf("received %.*s\n", n, d);
    return 0;
}
