/* A program that chroots into argv[1], then asks for a checkpoint of
 * itself through the C API: refused, saying why (a restart would open its
 * files from the root outside its jail). It prints what the call
 * returned and said, and goes on. */
#include <stdio.h>
#include <unistd.h>
#include "ckpt.h"

int main(int argc, char **argv) {
    if (argc < 2 || chroot(argv[1]) != 0 || chdir("/") != 0) {
        perror("chroot");
        return 1;
    }
    char out[512] = "";
    int r = ckpt_active() ? ckpt_checkpoint(NULL, out, sizeof out) : -2;
    printf("returned %d: %s\n", r, out);
    printf("goes on\n");
    return 0;
}
