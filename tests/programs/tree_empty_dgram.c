/* tree_empty_dgram CTL: a datagram socket pair across two processes: the
 * child sends "a", an empty message and "b" to its parent, then both wait
 * for CTL/go (marker "ready" with the child's pid once all three are
 * queued); then the parent reads them and prints each one's length. The
 * checkpoint in between must say that the empty message, which it saves,
 * is hidden from any later checkpoint (tests/process_trees.rs).
 * A stream pair across the two too: the child writes "bye" and shuts its
 * sending side down; after "go" the parent reads without waiting: the
 * bytes, then end of file (a shut-down end must come back shut down). */
#include "ckpt_test.h"
#include <sys/socket.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    int d[2], s[2];
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, d) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0);
    pid_t kid = fork();
    CHECK(kid >= 0);
    if (kid == 0) {
        close(d[0]);
        close(s[0]);
        CHECK(write(s[1], "bye", 3) == 3);
        CHECK(shutdown(s[1], SHUT_WR) == 0);
        CHECK(send(d[1], "a", 1, 0) == 1);
        CHECK(send(d[1], "", 0, 0) == 0);
        CHECK(send(d[1], "b", 1, 0) == 1);
        marker("sent", "ok\n");
        wait_for("go", 60);
        return 0;
    }
    close(d[1]);
    close(s[1]);
    wait_for("sent", 60);
    marker("ready", "pid=%d\n", (int)kid);
    wait_for("go", 60);
    for (int i = 0; i < 3; i++) {
        char buf[16];
        ssize_t n = recv(d[0], buf, sizeof buf, 0);
        printf("message %d: %zd bytes\n", i, n);
    }
    for (int i = 0; i < 3; i++) {
        char buf[16];
        ssize_t n = recv(s[0], buf, sizeof buf, MSG_DONTWAIT);
        printf("stream read %d: %zd (%s)\n", i, n, n < 0 ? strerror(errno) : "ok");
        if (n <= 0)
            break;
    }
    CHECK(waitpid(kid, NULL, 0) == kid);
    return 0;
}
