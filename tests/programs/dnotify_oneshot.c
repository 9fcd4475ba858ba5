/* Two directories watched with fcntl(F_NOTIFY): one multishot, one
 * one-shot. The kernel drops a one-shot watch once it fires and says so
 * nowhere, so the checkpoint must say that a restart watches that
 * directory again (and only that one). Prints "step N" while it waits. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    mkdir("multi", 0755);
    mkdir("once", 0755);
    int m = open("multi", O_RDONLY | O_DIRECTORY), o = open("once", O_RDONLY | O_DIRECTORY);
    if (m < 0 || o < 0 || fcntl(m, F_SETSIG, SIGRTMIN) || fcntl(o, F_SETSIG, SIGRTMIN) ||
        fcntl(m, F_NOTIFY, DN_CREATE | DN_MULTISHOT) || fcntl(o, F_NOTIFY, DN_CREATE))
        return 1;
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    return 0;
}
