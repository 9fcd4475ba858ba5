/* A named FIFO (argv[1]) between a parent and its child, each opening it
 * by path: the child writes 16 numbered lines, one every 30 ms; the
 * parent reads slowly (bytes stay in the FIFO) and prints them, then
 * reaps the child. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    unlink(argv[1]);
    if (mkfifo(argv[1], 0600) != 0) {
        perror("mkfifo");
        return 1;
    }
    pid_t c = fork();
    if (c == 0) {
        int w = open(argv[1], O_WRONLY);
        for (int i = 0; i < 16; i++) {
            char b[32];
            int n = snprintf(b, sizeof b, "fifo line %02d\n", i);
            if (write(w, b, n) != n)
                _exit(3);
            usleep(30000);
        }
        _exit(0);
    }
    int r = open(argv[1], O_RDONLY);
    char buf[64];
    ssize_t n;
    while ((n = read(r, buf, sizeof buf)) > 0) {
        fwrite(buf, 1, n, stdout);
        fflush(stdout);
        usleep(60000);
    }
    int st;
    waitpid(c, &st, 0);
    printf("writer ended with %d\n", WEXITSTATUS(st));
    return 0;
}
