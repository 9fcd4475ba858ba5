/* A timerfd set on the wall clock for an absolute time 2.5 s ahead
 * (TFD_TIMER_ABSTIME), then 25 steps of 30 ms, then a wait for it: it
 * must expire at that wall-clock time, also when the program was
 * checkpointed, killed and restarted a while later in between (its
 * remaining time would make it late by as long as the program was down). */
#include <stdint.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void) {
    int fd = timerfd_create(CLOCK_REALTIME, 0);
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += 2;
    t.tv_nsec += 500000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    double deadline = t.tv_sec + t.tv_nsec / 1e9;
    struct itimerspec its = {.it_value = t};
    if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
        perror("timerfd_settime");
        return 1;
    }
    for (int i = 0; i < 25; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        fflush(stdout);
        usleep(30000);
    }
    uint64_t n = 0;
    ssize_t r = read(fd, &n, sizeof n);
    double late = now() - deadline;
    printf("expired: %zd bytes, %llu time(s), on time %s\n", r, (unsigned long long)n,
           late > -0.05 && late < 0.4 ? "yes" : "no");
    if (!(late > -0.05 && late < 0.4))
        fprintf(stderr, "late by %.3f s\n", late);
    return 0;
}
