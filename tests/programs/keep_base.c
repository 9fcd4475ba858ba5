/* keep_base CTL: 16 MiB of pseudo-random memory (marker step0), then five
 * steps, step K once CTL/goK exists: steps 1-3 and 5 change 8 pages, step
 * 4 changes three pages in four. Each step prints a hash of all of it and
 * makes marker stepK; then, once CTL/end exists, "done". (tests/generations.rs: a whole
 * image stays as a base while the kept images use half of it.) */
#include "ckpt_test.h"
#include <stdint.h>
#include <sys/mman.h>

#define LEN (16u << 20)
#define PG 4096u

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    setvbuf(stdout, NULL, _IONBF, 0);
    unsigned char *a = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED);
    uint64_t *w = (uint64_t *)a;
    for (size_t i = 0; i < LEN / 8; i++) w[i] = next_rand();
    printf("filled %016llx\n", (unsigned long long)hash_bytes(a, LEN));
    marker("step0", "ok\n");
    for (int k = 1; k <= 5; k++) {
        char name[16];
        snprintf(name, sizeof name, "go%d", k);
        wait_for(name, 60);
        if (k == 4) {
            for (size_t p = 0; p < LEN / PG; p++)
                if (p % 4)
                    a[p * PG + p % 97] ^= (unsigned char)(next_rand() | 1);
        } else {
            for (int j = 0; j < 8; j++) a[(next_rand() % (LEN / PG)) * PG + 5] ^= 0x3c;
        }
        printf("step %d %016llx\n", k, (unsigned long long)hash_bytes(a, LEN));
        snprintf(name, sizeof name, "step%d", k);
        marker(name, "ok\n");
    }
    wait_for("end", 60);
    printf("done\n");
    return 0;
}
