/* Large reservations, as ThreadSanitizer, the Go runtime and JVMs make
 * them: a 2 TiB read-write MAP_NORESERVE region with a few pages written
 * far apart, a 1 TiB PROT_NONE reservation with a small part made
 * read-write and written, and 1 TiB of shared anonymous NORESERVE memory
 * with a few pages written. After a restart all must still be there with
 * their protection, NORESERVE (smaps VmFlags "nr") and contents. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define TIB (1ULL << 40)
#define GIB (1ULL << 30)

/* "rw-p nr" style facts of the mapping starting at `start`. */
static void describe(const char *what, void *start) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512], perms[8] = "?";
    unsigned long long lo, hi, size = 0;
    int found = 0, nr = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) == 3 && strchr(line, '-') < strchr(line, ' ')) {
            found = lo == (unsigned long long)(uintptr_t)start;
            if (found)
                size = hi - lo;
            continue;
        }
        if (found && strncmp(line, "VmFlags:", 8) == 0) {
            nr = strstr(line, " nr") != NULL;
            break;
        }
    }
    if (f)
        fclose(f);
    printf("%s: %s %llu GiB%s\n", what, found ? perms : "missing", size / GIB, nr ? " noreserve" : "");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    uint8_t *big = mmap(NULL, 2 * TIB, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uint8_t *none = mmap(NULL, TIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *shared = mmap(NULL, TIB, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (big == MAP_FAILED || none == MAP_FAILED || shared == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    /* A small read-write window inside the reservation (its own region). */
    uint8_t *win = none + 512 * GIB;
    if (mprotect(win, 1 << 20, PROT_READ | PROT_WRITE) != 0) {
        perror("mprotect");
        return 1;
    }
    for (int i = 0; i < 16; i++)
        memset(big + (uint64_t)i * (128 * GIB) + 4096 * i, 'a' + i, 4096);
    memset(win, 'w', 1 << 20);
    for (int i = 0; i < 8; i++)
        memset(shared + (uint64_t)i * (100 * GIB), 'A' + i, 8192);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        unsigned long sum = 0;
        for (int i = 0; i < 16; i++) {
            uint8_t *p = big + (uint64_t)i * (128 * GIB) + 4096 * i;
            sum += p[0] + p[4095];
            p[step] = (uint8_t)(p[step] + 1);
        }
        sum += win[step * 1000];
        win[step * 1000] = (uint8_t)(win[step * 1000] + 1);
        for (int i = 0; i < 8; i++) {
            uint8_t *p = shared + (uint64_t)i * (100 * GIB);
            sum += p[0] * 3 + p[8191];
            p[step]++;
        }
        printf("step %d sum %lu\n", step, sum);
        usleep(50000);
    }
    describe("noreserve region", big);
    describe("reservation", none);
    describe("window", win);
    describe("shared", shared);
    return 0;
}
