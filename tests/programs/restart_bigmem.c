/* 72 MiB of pseudo-random memory in three buffers (enough that the
 * restorer copies with two threads), changed a little every step; at
 * the end a hash of every byte. A restart must bring back each byte. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "checkpoint_window.h"

static uint64_t x = 88172645463325252ull;
static uint64_t next(void) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    size_t sizes[3] = {40u << 20, 24u << 20, 8u << 20};
    uint64_t *buf[3];
    for (int b = 0; b < 3; b++) {
        buf[b] = malloc(sizes[b]);
        if (!buf[b]) return 1;
        for (size_t i = 0; i < sizes[b] / 8; i++) buf[b][i] = next();
    }
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        for (int b = 0; b < 3; b++)
            for (int k = 0; k < 64; k++) buf[b][next() % (sizes[b] / 8)] ^= next();
        printf("step %d\n", step);
        usleep(20000);
    }
    uint64_t h = 1469598103934665603ull;
    for (int b = 0; b < 3; b++)
        for (size_t i = 0; i < sizes[b] / 8; i++) h = (h ^ buf[b][i]) * 1099511628211ull;
    printf("hash %016llx\n", (unsigned long long)h);
    return 0;
}
