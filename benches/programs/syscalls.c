/* Times open+close, dup+close and fcntl(F_GETFL) loops; prints
 * "name ns_per_op" lines. Run natively and under the shim by
 * benches/wrapper_overhead.rs. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    const char *path = argc > 2 ? argv[2] : "/dev/null";
    double t = now();
    for (long i = 0; i < n; i++) close(open(path, O_RDONLY));
    printf("open+close %.1f\n", (now() - t) / n);
    int fd = open(path, O_RDONLY);
    t = now();
    for (long i = 0; i < n; i++) close(dup(fd));
    printf("dup+close %.1f\n", (now() - t) / n);
    volatile int sink = 0;
    t = now();
    for (long i = 0; i < n * 4; i++) sink += fcntl(fd, F_GETFL);
    printf("fcntl(F_GETFL) %.1f\n", (now() - t) / (n * 4));
    return 0;
}
