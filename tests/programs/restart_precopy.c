/* A first checkpoint of a program holding much memory is taken in two
 * halves (a pre-copy): the memory read while the program runs, then what
 * it wrote meanwhile, copied while it is frozen. Holds 160 MiB of
 * pseudo-random words, then works 1200 rounds 5 ms apart, printing "step
 * N"; each round writes 64 words: "hot" keeps them in the first MiB (a
 * pre-copy then pays), "everywhere" spreads them over every page within
 * a few rounds (the pre-copy gives up, the checkpoint is whole). Ends
 * with a hash of the whole memory: a restart must give the very same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define LEN (160ul << 20)
#define WORDS (LEN / 8)

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int everywhere = argc > 1 && strcmp(argv[1], "everywhere") == 0;
    uint64_t *w = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (w == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < WORDS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w[i] = x;
    }
    for (int round = 0; round < 1200; round++) {
        printf("step %d\n", round);
        for (int k = 0; k < 64; k++) {
            size_t at = everywhere ? ((size_t)round * 64 + k) * 4099 % WORDS
                                   : ((size_t)round * 64 + k) * 37 % (1u << 17);
            w[at] += (uint64_t)round * 1000003u + k;
        }
        if (everywhere) {
            /* and a word in each of 640 pages further on, so that every
             * page is written within about 64 rounds */
            for (size_t p = 0; p < 640; p++)
                w[((round * 640 + p) % (LEN / 4096)) * 512 + round % 512] ^= p;
        }
        struct timespec t = {0, 5000000};
        while (nanosleep(&t, &t) != 0) {
        }
    }
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < WORDS; i++)
        h = (h ^ w[i]) * 1099511628211ull;
    printf("hash %016llx\n", (unsigned long long)h);
    return 0;
}
