/* A checkpoint that gathers less state than the one before it. Opens N
 * descriptors (argv[2]) and fills 1 MiB of shared anonymous memory; the
 * test checkpoints (a whole image, whose gathered state is large: N
 * descriptors), the program closes them all, the test checkpoints again
 * (incremental: far less state) and restarts from that image. ckpt builds
 * what it gathers in its own arena while the program is frozen, and the
 * restarted program returns through it: the second checkpoint's state
 * must come back, not pieces of the first one's. Prints its open
 * descriptors and the shared memory's hash, which must equal an
 * uninterrupted run's. */
#include "ckpt_test.h"
#include <sys/mman.h>

#define SHARED (1u << 20)

/* Below `upto` (ckpt keeps its own few at the top of the table). */
static int open_fds(int upto) {
    int n = 0;
    for (int fd = 0; fd < upto; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    setvbuf(stdout, NULL, _IONBF, 0);
    int n = argc > 2 ? atoi(argv[2]) : 1000;
    int *fds = malloc(sizeof(int) * (size_t)n);
    CHECK(fds != NULL);
    char path[4096];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%d", g_ctl, i % 50);
        fds[i] = open(path, O_RDWR | O_CREAT, 0644);
        CHECK(fds[i] >= 0);
    }
    unsigned char *sh = mmap(NULL, SHARED, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    for (size_t i = 0; i < SHARED; i++) sh[i] = (unsigned char)(next_rand() >> 11);
    int before = open_fds(n + 64);
    marker("phase1", "ok\n");
    wait_for("go1", 60);
    for (int i = 0; i < n; i++) close(fds[i]);
    sh[12345] ^= 0x5a;
    marker("phase2", "ok\n");
    wait_for("go2", 60);
    printf("descriptors %d more than now, %d now\n", before - open_fds(n + 64), open_fds(n + 64));
    printf("shared %016llx\n", (unsigned long long)hash_bytes(sh, SHARED));
    return 0;
}
