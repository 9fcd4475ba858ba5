/* The checkpoint window of the test programs, apart so that programs
 * not using ckpt_test.h include it alone. */
#ifndef CKPT_CHECKPOINT_WINDOW_H
#define CKPT_CHECKPOINT_WINDOW_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Call at the top of each step of a loop that prints "step N": under the
 * tests' `ckpt run` (CKPT_TEST_HOLD names a directory, see HOLD_ENV in
 * tests/common/restart.rs) the program waits before step 20 until the
 * test, having taken its checkpoint after "step 19", creates DIR/released
 * (as it kills the program or waits for its end). The checkpoint lands
 * there however busy the machine, never after the program ended. The
 * reference run, without the variable, does not wait; what is printed is
 * the same. Bounded: not released within 30 s, the test died or forgot:
 * the program says so and exits with status 97. */
static __attribute__((unused)) void checkpoint_window(int step) {
    const char *d = getenv("CKPT_TEST_HOLD");
    if (step != 20 || !d || !*d) return;
    char p[4096];
    snprintf(p, sizeof p, "%s/released", d);
    for (int i = 0; access(p, F_OK) != 0; i++) {
        if (i == 6000) {
            fprintf(stderr, "checkpoint window: %s not there after 30 s\n", p);
            exit(97);
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

#endif
