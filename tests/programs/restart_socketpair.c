/* Stream socket pairs the program holds both ends of: one made by
 * socketpair() whose second end was moved to another number (dup2, then
 * close), one made by a raw system call no wrapper sees. Each holds bytes
 * sent before the checkpoint and not yet read. A restart must rebuild
 * both pairs, connected as they were, with their bytes; and neither the
 * checkpoint nor the restart may call them connections to another
 * process. A third pair lost one end (closed) after sending: the other
 * end must give its bytes, then end of file, and EPIPE on writes.
 * Sockets made and never bound nor connected (unix datagram, TCP) must
 * come back as such, without a word about connections. A fourth pair has
 * bytes queued around a piece that carried a descriptor (SCM_RIGHTS):
 * every byte must come back (the descriptor cannot: a warning). A fifth
 * is a connection the program made to a socket it listens on itself
 * (bound to "conn.sock" in its directory) and accepted, bytes queued each
 * way: it too must come back connected with its bytes, and the listening
 * socket listen again. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void talk(const char *name, int a, int b) {
    char buf[64] = {0};
    ssize_t n = read(b, buf, sizeof buf - 1);
    printf("%s: b read %zd '%s'\n", name, n, n > 0 ? buf : "");
    if (write(b, "pong", 4) != 4)
        printf("%s: b cannot write\n", name);
    memset(buf, 0, sizeof buf);
    n = read(a, buf, sizeof buf - 1);
    printf("%s: a read %zd '%s'\n", name, n, n > 0 ? buf : "");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    int sv[2], raw[2], lone[2];
    int rights[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, rights) || write(rights[0], "aa", 2) != 2)
        return 1;
    {
        char data[2] = {'b', 'b'};
        struct iovec iov = {data, 2};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                           .msg_controllen = sizeof u.buf};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        int one = 1;
        memcpy(CMSG_DATA(c), &one, sizeof one);
        if (sendmsg(rights[0], &m, 0) != 2 || write(rights[0], "cc", 2) != 2)
            return 1;
    }
    int ud = socket(AF_UNIX, SOCK_DGRAM, 0), tcp = socket(AF_INET, SOCK_STREAM, 0);
    if (ud < 0 || tcp < 0)
        return 1;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, lone) || write(lone[1], "bye", 3) != 3 ||
        close(lone[1]))
        return 1;
    struct sockaddr_un at = {AF_UNIX, "conn.sock"};
    unlink(at.sun_path);
    int srv = socket(AF_UNIX, SOCK_STREAM, 0), cli = socket(AF_UNIX, SOCK_STREAM, 0);
    if (srv < 0 || cli < 0 || bind(srv, (struct sockaddr *)&at, sizeof at) || listen(srv, 4) ||
        connect(cli, (struct sockaddr *)&at, sizeof at))
        return 1;
    int acc = accept(srv, NULL, NULL);
    if (acc < 0 || write(cli, "to server", 9) != 9 || write(acc, "to client", 9) != 9)
        return 1;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return 1;
    if (dup2(sv[1], 20) != 20 || close(sv[1]))
        return 1;
    if (syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, raw))
        return 1;
    if (write(sv[0], "ping", 4) != 4 || write(raw[0], "hello", 5) != 5)
        return 1;
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    talk("moved", sv[0], 20);
    talk("raw", raw[0], raw[1]);
    char buf[16] = {0};
    ssize_t n = read(lone[0], buf, sizeof buf - 1);
    printf("lone: read %zd '%s'\n", n, n > 0 ? buf : "");
    n = read(lone[0], buf, sizeof buf - 1);
    printf("lone: read again %zd\n", n);
    n = write(lone[0], "x", 1);
    printf("lone: write %zd%s\n", n, n < 0 && errno == EPIPE ? " EPIPE" : "");
    {
        char all[16] = {0};
        size_t got = 0;
        while (got < 6) {
            ssize_t r = recv(rights[1], all + got, sizeof all - 1 - got, MSG_DONTWAIT);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        printf("rights: got %zu bytes '%s'\n", got, all);
    }
    {
        char got[32] = {0};
        n = read(acc, got, sizeof got - 1);
        printf("accepted: read %zd '%s'\n", n, n > 0 ? got : "");
        memset(got, 0, sizeof got);
        n = read(cli, got, sizeof got - 1);
        printf("client: read %zd '%s'\n", n, n > 0 ? got : "");
        int again = socket(AF_UNIX, SOCK_STREAM, 0);
        printf("listening again: %d\n", connect(again, (struct sockaddr *)&at, sizeof at) == 0);
        unlink(at.sun_path);
    }
    /* The unix datagram socket, bound now (autobind), talks to itself. */
    struct sockaddr_un me = {AF_UNIX};
    socklen_t len = sizeof(sa_family_t);
    n = bind(ud, (struct sockaddr *)&me, len);
    len = sizeof me;
    getsockname(ud, (struct sockaddr *)&me, &len);
    n = sendto(ud, "self", 4, 0, (struct sockaddr *)&me, len);
    memset(buf, 0, sizeof buf);
    n = recv(ud, buf, sizeof buf - 1, MSG_DONTWAIT);
    printf("fresh unix: got %zd '%s'\n", n, n > 0 ? buf : "");
    struct sockaddr_in in;
    len = sizeof in;
    int type = 0;
    socklen_t tl = sizeof type;
    getsockopt(tcp, SOL_SOCKET, SO_TYPE, &type, &tl);
    printf("fresh tcp: stream %d, unbound %d, unconnected %d\n", type == SOCK_STREAM,
           getsockname(tcp, (struct sockaddr *)&in, &len) == 0 && in.sin_port == 0,
           getpeername(tcp, (struct sockaddr *)&in, &len) < 0 && errno == ENOTCONN);
    return 0;
}
