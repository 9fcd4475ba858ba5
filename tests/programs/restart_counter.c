/* restart_counter CTL N [NAP_MS]: print N deterministic lines to stdout
 * (stdio, flushed each line), napping between them, then a final
 * "done" line with a checksum. Marker `started` after line 20.
 * Used with stdout redirected to a file (`prog > out`) or a pipe. */
#include "ckpt_test.h"

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    int n = argc > 2 ? atoi(argv[2]) : 200;
    long nap = argc > 3 ? atol(argv[3]) : 10;
    unsigned long long x = 0x9e3779b97f4a7c15ULL, sum = 0;
    for (int i = 1; i <= n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum += x % 1000003;
        printf("line %d value %llu sum %llu\n", i, x % 1000003, sum);
        fflush(stdout);
        if (i == 20)
            marker("started", "pid=%d\n", (int)getpid());
        nap_ms(nap);
    }
    printf("done lines=%d checksum=%llu\n", n, sum);
    return 0;
}
