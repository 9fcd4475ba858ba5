/* A UTS namespace of the program's own (unshare(CLONE_NEWUTS), as
 * container runtimes and build sandboxes make one) with its own host and
 * domain names. Prints "step N", then the names uname gives. Before, a
 * restart gave the host's names back, in silence. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (unshare(CLONE_NEWUTS) != 0) {
        printf("unsupported: unshare(CLONE_NEWUTS)\n");
    } else if (sethostname("ckpt-own-host", 13) != 0 || setdomainname("ckpt.example", 12) != 0) {
        printf("unsupported: sethostname\n");
    }
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        struct timespec t = {0, 25000000};
        while (nanosleep(&t, &t) != 0) {
        }
    }
    struct utsname u;
    uname(&u);
    printf("host %s domain %s\n", strcmp(u.nodename, "ckpt-own-host") == 0 ? u.nodename : "(the host's)",
           strcmp(u.domainname, "ckpt.example") == 0 ? u.domainname : "(the host's)");
    return 0;
}
