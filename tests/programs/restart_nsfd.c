/* Descriptors of the process's own namespaces (/proc/self/ns/...), as
 * programs keep them to setns() back later (ip netns, container runtimes).
 * A restart must not fail on them: each comes back as a descriptor of the
 * restarted process's own namespace of that kind.
 * Output: the kind each link names and whether it is the process's own
 * namespace of that kind now. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint_window.h"

static const char *kinds[] = {"net", "uts", "ipc", "cgroup", "pid_for_children"};
#define N (sizeof kinds / sizeof kinds[0])

static void show(int fd, const char *name) {
    char p[64], l[128];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, l, sizeof l - 1);
    l[n < 0 ? 0 : n] = 0;
    char *colon = strchr(l, ':');
    if (colon)
        *colon = 0;
    struct stat a, b;
    snprintf(p, sizeof p, "/proc/self/ns/%s", name);
    int own = fstat(fd, &a) == 0 && stat(p, &b) == 0 && a.st_ino == b.st_ino &&
              a.st_dev == b.st_dev;
    printf("%s: link kind %s, own namespace %d\n", name, l, own);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int fds[N];
    for (unsigned i = 0; i < N; i++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/self/ns/%s", kinds[i]);
        fds[i] = open(p, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0)
            return 1;
    }
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    for (unsigned i = 0; i < N; i++)
        show(fds[i], kinds[i]);
    return 0;
}
