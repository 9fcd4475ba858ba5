/* getppid before and after the checkpoint: the parent the program had.
 * Its parent is outside a restart's pid namespace, where the kernel
 * answers 0; a watchdog that compares getppid with the pid it noted at
 * start (its parent gone, it was adopted) would exit. A forked child's
 * parent is the program itself. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    pid_t noted = getppid();
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        pid_t now = getppid();
        printf("step %d parent %s\n", step, now == noted ? "the same" : now == 0 ? "0" : "another");
        fflush(stdout);
        usleep(20000);
    }
    pid_t me = getpid(), c = fork();
    if (c == 0) {
        printf("the child's parent is %s\n", getppid() == me ? "the program" : "another");
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    return 0;
}
