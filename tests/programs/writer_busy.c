/* Holds 128 MiB of pseudo-random memory and prints "step N" every 10 ms
 * (400 steps, or argv[1]), changing its memory as it goes: the program
 * must keep going while its image is written. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 400;
    size_t n = 128u << 20;
    uint64_t *p = malloc(n), x = 88172645463325252ull;
    for (size_t i = 0; i < n / 8; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = x;
    }
    uint64_t sum = 0;
    for (int step = 0; step < steps; step++) {
        sum += p[(size_t)step * 4099 % (n / 8)];
        p[(size_t)step * 7919 % (n / 8)] ^= sum;
        printf("step %d %llu\n", step, (unsigned long long)(sum & 0xffff));
        fflush(stdout);
        usleep(10000);
    }
    return 0;
}
