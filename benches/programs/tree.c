/* A job of N processes: the root forks N-1 workers, each on a pipe of
 * its own from the root and one shared reply pipe. The root says "ready"
 * once every worker answered, then works in a loop timing its own
 * iterations (the stall it feels). Commands on stdin, one byte each:
 *   r  forget the longest gap so far
 *   s  print "stall <microseconds>"
 *   x  ping every worker and print "pong <answers>" once all answered
 * At EOF the root ends; the workers see EOF on their pipes and end. */
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

int main(int argc, char **argv) {
    int n = atoi(argv[1]) - 1;
    int reply[2];
    pipe(reply);
    int *cmd = calloc(n, sizeof(int));
    for (int i = 0; i < n; i++) {
        int p[2];
        pipe(p);
        if (fork() == 0) {
            close(p[1]);
            close(reply[0]);
            char c = 'h';
            write(reply[1], &c, 1);
            while (read(p[0], &c, 1) == 1)
                write(reply[1], &c, 1);
            _exit(0);
        }
        close(p[0]);
        cmd[i] = p[1];
    }
    close(reply[1]);
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
                int got = 0;
                for (int i = 0; i < n; i++)
                    write(cmd[i], "x", 1);
                for (int i = 0; i < n; i++)
                    got += read(reply[0], &c, 1) == 1;
                printf("pong %d\n", got);
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
