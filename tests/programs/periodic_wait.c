/* A program that forks a child at a time and waits for it with wait(),
 * counting SIGCHLDs, while `ckpt run --interval` checkpoints it: each
 * wait() must return its own child with its status, and exactly one
 * SIGCHLD must come per child. Prints "ok N" or "bad N: ..." per child,
 * then "done". */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t chld;
static void on_chld(int s) { (void)s; chld++; }

int main(void) {
    signal(SIGCHLD, on_chld);
    for (int i = 0; i < 16; i++) {
        chld = 0;
        pid_t c = fork();
        if (c == 0) {
            usleep(100000);
            _exit(i);
        }
        int st = 0;
        pid_t w = wait(&st);
        if (w == c && WIFEXITED(st) && WEXITSTATUS(st) == i && chld == 1)
            printf("ok %d\n", i);
        else
            printf("bad %d: wait gave %d (child %d), status %d, %d SIGCHLDs\n", i, (int)w,
                   (int)c, st, (int)chld);
        if (w != c) waitpid(c, 0, 0);
        fflush(stdout);
        usleep(50000);
    }
    printf("done\n");
    return 0;
}
