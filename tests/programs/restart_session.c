/* A program that made a session of its own (setsid, as a daemon does to
 * leave its terminal) stays its leader across a restart: leader of its
 * session and of its process group. Before, it came back in the
 * restarter's session (getsid and getpgrp 0 in the namespace), where the
 * restarter's terminal's hangup would reach it. */
#include <stdio.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    if (setsid() < 0) {
        perror("setsid");
        return 1;
    }
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        pid_t me = getpid();
        printf("step %d: session leader %s, group leader %s\n", step,
               getsid(0) == me ? "yes" : "no", getpgrp() == me ? "yes" : "no");
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
