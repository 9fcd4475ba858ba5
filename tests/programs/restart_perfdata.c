/* Like a JVM's hsperfdata: a small file in a directory of its own, mapped
 * shared and written through the mapping every step (counters). argv[1]
 * is the directory. After step 30 prints the counters read back from the
 * mapping and from the file. The test removes the directory and its file
 * between the kill and the restart. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    mkdir(argv[1], 0700);
    char path[4096];
    snprintf(path, sizeof path, "%s/perf", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
    ftruncate(fd, 8192);
    unsigned *c = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    for (int step = 0; step < 40; step++) {
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
    return 0;
}
