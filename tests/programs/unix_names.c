/* Unix sockets with names, in one process: two datagram sockets bound to
 * paths and connected to each other (one message left queued from the
 * start), a listener on a path (mode 0600) with a connection from a
 * client bound to a path of its own, and a listener whose path the
 * program removed. Each step sends a datagram and a stream message, takes
 * a new client on the listener, and prints every name the kernel gives:
 * getsockname, getpeername, recvfrom's source, the listener file's mode,
 * whether the removed path exists. Relative paths: the reference run and
 * the checkpointed one print the same. Prints "step N" lines. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

static struct sockaddr_un at(const char *path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, path);
    return a;
}

static int sock(int type, const char *bind_to) {
    int fd = socket(AF_UNIX, type, 0);
    if (fd < 0) {
        perror("socket");
        _exit(1);
    }
    if (bind_to) {
        struct sockaddr_un a = at(bind_to);
        unlink(bind_to);
        if (bind(fd, (struct sockaddr *)&a, sizeof a)) {
            perror(bind_to);
            _exit(1);
        }
    }
    return fd;
}

static void join(int fd, const char *path) {
    struct sockaddr_un a = at(path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        perror(path);
        _exit(1);
    }
}

/* A name as the program sees it: the path, or "-" when unnamed. */
static const char *name(int fd, int peer, char *buf) {
    struct sockaddr_un a;
    socklen_t len = sizeof a;
    memset(&a, 0, sizeof a);
    if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &len))
        return "error";
    snprintf(buf, 108, "%s", len > sizeof(sa_family_t) && a.sun_path[0] ? a.sun_path : "-");
    return buf;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int a = sock(SOCK_DGRAM, "ua.sock"), b = sock(SOCK_DGRAM, "ub.sock");
    join(a, "ub.sock");
    join(b, "ua.sock");
    if (send(a, "queued", 6, 0) != 6)
        return 1;
    int l = sock(SOCK_STREAM, "ul.sock");
    listen(l, 4);
    chmod("ul.sock", 0600);
    int c = sock(SOCK_STREAM, "uc.sock");
    join(c, "ul.sock");
    int s = accept(l, NULL, NULL);
    int g = sock(SOCK_STREAM, "ug.sock");
    listen(g, 1);
    unlink("ug.sock");
    char n[10][108];
    for (int i = 0; i < 60; i++) {
        checkpoint_window(i);
        char msg[32], got[32], data[32];
        int k = snprintf(msg, sizeof msg, "m%d", i);
        if (send(a, msg, k, 0) != k || send(c, msg, k, 0) != k)
            return 1;
        struct sockaddr_un src;
        socklen_t slen = sizeof src;
        memset(&src, 0, sizeof src);
        ssize_t r = recvfrom(b, got, sizeof got - 1, 0, (struct sockaddr *)&src, &slen);
        ssize_t q = recv(s, data, sizeof data - 1, 0);
        if (r < 0 || q < 0)
            return 1;
        got[r] = data[q] = 0;
        int c2 = sock(SOCK_STREAM, NULL);
        join(c2, "ul.sock");
        int s2 = accept(l, NULL, NULL);
        char hi[4] = {0};
        if (write(c2, "hi", 2) != 2 || read(s2, hi, 2) != 2)
            return 1;
        close(c2);
        close(s2);
        struct stat st;
        stat("ul.sock", &st);
        printf("step %d: dgram %s from %s; a %s->%s b %s->%s; stream %s %s; accepted %s<-%s "
               "client %s->%s; listener %s mode %o; removed path %s, its listener %s\n",
               i, got, slen > sizeof(sa_family_t) ? src.sun_path : "-", name(a, 0, n[0]),
               name(a, 1, n[1]), name(b, 0, n[2]), name(b, 1, n[3]), data, hi,
               name(s, 0, n[4]), name(s, 1, n[5]), name(c, 0, n[6]), name(c, 1, n[7]),
               name(l, 0, n[8]), st.st_mode & 0777, access("ug.sock", F_OK) ? "gone" : "there",
               name(g, 0, n[9]));
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}
