/* Writes what it does three ways: an O_APPEND log, a file it truncates and
 * writes with plain writes (like `>`), and stdout. 120 steps, 10 ms each.
 * A restart that left the files as the killed run left them would repeat
 * in the log what was appended after the checkpoint. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    int log = open("written.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
    int out = open("written.out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log < 0 || out < 0)
        return 1;
    for (int step = 0; step < 120; step++) {
        char line[64];
        int n = snprintf(line, sizeof line, "step %d\n", step);
        if (write(log, line, n) != n || write(out, line, n) != n)
            return 2;
        printf("%s", line);
        fflush(stdout);
        usleep(10000);
    }
    return 0;
}
