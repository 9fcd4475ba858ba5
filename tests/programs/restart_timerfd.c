/* Timerfds in the state a checkpoint must keep exactly:
 * - a periodic one (interval 10 s) that fired once and was not read: it is
 *   due, readable, armed for its next expiry, with one unread expiration;
 * - a one-shot that fired and was not read: disarmed, with one unread
 *   expiration;
 * - a periodic one (interval 20 ms) never read: it keeps counting.
 * At the end each is polled, read, and its setting printed (in a form that
 * does not depend on timing). */
#define _GNU_SOURCE
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void show(const char *name, int fd, int exact) {
    struct pollfd p = {fd, POLLIN, 0};
    int ready = poll(&p, 1, 0);
    struct itimerspec g;
    timerfd_gettime(fd, &g);
    long long v = g.it_value.tv_sec * 1000000000LL + g.it_value.tv_nsec;
    long long iv = g.it_interval.tv_sec * 1000000000LL + g.it_interval.tv_nsec;
    uint64_t n = 0;
    ssize_t r = read(fd, &n, 8);
    if (exact)
        printf("%s: readable=%d armed=%d value<=interval=%d interval=%lld read=%zd ticks=%llu\n",
               name, ready, v > 0, v <= iv, iv, r, (unsigned long long)n);
    else
        printf("%s: readable=%d armed=%d interval=%lld read=%zd many=%d\n", name, ready,
               v > 0, iv, r, n > 50);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int periodic = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    int oneshot = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    int fast = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec p = {{10, 0}, {0, 1000}};
    struct itimerspec o = {{0, 0}, {0, 1000}};
    struct itimerspec f = {{0, 20000000}, {0, 20000000}};
    if (timerfd_settime(periodic, 0, &p, NULL) || timerfd_settime(oneshot, 0, &o, NULL) ||
        timerfd_settime(fast, 0, &f, NULL))
        return 1;
    usleep(10000);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    show("periodic", periodic, 1);
    show("oneshot", oneshot, 1);
    show("fast", fast, 0);
    return 0;
}
