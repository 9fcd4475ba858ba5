/* A child's stdin and stdout made by socketpair, as libuv (node's
 * child_process) makes them: each round the parent forks a child that
 * puts one end of each pair at 0 and 1 and execs `sh -c "echo child N;
 * sleep 0.5; cat"`; the parent writes a payload into the child's stdin,
 * closes its end (the payload then waits in a socket whose other end is
 * gone), and prints what the child wrote back. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    for (int r = 0; r < 5; r++) {
        int in[2], out[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, in) || socketpair(AF_UNIX, SOCK_STREAM, 0, out)) {
            perror("socketpair");
            return 1;
        }
        pid_t c = fork();
        if (c == 0) {
            dup2(in[1], 0);
            dup2(out[1], 1);
            close(in[0]), close(in[1]), close(out[0]), close(out[1]);
            char cmd[64];
            snprintf(cmd, sizeof cmd, "echo child %d; sleep 0.5; cat", r);
            execl("/bin/sh", "sh", "-c", cmd, (char *)0);
            _exit(127);
        }
        close(in[1]);
        close(out[1]);
        char p[32];
        int n = snprintf(p, sizeof p, "payload %d\n", r);
        if (write(in[0], p, n) != n)
            return 2;
        close(in[0]);
        printf("round %d sent\n", r);
        fflush(stdout);
        char buf[256];
        size_t got = 0;
        ssize_t k;
        while ((k = read(out[0], buf + got, sizeof buf - 1 - got)) > 0)
            got += k;
        buf[got] = 0;
        for (char *q = buf; *q; q++)
            if (*q == '\n')
                *q = '|';
        int st;
        waitpid(c, &st, 0);
        printf("round %d got: %s status %d\n", r, buf, WEXITSTATUS(st));
        fflush(stdout);
        close(out[0]);
    }
    return 0;
}
