/* tree_pidfd CTL: process descriptors (pidfd_open) across a restart of a
 * job: the parent holds a pidfd of its child and one of itself. Marker
 * "ready" once both exist; both wait for CTL/go. Then the parent checks
 * its own pidfd (a null signal through it), sees the child's pidfd not
 * readable while the child runs, tells the child to end (a signal
 * through its pidfd), sees it readable, and reaps the child through it
 * (waitid P_PIDFD), printing each answer (tests/process_trees.rs). */
#include "ckpt_test.h"
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
static int pidfd_signal(int fd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}
static int readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    pid_t kid = fork();
    CHECK(kid >= 0);
    if (kid == 0) {
        wait_for("go", 60);
        for (;;)
            pause(); /* until the parent's SIGTERM */
    }
    int child = pidfd_open(kid), self = pidfd_open(getpid());
    CHECK(child >= 0 && self >= 0);
    marker("ready", "pid=%d\n", (int)kid);
    wait_for("go", 60);
    printf("null signal through its own pidfd: %d\n", pidfd_signal(self, 0));
    printf("child's pidfd readable while it runs: %d\n", readable(child));
    printf("SIGTERM through the child's pidfd: %d\n", pidfd_signal(child, SIGTERM));
    struct pollfd p = {child, POLLIN, 0};
    printf("child's pidfd readable once it ended: %d\n", poll(&p, 1, 10000) == 1);
    siginfo_t si = {0};
    int r = waitid(P_PIDFD, child, &si, WEXITED);
    printf("reaped through the pidfd: %d, the child %d, killed by signal %d\n", r,
           si.si_pid == kid, si.si_code == CLD_KILLED ? si.si_status : -1);
    return 0;
}
