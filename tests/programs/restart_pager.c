/* Memory the kernel reads and writes for the program after a restart:
 * a 48 MiB buffer whose first half holds data (stored in the image) and
 * whose second half was never touched (no page stored: in a region the
 * pager fills, a page that stays missing until the program or the
 * kernel touches it). After the checkpoint ("step 19") the program has
 * the kernel write into untouched pages (read(2) from a pipe, pread of
 * /proc/self/cmdline) and read from stored ones (write(2) into the
 * pipe), and a forked child checks a stored page. At the end a hash of
 * every byte. CKPT_TEST_PAGER_SMOOTH=1 fills with data that compresses. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define SIZE (48u << 20)
#define PAGE 4096u

static uint64_t x = 88172645463325252ull;
static uint64_t next(void) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

static uint64_t hash(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int smooth = getenv("CKPT_TEST_PAGER_SMOOTH") != NULL;
    unsigned char *buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return 1;
    uint64_t *w = (uint64_t *)buf;
    for (size_t i = 0; i < SIZE / 2 / 8; i++) w[i] = smooth ? i / 512 : next();
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        w[next() % (SIZE / 2 / 8)] ^= next();
        printf("step %d\n", step);
        if (step == 20) {
            /* The kernel copies stored pages into a pipe and back into
             * untouched ones. */
            int p[2];
            if (pipe(p) != 0) return 2;
            unsigned char *from = buf + 5 * PAGE + 100;
            unsigned char *to = buf + SIZE / 2 + 7 * PAGE + 200;
            if (write(p[1], from, 3 * PAGE) != 3 * PAGE) return 3;
            size_t got = 0;
            while (got < 3 * PAGE) {
                ssize_t n = read(p[0], to + got, 3 * PAGE - got);
                if (n <= 0) return 4;
                got += n;
            }
            printf("pipe copy %s\n", memcmp(from, to, 3 * PAGE) == 0 ? "same" : "DIFFERENT");
            int fd = open("/proc/self/cmdline", O_RDONLY);
            unsigned char *far = buf + SIZE - 3 * PAGE;
            ssize_t n = read(fd, far, 64);
            close(fd);
            printf("cmdline read %s\n", n > 0 ? "ok" : "FAILED");
            memset(far, 0, 64); /* the path differs between runs */
            pid_t c = fork();
            if (c == 0) _exit(buf[5 * PAGE + 100] == from[0] && w[9] == (smooth ? 0 : w[9]) ? 0 : 1);
            int st = 0;
            waitpid(c, &st, 0);
            printf("child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            printf("untouched %016llx\n", (unsigned long long)hash(buf + SIZE / 2 + 64 * PAGE, 1u << 20));
        }
        usleep(20000);
    }
    printf("hash %016llx\n", (unsigned long long)hash(buf, SIZE));
    return 0;
}
