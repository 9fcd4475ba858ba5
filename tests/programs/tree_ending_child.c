/* A child whose exit is under way when a checkpoint comes: its stdout is a
 * FIFO (argv[1]) that is full, so exit() blocks flushing stdio after ckpt's
 * shim has shut down (its fini removed the control socket). The parent
 * waits for it and goes on. Whoever reads the FIFO drains it late. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: tree_ending_child FIFO\n");
        return 2;
    }
    int sync[2];
    if (pipe(sync) != 0) return 1;
    pid_t c = fork();
    if (c == 0) {
        close(sync[0]);
        int fd = open(argv[1], O_WRONLY);
        if (fd < 0) { perror("open fifo"); _exit(1); }
        /* Fill the FIFO: the stdio flush at exit will block. */
        fcntl(fd, F_SETFL, O_NONBLOCK);
        char buf[4096];
        memset(buf, 'x', sizeof buf);
        while (write(fd, buf, sizeof buf) > 0) {}
        while (write(fd, buf, 1) > 0) {}
        fcntl(fd, F_SETFL, 0);
        dup2(fd, 1);
        close(fd);
        printf("the child's last words\n"); /* buffered: a FIFO is not a tty */
        if (write(sync[1], "e", 1) != 1) _exit(1);
        exit(3);
    }
    close(sync[1]);
    char b;
    if (read(sync[0], &b, 1) != 1) return 1;
    printf("child is ending\n");
    fflush(stdout);
    int st = 0;
    waitpid(c, &st, 0);
    printf("child ended with %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    fflush(stdout);
    for (int i = 1; i <= 10; i++) {
        printf("step %d\n", i);
        fflush(stdout);
        usleep(50000);
    }
    printf("done\n");
    return 0;
}
