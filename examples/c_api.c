/* A C program that checkpoints itself through ckpt's C API.
 *
 *   cc -I include -o c_api examples/c_api.c
 *   target/release/ckpt run -- ./c_api 40
 *   # ... kill it after "checkpoint written", then:
 *   target/release/ckpt restart IMAGE     # goes on from the checkpoint
 *
 * Its steps go to stdout; what the checkpoint call returned to stderr. */
#include <ckpt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int checkpoints_seen;

static void before(void *data) { ++*(int *)data; }

static void restored(void *data) {
    (void)data;
    fprintf(stderr, "on_restore hook: restored %u time(s)\n", ckpt_restored_count());
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 40;
    if (ckpt_active()) {
        ckpt_before_checkpoint(before, &checkpoints_seen);
        ckpt_on_restore(restored, NULL);
    }
    uint64_t state = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < steps; i++) {
        state = state * 6364136223846793005ull + (uint64_t)i;
        printf("step %d %016llx\n", i, (unsigned long long)state);
        fflush(stdout);
        if (i == steps / 2) {
            char out[4096];
            int r = ckpt_active() ? ckpt_checkpoint(NULL, out, sizeof out) : CKPT_FAILED;
            if (r == CKPT_WRITTEN && checkpoints_seen == 1)
                fprintf(stderr, "checkpoint written: %s\n", out);
            else if (r == CKPT_WRITTEN)
                fprintf(stderr, "the before-checkpoint hook ran %d times\n", checkpoints_seen);
            else if (r == CKPT_RESTARTED)
                fprintf(stderr, "restarted from the checkpoint\n");
            else
                fprintf(stderr, "no checkpoint: %s\n", ckpt_active() ? out : "not running under ckpt");
        }
        usleep(50000);
    }
    return 0;
}
