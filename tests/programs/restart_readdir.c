/* A directory read part way across a checkpoint (as find, du or rm -r
 * do) goes on from where it was: glibc's readdir keeps what it has
 * buffered in the program's memory and the kernel keeps the position of
 * the next getdents, a file system cookie (a hash on ext4). Before, a
 * restart opened the directory at its start, and the program read
 * hundreds of entries again. 3000 entries with long names need several
 * getdents calls; each step reads 40 of them. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define N 3000

int main(void) {
    char dir[64], path[192];
    snprintf(dir, sizeof dir, "entries.%d", (int)getpid());
    if (mkdir(dir, 0700) < 0) {
        perror("mkdir");
        return 1;
    }
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof path, "%s/a-rather-long-file-name-to-fill-the-buffers-%05d", dir, i);
        int fd = open(path, O_CREAT | O_WRONLY, 0600);
        if (fd < 0) {
            perror("open");
            return 1;
        }
        close(fd);
    }
    static unsigned char seen[N];
    DIR *d = opendir(dir);
    int total = 0, again = 0, step = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int k;
        if (sscanf(e->d_name, "a-rather-long-file-name-to-fill-the-buffers-%d", &k) == 1 && k >= 0 && k < N) {
            if (seen[k]++) again++;
            total++;
        }
        checkpoint_window(step);
        if (total % 40 == 0 && step < 40) {
            printf("step %d: %d entries read, %d twice\n", step++, total, again);
            fflush(stdout);
            usleep(10000);
        }
    }
    closedir(d);
    printf("done: %d entries read, %d twice\n", total, again);
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof path, "%s/a-rather-long-file-name-to-fill-the-buffers-%05d", dir, i);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}
