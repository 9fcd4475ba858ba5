/* Like a JVM's hsperfdata: a small file in a directory of its own, mapped
 * shared and written through the mapping every step (counters). argv[1]
 * is the directory. After step 30 prints the counters read back from the
 * mapping and from the file. The test removes the directory and its file
 * between the kill and the restart. With a second argument the program
 * keeps its descriptor open, and a duplicate of it, and a child shares
 * them and opens the file again (as Python's SharedMemory keeps its /dev/shm file's in a pool). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    mkdir(argv[1], 0700);
    char path[4096];
    snprintf(path, sizeof path, "%s/perf", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
    ftruncate(fd, 8192);
    unsigned *c = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    pid_t kid = -1;
    if (argc > 2) {
        dup(fd);
        kid = fork();
        if (kid == 0) {
            open(path, O_RDWR); /* its own, as each worker opens it by name */
            for (int step = 0; step < 40; step++) {
                checkpoint_window(step);
                usleep(20000);
            }
            _exit(0);
        }
    } else {
        close(fd);
    }
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        c[0] += 1;
        c[100] += (unsigned)step * 3;
        printf("step %d\n", step);
        if (step == 30) {
            unsigned from_file[2] = {0, 0};
            int r = open(path, O_RDONLY);
            pread(r, &from_file[0], 4, 0);
            pread(r, &from_file[1], 4, 400);
            close(r);
            struct stat st;
            stat(path, &st);
            printf("mapped %u %u file %u %u mode %o\n", c[0], c[100], from_file[0], from_file[1],
                   st.st_mode & 07777);
        }
        fflush(stdout);
        usleep(20000);
    }
    if (kid > 0)
        waitpid(kid, NULL, 0);
    return 0;
}
