/* Looks for children every way a program can while it is checkpointed:
 * waitpid/wait4/waitid on any child, with __WALL and WNOHANG, plain wait,
 * and a SIGCHLD handler. It has no children of its own, so every answer
 * must be "no child" (ECHILD), whatever ckpt's image writers do meanwhile.
 * Holds 64 MiB so that each image takes a while to write. Loops every
 * 20 ms until the file STOP exists, then makes a blocking __WALL wait,
 * which must also say ECHILD, and prints what it saw. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t sigchld;
static void on_chld(int s) { (void)s; sigchld++; }

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    signal(SIGCHLD, on_chld);
    size_t n = 64u << 20;
    uint64_t *p = malloc(n), x = 88172645463325252ull;
    for (size_t i = 0; i < n / 8; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = x;
    }
    long looks = 0, unexpected = 0;
    printf("looking\n");
    fflush(stdout);
    while (access(argv[1], F_OK) != 0) {
        int st;
        struct rusage ru;
        siginfo_t si = {0};
        errno = 0;
        if (waitpid(-1, &st, __WALL | WNOHANG) != -1 || errno != ECHILD)
            unexpected++;
        errno = 0;
        if (wait4(-1, &st, __WALL | WNOHANG, &ru) != -1 || errno != ECHILD)
            unexpected++;
        errno = 0;
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | __WALL) != -1 || errno != ECHILD ||
            si.si_pid != 0)
            unexpected++;
        errno = 0;
        if (wait(&st) != -1 || errno != ECHILD)
            unexpected++;
        looks++;
        p[(looks * 4099) % (n / 8)] += looks;
        usleep(20000);
    }
    int st;
    errno = 0;
    int r = waitpid(-1, &st, __WALL);
    printf("looked %s, unexpected answers %ld, SIGCHLD %d, blocking __WALL wait %d/%s\n",
           looks > 10 ? "often" : "rarely", unexpected, (int)sigchld, r,
           errno == ECHILD ? "ECHILD" : "other");
    return 0;
}
