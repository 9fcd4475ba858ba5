/* Holds N MiB of memory (pseudo-random, zero or numeric), says "ready", then works:
 * a loop that writes one word of its memory at a pseudo-random place per
 * iteration and times its own iterations, keeping the longest gap (the
 * stall it felt). Commands on stdin, one byte each:
 *   r  forget the longest gap so far
 *   s  print "stall <microseconds>" (the longest gap since r)
 *   x  print "pong <bit>" (the restart bench times the first answer)
 *   q  stop writing memory in the loop (the loop still times itself)
 *   c  change 1% of the memory (a word in every 100th page), print "changed"
 * It ends at EOF. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
    size_t n = (size_t)atol(argv[1]) << 20;
    int zero = argc > 2 && strcmp(argv[2], "zero") == 0;
    /* "numeric": doubles of a smooth field, as a simulation holds them. */
    int numeric = argc > 2 && strcmp(argv[2], "numeric") == 0;
    uint64_t *p = malloc(n);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < n / 8; i++) {
        if (zero) {
            p[i] = 0;
        } else if (numeric) {
            double v = (double)(i % 1021) * 0.25 + (double)(i / 1021) * 1e-3;
            memcpy(&p[i], &v, 8);
        } else {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            p[i] = x;
        }
    }
    printf("ready\n");
    fflush(stdout);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    uint64_t last = now_ns(), longest = 0, y = 2463534242ull;
    int quiet = 0;
    for (;;) {
        char c;
        ssize_t r = read(0, &c, 1);
        if (r == 0)
            return 0;
        if (r == 1) {
            if (c == 'r') {
                longest = 0;
            } else if (c == 'q') {
                quiet = 1;
            } else if (c == 'c') {
                for (size_t pg = 0; pg < n / 4096; pg += 100) p[pg * 512] += 1;
                printf("changed\n");
                fflush(stdout);
            } else if (c == 's') {
                printf("stall %llu\n", (unsigned long long)(longest / 1000));
                fflush(stdout);
            } else {
                printf("pong %d\n", (int)(p[n / 16] & 1));
                fflush(stdout);
            }
            last = now_ns();
            continue;
        }
        y ^= y << 13; y ^= y >> 17; y ^= y << 5;
        if (!zero && !numeric && !quiet)
            p[(y % (n / 8))] += 1; /* the program goes on writing its memory */
        uint64_t t = now_ns();
        if (t - last > longest)
            longest = t - last;
        last = t;
    }
}
