/* A region mapped MAP_GROWSDOWN (as some runtimes make their stacks and
 * older threading libraries did): 64 KiB at the top of a 16 MiB hole,
 * filled with a pattern. Each step writes one page below its lowest
 * page, which the kernel grows the region to take; it prints the
 * region's size, whether smaps flags it "gd", and a checksum. Without
 * the flag after a restart, the next step's write would be a SIGSEGV. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define PAGE 4096UL

/* Size and "gd" flag of the mapping holding `addr`. */
static void describe(uintptr_t addr, unsigned long *size, int *gd) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    unsigned long long lo, hi;
    int in = 0;
    *size = 0;
    *gd = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = lo <= addr && addr < hi;
            if (in)
                *size = hi - lo;
        } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            *gd = strstr(line, " gd") != NULL;
        }
    }
    if (f)
        fclose(f);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    size_t hole = 16 << 20, len = 64 << 10;
    char *h = mmap(NULL, hole, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (h == MAP_FAILED)
        return 1;
    munmap(h, hole);
    char *top = h + hole;
    char *r = mmap(top - len, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED, -1, 0);
    if (r == MAP_FAILED) {
        perror("mmap MAP_GROWSDOWN");
        return 1;
    }
    for (size_t i = 0; i < len; i++)
        r[i] = (char)(i * 7);
    char *low = r;
    for (int step = 0; step < 60; step++) {
        checkpoint_window(step);
        low -= PAGE;
        memset(low, step + 1, PAGE); /* grows the region by a page */
        uint64_t sum = 0;
        for (char *p = low; p < top; p++)
            sum = sum * 31 + (unsigned char)*p;
        unsigned long size;
        int gd;
        describe((uintptr_t)(top - 1), &size, &gd);
        printf("step %d: %lu KiB, %s, sum %016llx\n", step, size >> 10, gd ? "grows down" : "fixed",
               (unsigned long long)sum);
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}
