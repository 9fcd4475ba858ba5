/* mmap_shared_file CTL FILE MIB STEPS [dense]: make FILE (a first page
 * written, the rest a hole, MIB MiB in all; with `dense`, every page
 * written through the mapping first), map it shared and writable, close the
 * descriptor, then for STEPS steps store into pseudo-random pages (holes
 * included) and a counter on the first page, printing each step with a
 * hash of the whole mapping. Marker `started` after step 20. Its stdout
 * and FILE are compared with an uninterrupted run's. */
#include "ckpt_test.h"
#include <sys/mman.h>

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    if (argc < 5) {
        fprintf(stderr, "usage: %s CTL FILE MIB STEPS\n", argv[0]);
        return 2;
    }
    size_t size = (size_t)atol(argv[3]) << 20;
    int steps = atoi(argv[4]);
    int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    char first[4096];
    memset(first, 'h', sizeof first);
    if (write(fd, first, sizeof first) != (ssize_t)sizeof first || ftruncate(fd, size) != 0) {
        perror("write");
        return 1;
    }
    unsigned char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    close(fd);
    size_t pages = size / 4096;
    if (argc > 5 && strcmp(argv[5], "dense") == 0)
        for (size_t p = 1; p < pages; p++)
            memset(m + p * 4096, (int)(p * 13 + 1), 4096);
    for (int i = 1; i <= steps; i++) {
        size_t p = next_rand() % pages;
        m[p * 4096 + (i % 4096)] += (unsigned char)(i * 7 + 1);
        m[8 + i % 64] = (unsigned char)i;
        printf("step %d page %zu hash %llu\n", i, p, (unsigned long long)hash_bytes(m, size));
        fflush(stdout);
        if (i == 20)
            marker("started", "pid=%d\n", (int)getpid());
        nap_ms(10);
    }
    msync(m, size, MS_SYNC);
    printf("done\n");
    return 0;
}
