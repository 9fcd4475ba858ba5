/* N MiB of pseudo-random memory, then STEPS steps: each writes a word in
 * every 100th page (1% of the memory) and prints a checksum of the memory
 * it changed, so a restart that brought back any page wrong shows in the
 * output. Usage: store_memory MIB STEPS */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t n = (size_t)atol(argv[1]) << 20;
    int steps = atoi(argv[2]);
    uint64_t *p = malloc(n);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n / 8; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = x;
    }
    size_t pages = n / 4096;
    for (int s = 0; s < steps; s++) {
        uint64_t sum = 0;
        for (size_t pg = (size_t)s % 100; pg < pages; pg += 100) {
            uint64_t *w = p + pg * 512 + (s % 512);
            *w = *w * 6364136223846793005ull + (uint64_t)s;
            sum += *w + p[pg * 512 + 511 - (s % 512)];
        }
        printf("step %d %016llx\n", s, (unsigned long long)sum);
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
