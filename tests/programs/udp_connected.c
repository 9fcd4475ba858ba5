/* UDP sockets connected to a destination (as DNS resolvers, statsd and
 * syslog clients make them): a server socket bound to 127.0.0.1, a
 * client connected to it (its port chosen by the kernel). Each step the
 * client sends with send(2) (no address: the connection's), the server
 * answers the source it saw with sendto(2), the client reads it; prints
 * "step N" with what came back and whether every name agrees. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

static int same(const struct sockaddr_in *a, const struct sockaddr_in *b) {
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int srv = socket(AF_INET, SOCK_DGRAM, 0), cli = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof at;
    if (bind(srv, (struct sockaddr *)&at, sizeof at) || getsockname(srv, (struct sockaddr *)&at, &len) ||
        connect(cli, (struct sockaddr *)&at, sizeof at)) {
        perror("setup");
        return 1;
    }
    for (int i = 0; i < 60; i++) {
        checkpoint_window(i);
        char msg[32], got[32], back[32];
        int k = snprintf(msg, sizeof msg, "q%d", i);
        if (send(cli, msg, k, 0) != k) {
            perror("send");
            return 1;
        }
        struct sockaddr_in src, me, peer;
        socklen_t sl = sizeof src, ml = sizeof me, pl = sizeof peer;
        ssize_t r = recvfrom(srv, got, sizeof got - 1, 0, (struct sockaddr *)&src, &sl);
        if (r < 0)
            return 1;
        got[r] = 0;
        char reply[40];
        int n = snprintf(reply, sizeof reply, "a%s", got);
        sendto(srv, reply, n, 0, (struct sockaddr *)&src, sl);
        ssize_t q = recv(cli, back, sizeof back - 1, 0);
        if (q < 0)
            return 1;
        back[q] = 0;
        getsockname(cli, (struct sockaddr *)&me, &ml);
        int connected = getpeername(cli, (struct sockaddr *)&peer, &pl) == 0;
        printf("step %d: server got %s from the client: %s; client got %s; connected to the "
               "server: %s\n",
               i, got, same(&src, &me) ? "yes" : "no", back,
               connected && same(&peer, &at) ? "yes" : "no");
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}
