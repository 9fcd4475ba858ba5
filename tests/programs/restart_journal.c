/* A file the program writes and later removes while keeping it open (as
 * sqlite does with its rollback journal): made at start, removed at step
 * 40, read back through its descriptor at step 60. A checkpoint before
 * step 40 and a kill after it leave the file gone at restart: it must be
 * made again from the image (its contents were kept), not refused. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    int j = open("j.tmp", O_RDWR | O_CREAT | O_TRUNC, 0640);
    if (j < 0)
        return 1;
    const char msg[] = "hello journal\n";
    if (write(j, msg, strlen(msg)) != (ssize_t)strlen(msg))
        return 2;
    for (int step = 0; step < 80; step++) {
        printf("step %d\n", step);
        fflush(stdout);
        if (step == 40 && unlink("j.tmp") != 0)
            return 3;
        if (step == 60) {
            char buf[64] = {0};
            ssize_t n = pread(j, buf, sizeof buf - 1, 0);
            printf("journal %zd %s", n, buf);
        }
        usleep(10000);
    }
    return 0;
}
