/* restart_stage CTL MODE: print "before", write marker `ready`, wait for
 * control file `go` (the test checkpoints, kills and restarts meanwhile),
 * write marker `resumed`, then per MODE:
 *   exit7    print "after", exit with status 7
 *   sigterm  print "after", raise SIGTERM (default action: killed)
 *   comm     wait for `go2` (the test looks at the restarted process and
 *            checkpoints it again), print "after", exit 0
 *   pipe     print 100 lines "after N", exit 0
 *   fork     fork a child that writes marker `child` (its pid as it sees
 *            it) and waits for `stop`; print "after", exit 0 */
#include "ckpt_test.h"
#include <signal.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    const char *mode = argc > 2 ? argv[2] : "exit7";
    for (int i = 0; i < 50; i++)
        printf("before %d\n", i);
    fflush(stdout);
    marker("ready", "pid=%d\n", (int)getpid());
    wait_for("go", 30);
    marker("resumed", "pid=%d\n", (int)getpid());
    if (strcmp(mode, "comm") == 0)
        wait_for("go2", 30);
    if (strcmp(mode, "fork") == 0) {
        pid_t kid = fork();
        if (kid == 0) {
            marker("child", "pid=%d\n", (int)getpid());
            wait_for("stop", 30);
            _exit(0);
        }
        waitpid(kid, NULL, 0);
    }
    if (strcmp(mode, "pipe") == 0) {
        for (int i = 0; i < 100; i++)
            printf("after %d\n", i);
        fflush(stdout);
        return 0;
    }
    printf("after\n");
    fflush(stdout);
    if (strcmp(mode, "exit7") == 0)
        return 7;
    if (strcmp(mode, "sigterm") == 0) {
        signal(SIGTERM, SIG_DFL);
        raise(SIGTERM);
        nap_ms(5000);
        return 3;
    }
    return 0;
}
