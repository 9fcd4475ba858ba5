/* A supervisor: SIGCHLD blocked and read through a signalfd, which an
 * epoll instance watches with the pipes of three workers; each worker
 * (forked, inheriting the epoll and the signalfd, as workers do) writes
 * five lines and exits, and is started again twice. The supervisor counts
 * the workers it reaps on SIGCHLD and ends when all nine are. The kernel
 * wakes an epoll's signalfd watch for the signals of the process that
 * added it: made again by a worker at restart, the supervisor's SIGCHLD
 * never woke it (it waited 5 s and said "timeout"). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void spawn(int id, int gen, int ep, int *rfd) {
    int p[2];
    if (pipe(p))
        _exit(2);
    if (fork() == 0) {
        close(p[0]);
        for (int i = 0; i < 5; i++) {
            dprintf(p[1], "w%d.%d:%d\n", id, gen, i);
            /* Worker 0 first by far: the others still run at the
             * checkpoint (the test wants each live process's image). */
            usleep(id ? 100000 + id * 20000 : 40000);
        }
        _exit(0);
    }
    close(p[1]);
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = id};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);
    *rfd = p[0];
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    sigprocmask(SIG_BLOCK, &s, NULL);
    int sf = signalfd(-1, &s, SFD_CLOEXEC);
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = 99};
    epoll_ctl(ep, EPOLL_CTL_ADD, sf, &e);
    int rfd[3], gen[3] = {0, 0, 0}, reaped = 0, lines[3] = {0, 0, 0}, finished = 0;
    for (int i = 0; i < 3; i++)
        spawn(i, 0, ep, &rfd[i]);
    while (reaped < 9) {
        struct epoll_event ev[8];
        int n = epoll_wait(ep, ev, 8, 5000);
        if (n <= 0) {
            printf("timeout: %d of 9 workers reaped\n", reaped);
            return 1;
        }
        for (int j = 0; j < n; j++) {
            int id = ev[j].data.u32;
            if (id == 99) {
                struct signalfd_siginfo si;
                if (read(sf, &si, sizeof si) == sizeof si)
                    while (waitpid(-1, NULL, WNOHANG) > 0)
                        reaped++;
                continue;
            }
            char b[256];
            ssize_t r = read(rfd[id], b, sizeof b);
            for (ssize_t k = 0; k < r; k++)
                lines[id] += b[k] == '\n';
            if (r == 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, rfd[id], NULL);
                close(rfd[id]);
                printf("worker %d gen %d finished, lines so far %d\n", id, gen[id], lines[id]);
                /* The test checkpoints after the first. */
                checkpoint_window(++finished == 1 ? 20 : 0);
                if (++gen[id] < 3)
                    spawn(id, gen[id], ep, &rfd[id]);
            }
        }
    }
    printf("all reaped, lines %d %d %d\n", lines[0], lines[1], lines[2]);
    return 0;
}
