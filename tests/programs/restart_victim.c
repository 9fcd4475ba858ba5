/* restart_victim CTL [squat|squat-inside]: the program of the refused-restart tests. Reads
 * CTL/input.txt fully and keeps it open read-only, keeps CTL/log.txt open
 * for writing, prints "before" lines to stdout, writes marker `ready`,
 * waits for `go`, then prints "after" lines and writes to log.txt: a
 * restart that wrongly proceeds changes the output files.
 * With `squat`, the program maps memory of its own over part of the
 * address range ckpt reserves for its restorer (0x7e0000000000, 64 MiB):
 * straddling its start, or (`squat-inside`) wholly inside it. */
#include "ckpt_test.h"
#include <sys/mman.h>

#define RESERVED 0x7e0000000000UL

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    char p[4096], buf[4096];
    char *squat = NULL;
    if (argc > 2) {
        unsigned long at = strcmp(argv[2], "squat") == 0 ? RESERVED - 65536 : RESERVED + (1 << 20);
        squat = mmap((void *)at, 131072, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                     -1, 0);
        CHECK(squat != MAP_FAILED);
        memset(squat, 'q', 131072);
    }
    ctl_path(p, sizeof p, "input.txt");
    int in = open(p, O_RDONLY);
    CHECK(in >= 0);
    ssize_t n = read(in, buf, sizeof buf);
    CHECK(n >= 0);
    ctl_path(p, sizeof p, "log.txt");
    int log = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(log >= 0);
    CHECK(write(log, "log before\n", 11) == 11);
    for (int i = 0; i < 20; i++)
        printf("before %d (input had %zd bytes)\n", i, n);
    fflush(stdout);
    marker("ready", "pid=%d\n", (int)getpid());
    wait_for("go", 30);
    for (int i = 0; i < 20; i++)
        printf("after %d\n", i);
    if (squat)
        printf("squatted memory: %s\n", squat[0] == 'q' && squat[131071] == 'q' ? "kept" : "LOST");
    fflush(stdout);
    CHECK(write(log, "log after\n", 10) == 10);
    return 0;
}
