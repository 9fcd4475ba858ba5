/* Sockets with something waiting that a restart cannot bring back: a
 * bound unix datagram socket with three unread datagrams, a listening
 * socket with a connection not yet accepted; and, for contrast, a bound
 * datagram socket with nothing queued (not to be named). Prints "step N"
 * every 20 ms. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_un named(const char *name) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", name);
    unlink(name);
    return a;
}

int main(void) {
    struct sockaddr_un d = named("dgram.sock"), e = named("empty.sock"), l = named("listen.sock");
    int dg = socket(AF_UNIX, SOCK_DGRAM, 0);
    int empty = socket(AF_UNIX, SOCK_DGRAM, 0);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    int tx = socket(AF_UNIX, SOCK_DGRAM, 0);
    int cl = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(dg, (void *)&d, sizeof d) || bind(empty, (void *)&e, sizeof e) ||
        bind(ls, (void *)&l, sizeof l) || listen(ls, 4)) {
        perror("bind");
        return 1;
    }
    for (int i = 0; i < 3; i++) sendto(tx, "msg", 3, 0, (void *)&d, sizeof d);
    if (connect(cl, (void *)&l, sizeof l)) {
        perror("connect");
        return 1;
    }
    for (int i = 0;; i++) {
        printf("step %d\n", i);
        fflush(stdout);
        usleep(20000);
    }
}
