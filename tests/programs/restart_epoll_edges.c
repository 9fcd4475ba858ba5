/* Edge-triggered epoll across a restart. An edge the program already took
 * (and did not read to the end) must not come again: only new data makes
 * a new edge. An edge not yet taken at the checkpoint must still come.
 * Each step polls four instances with timeout 0 and prints what came:
 *  et:  ET on a pipe holding 6 unread bytes, its edge taken at the start;
 *  new: ET on a pipe written at step 18, first polled at step 21 (the
 *       checkpoint comes at step 19: the edge is pending across it);
 *  one: ET|ONESHOT, fired at the start (disarmed), armed again at step 25;
 *  lt:  level-triggered on a pipe with bytes: every poll.
 * At step 30 more bytes go into the first pipe: one new edge. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "checkpoint_window.h"

static int pipe_with(const char *s, int p[2]) {
    if (pipe(p) < 0) return -1;
    if (s) write(p[1], s, strlen(s));
    return 0;
}

static int watch(int fd, unsigned ev, unsigned long data) {
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = ev, .data.u64 = data};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    return ep;
}

static int poll_now(int ep) {
    struct epoll_event e[4];
    return epoll_wait(ep, e, 4, 0);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int a[2], b[2], c[2], d[2];
    pipe_with("abcdefghij", a);
    pipe_with(NULL, b);
    pipe_with("xyz", c);
    pipe_with("lt", d);
    int ep_et = watch(a[0], EPOLLIN | EPOLLET, 1);
    int ep_new = watch(b[0], EPOLLIN | EPOLLET, 2);
    int ep_one = watch(c[0], EPOLLIN | EPOLLET | EPOLLONESHOT, 3);
    int ep_lt = watch(d[0], EPOLLIN, 4);
    char buf[4];
    printf("start: et %d one %d\n", poll_now(ep_et), poll_now(ep_one));
    read(a[0], buf, 4);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        if (step == 18) write(b[1], "new", 3);
        if (step == 25) {
            struct epoll_event e = {.events = EPOLLIN | EPOLLET | EPOLLONESHOT, .data.u64 = 3};
            epoll_ctl(ep_one, EPOLL_CTL_MOD, c[0], &e);
        }
        if (step == 30) write(a[1], "more", 4);
        int n_new = step >= 21 ? poll_now(ep_new) : -1;
        printf("step %d: et %d new %d one %d lt %d\n", step, poll_now(ep_et), n_new,
               poll_now(ep_one), poll_now(ep_lt));
        usleep(50000);
    }
    return 0;
}
