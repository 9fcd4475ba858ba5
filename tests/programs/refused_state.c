/* State a checkpoint must refuse, with one clear line, rather than take
 * an image that would lose it or harm the machine: "secret" maps memory
 * of memfd_secret (kept from every other process; an image would hold
 * it in plain text, and the restart crashed); "mountns" moves to a mount
 * namespace of its own and mounts a tmpfs (its files' paths name other
 * files outside it: a restart wrote over a host file); "dispatch" and
 * "dispatch-raw" turn on syscall user dispatch (through prctl, through
 * syscall(SYS_prctl)): ckpt can neither stop such a thread safely nor
 * turn it on again after a restart (before: it came back off, silently,
 * and a thread stopped while its selector said "block" would have been
 * killed by the trap of ckpt's own system calls). Prints "ready"
 * (or "unsupported: WHY" when the kernel or the user cannot set it up),
 * then after 3 s checks its state is intact. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_ON 1
static volatile char selector; /* 0: allow, 1: block */
static volatile int trapped;

static void on_sigsys(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)si;
    trapped++;
    selector = 0;
    ((ucontext_t *)uc)->uc_mcontext.gregs[REG_RAX] = -38; /* ENOSYS */
}

/* A system call made while the selector says "block": trapped? */
static int traps(void) {
    int before = trapped;
    selector = 1;
    long r = syscall(SYS_getppid);
    selector = 0;
    return trapped == before + 1 && r == -1;
}

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
    int dispatch = strncmp(what, "dispatch", 8) == 0;
    if (dispatch) {
        struct sigaction sa = {0};
        sa.sa_sigaction = on_sigsys;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSYS, &sa, NULL);
        long r = strcmp(what, "dispatch-raw") == 0
                     ? syscall(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 0, &selector)
                     : prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 0, &selector);
        if (r != 0 || !traps()) {
            printf("unsupported: syscall user dispatch\n");
            return 0;
        }
    }
    printf("ready\n");
    sleep(3);
    int lost = (secret && strcmp(secret, "the secret") != 0) || (dispatch && !traps());
    printf("%s\n", lost ? "state lost" : "intact");
    return 0;
}
