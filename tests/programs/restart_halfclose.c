/* A TCP connection of the program's own, half closed: the client sent a
 * request and shut its sending side down (shutdown(SHUT_WR), as HTTP/1.0
 * clients and `nc -N` do) before the checkpoint; the server reads until
 * end of file after it, then answers on the still open other direction.
 * Before, the rebuilt connection had no FIN: the server's read waited
 * forever after a restart. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
        getsockname(l, (struct sockaddr *)&a, &al)) {
        perror("listen");
        return 1;
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) {
        perror("connect");
        return 1;
    }
    int s = accept(l, NULL, NULL);
    send(c, "request", 7, 0);
    shutdown(c, SHUT_WR);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        struct timespec t = {0, 25000000};
        while (nanosleep(&t, &t) != 0) {
        }
    }
    char b[100];
    int n, tot = 0;
    while ((n = read(s, b, sizeof b)) > 0)
        tot += n;
    printf("server read %d bytes, then %s\n", tot, n == 0 ? "end of file" : "an error");
    send(s, "answer", 6, 0);
    n = read(c, b, sizeof b);
    printf("client got %.*s\n", n > 0 ? n : 0, b);
    return 0;
}
