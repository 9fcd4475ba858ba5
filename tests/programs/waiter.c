/* The smallest program for `ckpt run`: says where it is and waits.
 *
 *   waiter CONTROL_DIR [exit CODE | signal SIGNO]
 *
 * Writes marker "ready" (pid=..., ppid=...), prints "waiting", waits for
 * control file "go" (120 s at most, then exit 97), prints "finishing", then
 * exits with CODE (default 0) or kills itself with SIGNO.
 */
#include "ckpt_test.h"

#include <signal.h>

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    printf("waiting\n");
    fflush(stdout);
    marker("ready", "pid=%d\nppid=%d\n", (int)getpid(), (int)getppid());
    wait_for("go", 120);
    printf("finishing\n");
    fflush(stdout);
    if (argc >= 4 && strcmp(argv[2], "exit") == 0)
        return atoi(argv[3]);
    if (argc >= 4 && strcmp(argv[2], "signal") == 0) {
        int sig = atoi(argv[3]);
        signal(sig, SIG_DFL);
        raise(sig);
        return 98;
    }
    return 0;
}
