/* Looks for children every way a program can while it is checkpointed:
 * waitpid/wait4/waitid on any child, with __WALL and WNOHANG, plain wait,
 * and a SIGCHLD handler. It has no children of its own, so every answer
 * must be "no child" (ECHILD), whatever ckpt's image writers do meanwhile.
 * Holds 64 MiB so that each image takes a while to write. Then a blocking
 * __WALL wait must also say ECHILD. */
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

int main(void) {
    signal(SIGCHLD, on_chld);
    size_t n = 64u << 20;
    uint64_t *p = malloc(n), x = 88172645463325252ull;
    for (size_t i = 0; i < n / 8; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = x;
    }
    for (int step = 0; step < 60; step++) {
        int st;
        errno = 0;
        int a = waitpid(-1, &st, __WALL | WNOHANG);
        int ea = errno;
        errno = 0;
        struct rusage ru;
        int b = wait4(-1, &st, __WALL | WNOHANG, &ru);
        int eb = errno;
        errno = 0;
        siginfo_t si = {0};
        int c = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | __WALL);
        int ec = errno;
        errno = 0;
        int d = wait(&st);
        int ed = errno;
        printf("step %d: waitpid %d/%d wait4 %d/%d waitid %d/%d/%d wait %d/%d sigchld %d sum %llu\n",
               step, a, ea, b, eb, c, ec, (int)si.si_pid, d, ed, (int)sigchld,
               (unsigned long long)(p[step * 1000] & 0xff));
        fflush(stdout);
        p[step * 1000] += step;
        usleep(20000);
    }
    int st;
    errno = 0;
    int r = waitpid(-1, &st, __WALL);
    printf("blocking __WALL wait: %d/%d, sigchld %d\n", r, errno, (int)sigchld);
    return 0;
}
