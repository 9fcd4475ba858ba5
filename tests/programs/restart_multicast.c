/* IP multicast memberships across a restart: a UDP socket joins group
 * 239.255.77.1 (any source), 239.255.77.2 with an include filter naming
 * 127.0.0.1 (MCAST_JOIN_SOURCE_GROUP) and 239.255.77.3 with an exclude
 * filter blocking 127.0.0.1, all on the loopback interface; an unjoined
 * 239.255.77.4 is sent to as well. Each step sends one datagram to each
 * group (from 127.0.0.1) and prints which arrived; after steps 19 and
 * 29 it idles a second, when the test checkpoints (datagrams waiting to be
 * read are not in an image). A second sender names the interface it
 * sends on by index alone (IP_MULTICAST_IF with a struct ip_mreqn). Before, the restarted
 * socket had left every group: nothing arrived, and nobody said so. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "checkpoint_window.h"

static struct sockaddr_in group(int k, int port) {
    struct sockaddr_in g = {.sin_family = AF_INET, .sin_port = port};
    char a[32];
    snprintf(a, sizeof a, "239.255.77.%d", k);
    inet_pton(AF_INET, a, &g.sin_addr);
    return g;
}

int main(void) {
    int lo = (int)if_nametoindex("lo");
    int r = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET};
    socklen_t l = sizeof any;
    if (bind(r, (struct sockaddr *)&any, sizeof any) || getsockname(r, (struct sockaddr *)&any, &l)) {
        perror("bind");
        return 1;
    }
    int port = any.sin_port;
    struct ip_mreqn m = {.imr_ifindex = lo};
    m.imr_multiaddr = group(1, 0).sin_addr;
    if (setsockopt(r, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m)) perror("join 1");
    struct group_source_req gs = {.gsr_interface = lo};
    struct sockaddr_in g2 = group(2, 0), src = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &src.sin_addr);
    memcpy(&gs.gsr_group, &g2, sizeof g2);
    memcpy(&gs.gsr_source, &src, sizeof src);
    if (setsockopt(r, IPPROTO_IP, MCAST_JOIN_SOURCE_GROUP, &gs, sizeof gs)) perror("join 2");
    m.imr_multiaddr = group(3, 0).sin_addr;
    if (setsockopt(r, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m)) perror("join 3");
    struct ip_mreq_source ms = {.imr_multiaddr = group(3, 0).sin_addr, .imr_sourceaddr = src.sin_addr};
    inet_pton(AF_INET, "127.0.0.1", &ms.imr_interface);
    if (setsockopt(r, IPPROTO_IP, IP_BLOCK_SOURCE, &ms, sizeof ms)) perror("block 3");

    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct in_addr ifa;
    inet_pton(AF_INET, "127.0.0.1", &ifa);
    unsigned char loop = 1;
    setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa);
    setsockopt(s, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
    /* A second sender names the loopback interface by index alone (the
     * kernel reads back 0.0.0.0 for it): without it, its datagrams to
     * group 1 go out by the default route and are not heard here. */
    int s2 = socket(AF_INET, SOCK_DGRAM, 0);
    struct ip_mreqn by_index = {.imr_ifindex = lo};
    if (setsockopt(s2, IPPROTO_IP, IP_MULTICAST_IF, &by_index, sizeof by_index)) perror("multicast if");
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        for (int k = 1; k <= 4; k++) {
            struct sockaddr_in to = group(k, port);
            char msg[32];
            int n = snprintf(msg, sizeof msg, "%d %d", step, k);
            sendto(s, msg, n, 0, (struct sockaddr *)&to, sizeof to);
        }
        {
            struct sockaddr_in to = group(1, port);
            char msg[32];
            int n = snprintf(msg, sizeof msg, "%d 5", step);
            sendto(s2, msg, n, 0, (struct sockaddr *)&to, sizeof to);
        }
        int got[6] = {0};
        struct pollfd p = {.fd = r, .events = POLLIN};
        while (poll(&p, 1, 50) == 1) {
            char buf[64];
            ssize_t n = recv(r, buf, sizeof buf - 1, 0);
            if (n <= 0) break;
            buf[n] = 0;
            int st, k;
            if (sscanf(buf, "%d %d", &st, &k) == 2 && st == step && k >= 1 && k <= 5) got[k]++;
        }
        printf("step %d: group 1 %d, group 2 %d, group 3 %d, group 4 %d, group 1 by index %d\n", step, got[1],
               got[2], got[3], got[4], got[5]);
        fflush(stdout);
        if (step == 19 || step == 29) usleep(1000000);
        if (step == 0 && got[1] != 1) {
            fprintf(stderr, "multicast on the loopback interface does not deliver here\n");
            return 1;
        }
    }
    return 0;
}
