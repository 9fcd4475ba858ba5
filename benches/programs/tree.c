/* A job of N processes: the root forks N-1 workers, each on a pipe of
 * its own from the root and one shared reply pipe. The root says "ready"
 * once every worker answered, then works in a loop timing its own
 * iterations (the stall it feels). Commands on stdin, one byte each:
 *   r  forget the longest gap so far
 *   s  print "stall <microseconds>"
 *   x  ping every worker and print "pong <answers>" once all answered
 *   c  every process (root and workers) changes 1% of its memory (a word
 *      in every 100th page), then "changed"
 * At EOF the root ends; the workers see EOF on their pipes and end.
 * usage: tree N [MIB]: MIB of random memory in each process (default 0). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint8_t *mem;
static size_t mem_len;
static uint64_t seed = 88172645463325252ull;

static uint64_t next(void) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

static void fill(size_t mib) {
    mem_len = mib << 20;
    mem = malloc(mem_len + 1);
    for (size_t i = 0; i + 8 <= mem_len; i += 8)
        *(uint64_t *)(mem + i) = next();
}

static void change(void) {
    for (size_t i = 0; i + 8 <= mem_len; i += 100 * 4096)
        *(uint64_t *)(mem + i) = next();
}

int main(int argc, char **argv) {
    int n = atoi(argv[1]) - 1;
    size_t mib = argc > 2 ? (size_t)atoi(argv[2]) : 0;
    int reply[2];
    pipe(reply);
    int *cmd = calloc(n, sizeof(int));
    for (int i = 0; i < n; i++) {
        int p[2];
        pipe(p);
        if (fork() == 0) {
            close(p[1]);
            close(reply[0]);
            seed += (uint64_t)i * 7919 + 1;
            fill(mib);
            char c = 'h';
            write(reply[1], &c, 1);
            while (read(p[0], &c, 1) == 1) {
                if (c == 'c')
                    change();
                write(reply[1], &c, 1);
            }
            _exit(0);
        }
        close(p[0]);
        cmd[i] = p[1];
    }
    close(reply[1]);
    fill(mib);
    char c;
    for (int i = 0; i < n; i++)
        read(reply[0], &c, 1);
    printf("ready\n");
    fflush(stdout);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    uint64_t last = now_ns(), longest = 0;
    for (;;) {
        ssize_t r = read(0, &c, 1);
        if (r == 0)
            break;
        if (r == 1) {
            if (c == 'r') {
                longest = 0;
            } else if (c == 's') {
                printf("stall %llu\n", (unsigned long long)(longest / 1000));
                fflush(stdout);
            } else {
                char what = c == 'c' ? 'c' : 'x';
                int got = 0;
                for (int i = 0; i < n; i++)
                    write(cmd[i], &what, 1);
                for (int i = 0; i < n; i++)
                    got += read(reply[0], &c, 1) == 1;
                if (what == 'c') {
                    change();
                    printf("changed\n");
                } else {
                    printf("pong %d\n", got);
                }
                fflush(stdout);
            }
            last = now_ns();
            continue;
        }
        uint64_t t = now_ns();
        if (t - last > longest)
            longest = t - last;
        last = t;
    }
    for (int i = 0; i < n; i++)
        close(cmd[i]);
    while (wait(NULL) > 0) {
    }
    return 0;
}
