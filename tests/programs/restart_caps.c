/* Capability state a program sets itself, beyond its three sets: it drops
 * CAP_SYS_PTRACE from its bounding set (so no exec can get it back), sets
 * a securebit (SECBIT_KEEP_CAPS) and raises CAP_NET_RAW into its ambient
 * set. Each step prints what it reads back. Run as root (the setup needs
 * CAP_SETPCAP); otherwise it says so and prints nothing else. */
#define _GNU_SOURCE
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    int ok = syscall(SYS_capget, &h, d) == 0;
    d[CAP_NET_RAW / 32].inheritable |= 1u << (CAP_NET_RAW % 32);
    ok = ok && syscall(SYS_capset, &h, d) == 0;
    ok = ok && prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) == 0;
    ok = ok && prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS, 0, 0, 0) == 0;
    ok = ok && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) == 0;
    if (!ok) {
        printf("no privilege to set capabilities up\n");
        return 0;
    }
    printf("setup ok\n");
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d: ptrace in bounding %d, securebits %#x, net_raw ambient %d\n", i,
               (int)prctl(PR_CAPBSET_READ, CAP_SYS_PTRACE, 0, 0, 0),
               (int)prctl(PR_GET_SECUREBITS, 0, 0, 0, 0),
               (int)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_RAW, 0, 0));
        struct timespec t = {0, 25000000};
        nanosleep(&t, NULL);
    }
    return 0;
}
