/* The floating-point exception flags a program reads with fetestexcept
 * (and the SSE control register) are what a program started without
 * ckpt has: all clear at main, and unchanged by a checkpoint and a
 * restart. Before, the shim's start-up arithmetic left "inexact" and
 * "denormal" set (MXCSR 0x1fa2), and the images carried them on. Then
 * a division by zero sets one flag, which must still be the only one
 * after the restart. */
#include <stdio.h>
#include <time.h>
#include <xmmintrin.h>
#include "checkpoint_window.h"

/* fetestexcept without libm: the SSE flags and the x87 status word's. */
static unsigned flags(void) {
    unsigned short sw;
    __asm__ volatile("fnstsw %0" : "=am"(sw));
    return (_mm_getcsr() | sw) & 0x3f;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("at main: flags %#x, mxcsr %#x\n", flags(), _mm_getcsr());
    volatile double zero = 0.0, one = 1.0;
    volatile double inf = one / zero;
    (void)inf;
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        struct timespec t = {0, 50000000};
        while (nanosleep(&t, &t) != 0) {
        }
    }
    printf("at the end: flags %#x, mxcsr %#x\n", flags(), _mm_getcsr());
    return 0;
}
