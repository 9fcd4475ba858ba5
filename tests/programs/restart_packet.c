/* A packet socket (AF_PACKET, SOCK_DGRAM, IP) bound to the loopback
 * interface, with TPACKET_V2 and PACKET_AUXDATA set, keeps seeing the
 * program's own UDP datagrams to 127.0.0.1 across a restart. Before, the
 * checkpoint said nothing and the restart failed ("cannot listen where it
 * listened": sockaddr_ll is bound whole, getsockname gives it cut).
 * Needs CAP_NET_RAW: prints "unsupported" without it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    int pk = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
    if (pk < 0) {
        printf("unsupported: packet socket\n");
        return 0;
    }
    struct sockaddr_ll ll = {.sll_family = AF_PACKET,
                             .sll_protocol = htons(ETH_P_IP),
                             .sll_ifindex = (int)if_nametoindex("lo")};
    int v2 = TPACKET_V2, one = 1;
    if (bind(pk, (struct sockaddr *)&ll, sizeof ll) || setsockopt(pk, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) ||
        setsockopt(pk, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one)) {
        perror("packet setup");
        return 1;
    }
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t ml = sizeof me;
    if (bind(u, (struct sockaddr *)&me, sizeof me) || getsockname(u, (struct sockaddr *)&me, &ml)) {
        perror("udp");
        return 1;
    }
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        char msg[32];
        int n = snprintf(msg, sizeof msg, "datagram %d", step);
        sendto(u, msg, n, 0, (struct sockaddr *)&me, sizeof me);
        int seen = 0;
        for (int tries = 0; tries < 2000 && !seen; tries++) {
            struct pollfd p = {.fd = pk, .events = POLLIN};
            if (poll(&p, 1, 2000) <= 0) break;
            unsigned char buf[2048];
            ssize_t r = recv(pk, buf, sizeof buf, 0);
            if (r < (ssize_t)(sizeof(struct iphdr) + sizeof(struct udphdr))) continue;
            struct iphdr *ip = (struct iphdr *)buf;
            if (ip->protocol != IPPROTO_UDP) continue;
            struct udphdr *uh = (struct udphdr *)(buf + ip->ihl * 4);
            char *data = (char *)(uh + 1);
            size_t len = (size_t)r - ip->ihl * 4 - sizeof *uh;
            if (uh->dest == me.sin_port && len == (size_t)n && memcmp(data, msg, n) == 0) seen = 1;
        }
        char drop[64];
        recv(u, drop, sizeof drop, MSG_DONTWAIT);
        int ver = -1, aux = -1;
        socklen_t l = sizeof ver;
        getsockopt(pk, SOL_PACKET, PACKET_VERSION, &ver, &l);
        l = sizeof aux;
        getsockopt(pk, SOL_PACKET, PACKET_AUXDATA, &aux, &l);
        struct sockaddr_ll now;
        socklen_t nl = sizeof now;
        getsockname(pk, (struct sockaddr *)&now, &nl);
        printf("step %d: the packet socket saw it %d, version %d, auxdata %d, on lo %d\n", step, seen, ver,
               aux, now.sll_ifindex == ll.sll_ifindex);
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
