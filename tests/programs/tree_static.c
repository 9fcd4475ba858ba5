/* A job with a child that cannot carry ckpt's shim: this one file is built
 * twice, dynamically (the parent) and with -static (the child, which the
 * preloaded shim cannot enter).
 *
 * usage: tree_static CTL parent STATIC_BINARY
 *        tree_static CTL child
 *
 * The parent prints, forks and execs STATIC_BINARY CTL child, and waits for
 * it. The child writes marker `ready` (its pid), waits for control file
 * `go`, prints five lines and exits with status 5; the parent then prints
 * the child's status. Every line is one write(2). */
#include "ckpt_test.h"
#include <sys/wait.h>

static void say(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    CHECK(n > 0 && n < (int)sizeof buf);
    CHECK(write(1, buf, (size_t)n) == n);
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    CHECK(argc >= 3);
    if (strcmp(argv[2], "child") == 0) {
        say("child: started\n");
        marker("ready", "pid=%d\n", (int)getpid());
        wait_for("go", 60);
        for (int i = 1; i <= 5; i++) {
            say("child: step %d\n", i);
            nap_ms(20);
        }
        return 5;
    }
    CHECK(argc >= 4 && strcmp(argv[2], "parent") == 0);
    say("parent: start\n");
    pid_t kid = fork();
    CHECK(kid >= 0);
    if (kid == 0) {
        execl(argv[3], argv[3], argv[1], "child", (char *)NULL);
        _exit(93);
    }
    int st = 0;
    CHECK(waitpid(kid, &st, 0) == kid);
    say("parent: child %s %d\n", WIFEXITED(st) ? "exited" : "killed",
        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return 0;
}
