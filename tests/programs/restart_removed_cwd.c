/* A program whose working directory was removed under it (a build
 * directory cleaned, a temporary directory deleted): getcwd fails with
 * ENOENT and a file made by a relative path fails too. Prints both each
 * step; a restart must put it back in a removed directory (before, it
 * stood in the restart command's directory, where its relative paths
 * then wrote files, and the restart warned "cannot return to directory"
 * with no name). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (mkdir("gone", 0755) || chdir("gone") || rmdir("../gone")) {
        perror("setup");
        return 1;
    }
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        char b[4096];
        const char *cwd = getcwd(b, sizeof b) ? "a path" : strerror(errno);
        int fd = open("made-here", O_WRONLY | O_CREAT, 0644);
        printf("step %d: getcwd: %s; a relative create: %s\n", i, cwd,
               fd >= 0 ? "made" : strerror(errno));
        if (fd >= 0)
            close(fd);
        struct timespec t = {0, 25000000};
        nanosleep(&t, NULL);
    }
    return 0;
}
