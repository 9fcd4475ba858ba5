/* Files of the process's own /proc held open to be read again (a
 * monitoring library's /proc/self/status, /proc/PID/stat), and its task
 * directory: after the restart each reads the restarted process itself.
 * Before, the restart needed /proc/PID/status of the killed process, gone,
 * and refused. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void show(int fd, const char *what) {
    char b[8192];
    ssize_t n = pread(fd, b, sizeof b - 1, 0);
    if (n < 0) {
        printf("%s: unreadable\n", what);
        return;
    }
    b[n] = 0;
    int pid = -1;
    char *q = strstr(b, "\nPid:");
    if (q)
        sscanf(q, "\nPid:\t%d", &pid);
    else
        sscanf(b, "%d", &pid); /* stat: the pid first */
    printf("%s: about this process %s\n", what, pid == getpid() ? "yes" : "no");
}

int main(void) {
    int a = open("/proc/self/status", O_RDONLY);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", getpid());
    int b = open(path, O_RDONLY);
    int c = open("/proc/self/task", O_RDONLY | O_DIRECTORY);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        fflush(stdout);
        usleep(20000);
    }
    show(a, "/proc/self/status");
    show(b, "/proc/PID/stat");
    char l[32];
    snprintf(l, sizeof l, "%d/status", getpid());
    int d = openat(c, l, O_RDONLY);
    printf("its main thread found in the task directory: %s\n", d >= 0 ? "yes" : "no");
    return 0;
}
