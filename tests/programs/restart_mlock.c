/* Locked memory across a restart: a 1 MiB buffer locked with mlock, then
 * mlockall(MCL_CURRENT | MCL_FUTURE) (it may fail without CAP_IPC_LOCK:
 * the same way in both runs). After step 19 it idles a second (the test
 * checkpoints then); at the end it maps a new region and prints whether
 * the buffer and the new region are locked, and whether the resident
 * size stays small (mlockall must not populate ckpt's own mappings). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "checkpoint_window.h"

/* Whether the mapping holding `addr` is locked (it may have merged with
 * a neighbour, so look for the range that contains it). */
static int locked(void *addr) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0, lo = 0;
    unsigned long a = (unsigned long)addr, s, e;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = s <= a && a < e;
        else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            lo = strstr(line, " lo ") != NULL;
            break;
        }
    }
    if (f) fclose(f);
    return lo;
}

static long vmrss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    char *buf = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(buf, 7, 1 << 20);
    printf("mlock: %d\n", mlock(buf, 1 << 20));
    int all = mlockall(MCL_CURRENT | MCL_FUTURE);
    printf("mlockall: %d\n", all == 0);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        if (i % 10 == 9) printf("step %d\n", i);
        usleep(20000);
    }
    char *later = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    later[0] = 1;
    printf("buffer locked %d, later mapping locked %d, resident under 256 MiB %d\n",
           locked(buf), locked(later) == (all == 0), vmrss_kb() < (256 << 10));
    return 0;
}
