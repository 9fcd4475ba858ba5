/* A packet socket with a mapped receive ring (PACKET_RX_RING, as libpcap
 * sets up) in a fanout group steered by a classic BPF program
 * (PACKET_FANOUT_CBPF with PACKET_FANOUT_DATA): neither can come back,
 * and the checkpoint must say both. Needs CAP_NET_RAW: prints
 * "unsupported" without it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0) {
        printf("unsupported: packet socket\n");
        return 0;
    }
    struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                             .sll_ifindex = (int)if_nametoindex("lo")};
    int v2 = TPACKET_V2;
    struct tpacket_req req = {.tp_block_size = 4096, .tp_block_nr = 4, .tp_frame_size = 2048, .tp_frame_nr = 8};
    int fan = 0x4d3 | (PACKET_FANOUT_CBPF << 16);
    struct sock_filter code[] = {{BPF_RET | BPF_K, 0, 0, 0}};
    struct sock_fprog prog = {.len = 1, .filter = code};
    if (bind(fd, (struct sockaddr *)&ll, sizeof ll) ||
        setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2) ||
        setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) ||
        setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &fan, sizeof fan) ||
        setsockopt(fd, SOL_PACKET, PACKET_FANOUT_DATA, &prog, sizeof prog)) {
        perror("packet setup");
        return 1;
    }
    void *ring = mmap(0, 4096 * 4, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ring == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
