/* Packet sockets' state the kernel does not read back, across a restart:
 * memberships (PACKET_ADD_MEMBERSHIP: promiscuous mode, all-multicast, a
 * link multicast address added twice), each with its count, and a fanout
 * group two sockets are in (PACKET_FANOUT, read back). Each step prints
 * the loopback interface's flags (IFF_PROMISC, IFF_ALLMULTI: the
 * memberships' effect), whether the address is in its multicast list,
 * and both sockets' fanout settings; at the end each membership is
 * dropped as often as it was added, one at a time, and what it did is
 * printed: a count come back wrong shows. Before, the restarted sockets
 * had no membership and no group, silently. Needs CAP_NET_RAW: prints "unsupported"
 * without it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lo_state.h"
#include "checkpoint_window.h"

static void drop(int fd, struct packet_mreq *m) {
    if (setsockopt(fd, SOL_PACKET, PACKET_DROP_MEMBERSHIP, m, sizeof *m)) perror("drop");
}

/* Of the local experimental ethertype, which nothing sends here: no
 * packet waits at the checkpoint (it would be said, and lost). */
static int packet_socket(int ifindex) {
    int fd = socket(AF_PACKET, SOCK_RAW, htons(0x88b5));
    if (fd < 0) return -1;
    struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(0x88b5), .sll_ifindex = ifindex};
    if (bind(fd, (struct sockaddr *)&ll, sizeof ll)) return -1;
    int fan = 0x4d2 | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &fan, sizeof fan)) return -1;
    return fd;
}

int main(void) {
    int lo = (int)if_nametoindex("lo");
    int a = packet_socket(lo);
    if (a < 0) {
        printf("unsupported: packet socket\n");
        return 0;
    }
    int b = packet_socket(lo);
    struct packet_mreq promisc = {.mr_ifindex = lo, .mr_type = PACKET_MR_PROMISC};
    struct packet_mreq allmulti = {.mr_ifindex = lo, .mr_type = PACKET_MR_ALLMULTI};
    struct packet_mreq mcast = {.mr_ifindex = lo, .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6,
                                .mr_address = {0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}};
    if (b < 0 || setsockopt(a, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &promisc, sizeof promisc) ||
        setsockopt(a, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &promisc, sizeof promisc) ||
        setsockopt(a, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &promisc, sizeof promisc) ||
        setsockopt(b, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &allmulti, sizeof allmulti) ||
        setsockopt(a, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mcast, sizeof mcast) ||
        setsockopt(a, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mcast, sizeof mcast)) {
        perror("packet setup");
        return 1;
    }
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        int fa = 0, fb = 0;
        socklen_t l = sizeof fa;
        getsockopt(a, SOL_PACKET, PACKET_FANOUT, &fa, &l);
        l = sizeof fb;
        getsockopt(b, SOL_PACKET, PACKET_FANOUT, &fb, &l);
        printf("step %d: lo flags %#x, address listed %d, fanout %#x and %#x\n", step, lo_flags(), listed("01005e0000fb"),
               fa, fb);
        fflush(stdout);
        usleep(20000);
    }
    drop(a, &promisc);
    printf("promiscuous dropped once: lo flags %#x\n", lo_flags());
    drop(a, &mcast);
    printf("address dropped once: listed %d\n", listed("01005e0000fb"));
    drop(a, &mcast);
    printf("address dropped twice: listed %d\n", listed("01005e0000fb"));
    drop(b, &allmulti);
    printf("all-multicast dropped: lo flags %#x\n", lo_flags());
    return 0;
}
