/* State a checkpoint must refuse, with one clear line, rather than take
 * an image that would lose it or harm the machine: "secret" maps memory
 * of memfd_secret (kept from every other process; an image would hold
 * it in plain text, and the restart crashed); "mountns" moves to a mount
 * namespace of its own and mounts a tmpfs (its files' paths name other
 * files outside it: a restart wrote over a host file). Prints "ready"
 * (or "unsupported: WHY" when the kernel or the user cannot set it up),
 * then after 3 s checks its state is intact. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *what = argc > 1 ? argv[1] : "";
    char *secret = NULL;
    if (strcmp(what, "secret") == 0) {
        int fd = syscall(447 /* memfd_secret */, 0);
        if (fd < 0 || ftruncate(fd, 4096) != 0) {
            printf("unsupported: memfd_secret\n");
            return 0;
        }
        secret = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (secret == MAP_FAILED) {
            printf("unsupported: mapping memfd_secret\n");
            return 0;
        }
        strcpy(secret, "the secret");
    } else if (strcmp(what, "mountns") == 0) {
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tmpfs", "/mnt", "tmpfs", 0, NULL) != 0) {
            printf("unsupported: a mount namespace (not root?)\n");
            return 0;
        }
    }
    printf("ready\n");
    sleep(3);
    printf("%s\n", secret && strcmp(secret, "the secret") != 0 ? "secret lost" : "intact");
    return 0;
}
