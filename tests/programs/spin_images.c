/* spin_images CTL: compute in a loop that calls nothing (no wrapper runs
 * on the only thread, so a checkpoint's coordinator is outside every
 * wrapper), printing a checksum every 20 of 200 rounds; "started" first.
 * Used to check that ckpt's own image writes are never taken for the
 * job's files. */
#include "ckpt_test.h"

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    printf("started\n");
    fflush(stdout);
    uint64_t x = 0x9e3779b97f4a7c15ULL, sum = 0;
    for (int round = 1; round <= 200; round++) {
        for (long i = 0; i < 4000000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sum += x >> 40;
        }
        if (round % 20 == 0) {
            printf("round %d sum %llu\n", round, (unsigned long long)sum);
            fflush(stdout);
        }
    }
    printf("done\n");
    return 0;
}
