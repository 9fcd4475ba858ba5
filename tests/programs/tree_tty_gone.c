/* tree_tty_gone CTL TTY: a job of two processes whose child holds a
 * terminal of the outside (TTY, a pseudo-terminal the test holds the
 * master of). Marks `ready`, waits for `go`, then the child writes a line
 * to the terminal. The test frees that terminal before the restart, so
 * the child cannot have it back: the restart fails as a whole, at once,
 * leaving no process behind. */
#include "ckpt_test.h"
#include <fcntl.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    if (argc < 3)
        return 2;
    pid_t c = fork();
    if (c == 0) {
        int t = open(argv[2], O_RDWR | O_NOCTTY);
        if (t < 0) {
            perror(argv[2]);
            _exit(1);
        }
        marker("child-ready", "fd=%d\n", t);
        wait_for("go", 60);
        if (write(t, "from the child\n", 15) != 15)
            _exit(2);
        _exit(0);
    }
    wait_for("child-ready", 60);
    marker("ready", "pid=%d child=%d\n", (int)getpid(), (int)c);
    wait_for("go", 60);
    int st = 0;
    waitpid(c, &st, 0);
    printf("child ended: %d\n", st);
    return 0;
}
