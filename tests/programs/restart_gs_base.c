/* A GS base the program set itself (arch_prctl ARCH_SET_GS: Wine's
 * thread block, some runtimes' per-thread data) stays set across a
 * restart; each step reads a word through %gs. Before, the restarted
 * program's first %gs access crashed it (SIGSEGV). */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

static long area[4] = {7, 0, 0, 0};

int main(void) {
    if (syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)area) != 0) {
        perror("ARCH_SET_GS");
        return 1;
    }
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        long v;
        __asm__ volatile("movq %%gs:0, %0" : "=r"(v));
        area[0] = v + 1;
        printf("step %d: through gs %ld\n", step, v);
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
