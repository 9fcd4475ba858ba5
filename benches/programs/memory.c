/* Holds N MiB of memory (pseudo-random or zero), says "ready", then
 * answers each byte on stdin with "pong" until EOF. The checkpoint/restart
 * bench times how fast a restarted copy answers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t n = (size_t)atol(argv[1]) << 20;
    int zero = argc > 2 && strcmp(argv[2], "zero") == 0;
    uint64_t *p = malloc(n);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n / 8; i++) {
        if (zero) {
            p[i] = 0;
        } else {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            p[i] = x;
        }
    }
    printf("ready\n");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) == 1) {
        printf("pong %d\n", (int)(p[n / 16] & 1));
        fflush(stdout);
    }
    return 0;
}
