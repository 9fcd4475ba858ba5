/* A daemon that starts as root and drops to nobody for good (setgroups,
 * setresgid, setresuid: the kernel then makes it not dumpable), then
 * prints "step N" lines with its identity, its dumpable flag and whether
 * it can still open a root-only file. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
        perror("dropping privileges");
        return 1;
    }
    for (int i = 0; i < 60; i++) {
        uid_t r, e, s;
        getresuid(&r, &e, &s);
        int fd = open("/etc/shadow", O_RDONLY);
        printf("step %d: uid %d %d %d gid %d dumpable %d root file %s\n", i, (int)r, (int)e, (int)s,
               (int)getgid(), prctl(PR_GET_DUMPABLE), fd < 0 ? "refused" : "open");
        if (fd >= 0)
            close(fd);
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}
