/* Advice the kernel keeps on mappings: MADV_DONTDUMP (as OpenSSL's secure
 * heap gives it), MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_SEQUENTIAL,
 * MADV_RANDOM, and a range locked on fault (mlock2 MLOCK_ONFAULT) with one
 * page of four touched. Every step prints each range's flags as smaps
 * shows them and how much of the lock-on-fault range is locked. Before,
 * a restart dropped all the advice (said nothing), and locked the whole
 * lock-on-fault range at once. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

/* The flags among `want` that range `a` has, and its Locked: kB. */
static void show(const char *name, void *a) {
    static const char *want[] = {"dd", "hg", "nh", "sr", "rr", "lo", "lf"};
    FILE *f = fopen("/proc/self/smaps", "r");
    char l[512];
    int in = 0;
    unsigned long s, e, locked = 0;
    printf("  %-12s", name);
    while (fgets(l, sizeof l, f)) {
        if (sscanf(l, "%lx-%lx ", &s, &e) == 2 && strchr(l, ':') > l + 20) {
            in = (unsigned long)a >= s && (unsigned long)a < e;
        } else if (in && sscanf(l, "Locked: %lu", &locked) == 1) {
        } else if (in && !strncmp(l, "VmFlags:", 8)) {
            for (unsigned i = 0; i < sizeof want / sizeof *want; i++) {
                char w[8];
                snprintf(w, sizeof w, " %s ", want[i]);
                if (strstr(l + 7, w))
                    printf(" %s", want[i]);
            }
            printf(" locked %lu kB\n", locked);
        }
    }
    fclose(f);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *names[] = {"DONTDUMP", "HUGEPAGE", "NOHUGEPAGE", "SEQUENTIAL", "RANDOM", "LOCKONFAULT"};
    int advice[] = {MADV_DONTDUMP, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_SEQUENTIAL, MADV_RANDOM};
    char *p[6];
    for (int i = 0; i < 6; i++) {
        p[i] = mmap(0, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (i < 5 && madvise(p[i], 4 << 20, advice[i]))
            perror("madvise");
        p[i][0] = (char)i + 1;
    }
    if (mlock2(p[5], 4 * 4096, MLOCK_ONFAULT))
        perror("mlock2");
    for (int step = 0; step < 30; step++) {
        checkpoint_window(step);
        /* The flags before the step's line: the test checkpoints once it
         * sees "step 19", and a checkpoint's writer (a fork) shares the
         * locked page while it runs: smaps would count half of it. */
        if (step % 10 == 9)
            for (int i = 0; i < 6; i++)
                show(names[i], p[i]);
        printf("step %d\n", step);
        struct timespec t = {0, 25000000};
        while (nanosleep(&t, &t) != 0) {
        }
    }
    return 0;
}
