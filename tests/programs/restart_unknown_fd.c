/* Holds descriptors ckpt cannot restore (a userfaultfd, and a pidfd of
 * process 1, which is not in the job) at fixed numbers, and an io_uring
 * whose submission ring it maps; after step 30 prints whether each number
 * is still open. Under ckpt they come back as /dev/null (open) with a
 * warning at checkpoint and restart, the ring as plain memory with its
 * bytes (said too); the output is the same either way. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */);
    int p = (int)syscall(434 /* pidfd_open */, 1, 0);
    if (u >= 0)
        dup2(u, 40), close(u);
    if (p >= 0)
        dup2(p, 41), close(p);
    struct io_uring_params ip;
    memset(&ip, 0, sizeof ip);
    int r = (int)syscall(SYS_io_uring_setup, 4, &ip);
    void *ring = MAP_FAILED;
    if (r >= 0) {
        dup2(r, 42), close(r);
        ring = mmap(0, ip.sq_off.array + ip.sq_entries * 4, PROT_READ | PROT_WRITE, MAP_SHARED,
                    42, IORING_OFF_SQ_RING);
    }
    printf("made: %s %s\n", u >= 0 ? "userfaultfd" : "-", p >= 0 ? "pidfd" : "-");
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        if (step == 30)
            printf("40 open: %d, 41 open: %d, 42 open: %d, ring entries %u\n",
                   fcntl(40, F_GETFD) >= 0, fcntl(41, F_GETFD) >= 0, r < 0 || fcntl(42, F_GETFD) >= 0,
                   ring == MAP_FAILED ? 4 : *(unsigned *)((char *)ring + ip.sq_off.ring_entries));
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
