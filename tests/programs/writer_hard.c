/* Writes its 64 MiB hard: every step rewrites a few thousand pages spread
 * over all of it and prints a checksum of what it changed; at the end a
 * checksum of all of it. Deterministic. 200 steps of 10 ms. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
    size_t n = (64u << 20) / 8;
    uint64_t *p = calloc(n, 8), x = 88172645463325252ull;
    for (int step = 0; step < 200; step++) {
        uint64_t sum = 0;
        for (int k = 0; k < 4096; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t i = x % n;
            p[i] = p[i] * 6364136223846793005ull + x;
            sum += p[i];
        }
        printf("step %d %016llx\n", step, (unsigned long long)sum);
        fflush(stdout);
        usleep(10000);
    }
    uint64_t all = 0;
    for (size_t i = 0; i < n; i++) all = all * 31 + p[i];
    printf("all %016llx\n", (unsigned long long)all);
    return 0;
}
