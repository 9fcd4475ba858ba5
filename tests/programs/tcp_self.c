/* A process that talks to itself over TCP on 127.0.0.1 (a server thread
 * and its own client, as test harnesses and embedded servers do): a
 * listener, a connection to it and the accepted end, a line sent each
 * step. Prints "step N" lines. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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
    for (int i = 0; i < 60; i++) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d\n", i);
        if (write(c, buf, n) != n || read(s, buf, sizeof buf) <= 0)
            break;
        printf("step %d\n", i);
        struct timespec t = {0, 20000000};
        nanosleep(&t, NULL);
    }
    return 0;
}
