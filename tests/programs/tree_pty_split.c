/* tree_pty_split CTL: a job of two processes sharing a pseudo-terminal
 * pair the way `script` or an expect-like tool does: the parent keeps
 * the master, its child the slave. Marks `ready`, waits for `go`, then
 * the child writes a line through the slave and the parent reads it from
 * the master. A restart cannot make such a pair again (it is not a pair
 * of one process): the checkpoint says so, and the restart fails as a
 * whole, at once, leaving no process behind. */
#include "ckpt_test.h"
#include <pty.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    int m, s;
    if (openpty(&m, &s, NULL, NULL, NULL) != 0) {
        perror("openpty");
        return 1;
    }
    pid_t c = fork();
    if (c == 0) {
        close(m);
        wait_for("go", 60);
        if (write(s, "from the child\n", 15) != 15)
            _exit(2);
        nap_ms(200);
        _exit(0);
    }
    close(s);
    marker("ready", "pid=%d child=%d\n", (int)getpid(), (int)c);
    wait_for("go", 60);
    char buf[64] = {0};
    ssize_t n = read(m, buf, sizeof buf - 1);
    printf("parent read %zd: %s", n, buf);
    waitpid(c, NULL, 0);
    return 0;
}
