/* Memory kept out of forks: 4 MiB advised MADV_DONTFORK (as node's V8
 * heap is) and 64 KiB advised MADV_WIPEONFORK, both rewritten every step.
 * ckpt writes images from a forked child, which must still see both; and
 * after a restart the advice must be back (read from /proc/self/smaps).
 * With argument "raw" the advice is given by raw system calls, which
 * ckpt's madvise wrapper does not see (the checkpoint must notice anyway).
 * Prints "step N" every 10 steps, then checksums and the advice flags. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define A_LEN (4u << 20)
#define B_LEN (64u << 10)

static unsigned long sum(const unsigned char *p, size_t n) {
    unsigned long s = 0;
    for (size_t i = 0; i < n; i++) s = s * 31 + p[i];
    return s;
}

/* Whether the VmFlags of the mapping at `addr` hold `flag`. */
static int has_flag(void *addr, const char *flag) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512], want[32];
    int in = 0, found = 0;
    snprintf(want, sizeof want, "%lx-", (unsigned long)addr);
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, want, strlen(want)) == 0) in = 1;
        else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            char pat[8];
            snprintf(pat, sizeof pat, " %s ", flag);
            found = strstr(line, pat) != NULL;
            break;
        }
    }
    if (f) fclose(f);
    return found;
}

static int advise(int raw, void *p, size_t n, int advice) {
    return raw ? (int)syscall(SYS_madvise, p, n, advice) : madvise(p, n, advice);
}

int main(int argc, char **argv) {
    int raw = argc > 1 && strcmp(argv[1], "raw") == 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    unsigned char *a = mmap(NULL, A_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *b = mmap(NULL, B_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED || b == MAP_FAILED) return 1;
    if (advise(raw, a, A_LEN, MADV_DONTFORK) || advise(raw, b, B_LEN, MADV_WIPEONFORK)) return 1;
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        for (size_t k = 0; k < A_LEN; k += 512) a[k] = (unsigned char)(k / 512 * 7 + i);
        for (size_t k = 0; k < B_LEN; k++) b[k] = (unsigned char)(k * 3 + i);
        if (i % 10 == 9) printf("step %d\n", i);
        usleep(50000);
    }
    printf("dontfork sum %lx, wipeonfork sum %lx\n", sum(a, A_LEN), sum(b, B_LEN));
    printf("advice: dontfork=%d wipeonfork=%d\n", has_flag(a, "dc"), has_flag(b, "wf"));
    return 0;
}
