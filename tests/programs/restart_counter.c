/* restart_counter CTL N [NAP_MS [pages]]: print N deterministic lines to
 * stdout (stdio, flushed each line), napping between them, then a final
 * "done" line with a checksum. Marker `started` after line 20.
 * Used with stdout redirected to a file (`prog > out`) or a pipe. With
 * "pages", each line also writes a page of its own (of 512, in turn), so
 * that an image taken between lines holds pages later ones leave alone,
 * as a program's growing data does (tests/incremental.rs folds such
 * images). */
#include "ckpt_test.h"

static volatile char pages[512][4096];

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    int n = argc > 2 ? atoi(argv[2]) : 200;
    long nap = argc > 3 ? atol(argv[3]) : 10;
    int own_pages = argc > 4 && strcmp(argv[4], "pages") == 0;
    unsigned long long x = 0x9e3779b97f4a7c15ULL, sum = 0;
    for (int i = 1; i <= n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum += x % 1000003;
        if (own_pages)
            pages[i % 512][i % 4096] = (char)x;
        printf("line %d value %llu sum %llu\n", i, x % 1000003, sum);
        fflush(stdout);
        if (i == 20)
            marker("started", "pid=%d\n", (int)getpid());
        nap_ms(nap);
    }
    printf("done lines=%d checksum=%llu\n", n, sum);
    return 0;
}
