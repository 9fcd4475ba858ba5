/* Netlink sockets of the program's own, as network managers, `ip monitor`
 * and libnl/libmnl users hold them: a NETLINK_ROUTE socket bound to its
 * own port id with the link group, joined to group 33 (past the 32 a bind
 * names) and with NETLINK_EXT_ACK set; another never bound. Every step
 * dumps the links and checks each reply is addressed to the port id the
 * program kept (as libmnl does), and that the groups, the option and the
 * unbound socket are as they were. Before, the bound socket came back as
 * a connection closed by its peer: send failed with EPIPE. */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

static unsigned portid(int fd) {
    struct sockaddr_nl a;
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    return a.nl_pid;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    int n = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    int idle = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    struct sockaddr_nl me = {.nl_family = AF_NETLINK, .nl_pid = getpid() ^ 0x5a5a0000,
                             .nl_groups = RTMGRP_LINK};
    int one = 1, group = 33;
    if (bind(n, (struct sockaddr *)&me, sizeof me) ||
        setsockopt(n, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) ||
        setsockopt(n, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one)) {
        perror("netlink");
        return 1;
    }
    unsigned mine = portid(n);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        struct {
            struct nlmsghdr h;
            struct rtgenmsg g;
        } rq = {{sizeof rq, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, step + 1, 0}, {AF_PACKET}};
        ssize_t s = send(n, &rq, sizeof rq, 0);
        int err = errno, links = 0, foreign = 0, done = 0;
        char b[32768];
        while (s > 0 && !done) {
            ssize_t r = recv(n, b, sizeof b, 0);
            if (r <= 0)
                break;
            for (struct nlmsghdr *h = (void *)b; NLMSG_OK(h, r); h = NLMSG_NEXT(h, r)) {
                if (h->nlmsg_seq != (unsigned)step + 1)
                    continue; /* a link event (the group) */
                foreign += h->nlmsg_pid != mine;
                links += h->nlmsg_type == RTM_NEWLINK;
                done |= h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR;
            }
        }
        unsigned groups[4] = {0};
        socklen_t gl = sizeof groups;
        int ack = 0;
        socklen_t al = sizeof ack;
        getsockopt(n, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &gl);
        getsockopt(n, SOL_NETLINK, NETLINK_EXT_ACK, &ack, &al);
        printf("step %d send %s links %s foreign %d port %s groups %x %x ext_ack %d idle %u\n",
               step, s > 0 ? "ok" : strerror(err), links > 0 ? "some" : "none", foreign,
               portid(n) == mine ? "kept" : "changed", groups[0], groups[1], ack, portid(idle));
        struct timespec t = {0, 25000000};
        while (nanosleep(&t, &t) != 0) {
        }
    }
    return 0;
}
