/* A file the program writes and closes, then opens again only to read it
 * back, and removes while reading (as sort does with its run files): made
 * at start, removed at step 40, read at steps 30 and 60. A checkpoint
 * before step 40 and a kill after it leave the file gone at restart: it
 * must be made again from the image (its contents were kept, though no
 * descriptor writes it), not refused. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    int w = open("j.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0640);
    const char msg[] = "a run of sorted lines\n";
    if (w < 0 || write(w, msg, strlen(msg)) != (ssize_t)strlen(msg) || close(w) != 0)
        return 1;
    int j = open("j.tmp", O_RDONLY);
    if (j < 0)
        return 2;
    for (int step = 0; step < 80; step++) {
        printf("step %d\n", step);
        fflush(stdout);
        if (step == 40 && unlink("j.tmp") != 0)
            return 3;
        if (step == 30 || step == 60) {
            char buf[8] = {0};
            ssize_t n = read(j, buf, 6);
            printf("read %zd '%s'\n", n, buf);
        }
        usleep(10000);
    }
    return 0;
}
