/* Files no path leads to: a memfd and a tmpfile() (an O_TMPFILE, i.e.
 * deleted, file), both written line by line; at the end each is read back
 * whole and compared. A restart must make both again with their contents
 * and offsets. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int m = memfd_create("scratch", 0);
    FILE *t = tmpfile();
    if (m < 0 || !t)
        return 1;
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        char line[64];
        int n = snprintf(line, sizeof line, "line %d\n", i);
        if (write(m, line, n) != n)
            return 1;
        fprintf(t, "%s", line);
        fflush(t);
        if (i % 10 == 9)
            printf("step %d\n", i);
        usleep(50000);
    }
    char a[4096], b[4096];
    lseek(m, 0, SEEK_SET);
    ssize_t na = read(m, a, sizeof a);
    rewind(t);
    size_t nb = fread(b, 1, sizeof b, t);
    printf("memfd %zd bytes, tmpfile %zu bytes, same=%d\n", na, nb,
           na == (ssize_t)nb && memcmp(a, b, nb) == 0);
    return 0;
}
