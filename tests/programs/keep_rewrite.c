/* keep_rewrite CTL STEPS NAP_MS: 16 MiB of deterministic memory; each
 * step rewrites a few hundred pages of it (the rest stays as it was, so
 * incremental images take it from earlier ones) and prints a checksum of
 * what it changed; at the end a checksum of all of it. Marker `started`
 * once all of it is written. */
#include "ckpt_test.h"
#include <stdint.h>

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    int steps = argc > 2 ? atoi(argv[2]) : 100;
    long nap = argc > 3 ? atol(argv[3]) : 20;
    size_t n = (16u << 20) / 8;
    uint64_t *p = malloc(n * 8), x = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = x;
    }
    marker("started", "pid=%d\n", (int)getpid());
    for (int step = 0; step < steps; step++) {
        uint64_t sum = 0;
        for (int k = 0; k < 40; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t i = x % n;
            p[i] = p[i] * 6364136223846793005ull + x;
            sum += p[i];
        }
        printf("step %d %016llx\n", step, (unsigned long long)sum);
        fflush(stdout);
        nap_ms(nap);
    }
    uint64_t all = 0;
    for (size_t i = 0; i < n; i++) all = all * 31 + p[i];
    printf("all %016llx\n", (unsigned long long)all);
    return 0;
}
