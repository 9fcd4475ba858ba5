/* A descriptor in flight: sent with SCM_RIGHTS over a socket pair the
 * process holds both ends of, not received yet (a worker pool handing
 * out connections does this). Prints "step N" lines. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return 1;
    int passed = open("/dev/null", O_RDONLY);
    char byte = 'x';
    struct iovec io = {&byte, 1};
    char ctl[CMSG_SPACE(sizeof(int))];
    memset(ctl, 0, sizeof ctl);
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl,
                       .msg_controllen = sizeof ctl};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passed, sizeof(int));
    if (sendmsg(sv[0], &m, 0) != 1)
        return 2;
    close(passed);
    for (int i = 0; i < 200; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        struct timespec t = {0, 20000000};
        nanosleep(&t, NULL);
    }
    return 0;
}
