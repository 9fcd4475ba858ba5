/* An event loop: epoll watching a timerfd (every 100 ms) and a signalfd
 * (SIGUSR1, raised by the loop every 10 ticks). Output is deterministic:
 * "tick N" every 10 ticks, "sig 10" for each signal read, then the totals.
 * A restart must bring back the epoll set with its data, the timer's
 * setting and the signalfd's mask. */
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/signalfd.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <unistd.h>
#include <time.h>
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    struct itimerspec its = {{0, 100000000}, {0, 100000000}};
    timerfd_settime(tfd, 0, &its, NULL);
    sigset_t m; sigemptyset(&m); sigaddset(&m, SIGUSR1); sigprocmask(SIG_BLOCK, &m, NULL);
    int sfd = signalfd(-1, &m, SFD_CLOEXEC);
    struct epoll_event e = {EPOLLIN, {.u64 = 111}}; epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e);
    e.data.u64 = 222; epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &e);
    int ticks = 0, sigs = 0;
    while (ticks < 40) {
        struct epoll_event out[4];
        int n = epoll_wait(ep, out, 4, -1);
        if (n < 0) { perror("epoll_wait"); return 1; }
        for (int i = 0; i < n; i++) {
            if (out[i].data.u64 == 111) { uint64_t x; if (read(tfd, &x, 8) == 8) ticks++; if (ticks % 10 == 0) { printf("tick %d\n", ticks); kill(getpid(), SIGUSR1); } }
            else if (out[i].data.u64 == 222) { struct signalfd_siginfo si; if (read(sfd, &si, sizeof si) == sizeof si) { sigs++; printf("sig %d\n", si.ssi_signo); } }
            else { printf("bad data %lu\n", (unsigned long)out[i].data.u64); return 1; }
        }
    }
    printf("done ticks=%d sigs=%d\n", ticks, sigs);
    return 0;
}
