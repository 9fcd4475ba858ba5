/* A packet socket's memberships (promiscuous mode, a link multicast
 * address) set before the program execs itself, the socket kept open
 * across the exec: the new program's checkpoint and restart must still
 * have them. Before, the new program's shim knew nothing of them (only
 * the setsockopt wrapper sees memberships) and the restarted socket had
 * none, silently. With the argument "execl" it execs through glibc's
 * execl, which calls the kernel itself, past ckpt's exec wrappers: the
 * memberships are then unknown to the new program's checkpoint, which
 * must say so. Needs CAP_NET_RAW: prints "unsupported" without it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lo_state.h"
#include "checkpoint_window.h"

int main(int argc, char **argv) {
    int lo = (int)if_nametoindex("lo");
    struct packet_mreq promisc = {.mr_ifindex = lo, .mr_type = PACKET_MR_PROMISC};
    struct packet_mreq mcast = {.mr_ifindex = lo, .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6,
                                .mr_address = {0x01, 0x00, 0x5e, 0x00, 0x00, 0xfc}};
    if (argc < 2 || strcmp(argv[1], "after") != 0) {
        /* Nothing sends this local experimental ethertype: no packet waits. */
        int fd = socket(AF_PACKET, SOCK_RAW, htons(0x88b6));
        if (fd < 0) {
            printf("unsupported: packet socket\n");
            return 0;
        }
        struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(0x88b6), .sll_ifindex = lo};
        if (bind(fd, (struct sockaddr *)&ll, sizeof ll) ||
            setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &promisc, sizeof promisc) ||
            setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mcast, sizeof mcast)) {
            perror("packet setup");
            return 1;
        }
        char n[16];
        snprintf(n, sizeof n, "%d", fd);
        printf("before exec: lo flags %#x, address listed %d\n", lo_flags(), listed("01005e0000fc"));
        fflush(stdout);
        if (argc > 1 && strcmp(argv[1], "execl") == 0) {
            execl("/proc/self/exe", argv[0], "after", n, (char *)NULL);
        } else {
            char *args[] = {argv[0], "after", n, NULL};
            execv("/proc/self/exe", args);
        }
        perror("exec");
        return 1;
    }
    int fd = atoi(argv[2]);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d: lo flags %#x, address listed %d, environment clean %d\n", step, lo_flags(), listed("01005e0000fc"),
               getenv("CKPT_SOCKOPTS") == NULL);
        fflush(stdout);
        usleep(20000);
    }
    setsockopt(fd, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &promisc, sizeof promisc);
    setsockopt(fd, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &mcast, sizeof mcast);
    printf("dropped: lo flags %#x, address listed %d\n", lo_flags(), listed("01005e0000fc"));
    return 0;
}
