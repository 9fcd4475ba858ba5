/* CLOCK_MONOTONIC and CLOCK_BOOTTIME across a restart: the program keeps
 * the largest step it saw between two readings 50 ms apart. The test
 * waits seconds between the kill and the restart; the clocks must go on
 * from where the program saw them (as its timers do), not jump. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

static double now(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    double m0 = now(CLOCK_MONOTONIC), b0 = now(CLOCK_BOOTTIME), mmax = 0, bmax = 0;
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        if (i % 10 == 9) printf("step %d\n", i);
        usleep(50000);
        double m = now(CLOCK_MONOTONIC), b = now(CLOCK_BOOTTIME);
        if (m - m0 > mmax) mmax = m - m0;
        if (b - b0 > bmax) bmax = b - b0;
        m0 = m;
        b0 = b;
    }
    printf("largest monotonic step under 1.5 s: %d, boottime: %d\n", mmax < 1.5, bmax < 1.5);
    return 0;
}
