/* An epoll instance made before fork, watching a pipe's read end, shared
 * by parent and child: the child writes a byte every 40 ms; the parent
 * waits through the shared epoll and reads each byte, 16 times. The
 * child closes the read end (a writer does): in the child the epoll's
 * watch is on a file it no longer holds, which its parent does. */
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int p[2];
    if (pipe(p) != 0)
        return 1;
    int e = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 77};
    epoll_ctl(e, EPOLL_CTL_ADD, p[0], &ev);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        for (int i = 0; i < 16; i++) {
            usleep(40000);
            if (write(p[1], "x", 1) != 1)
                _exit(3);
        }
        _exit(0);
    }
    for (int i = 0; i < 16; i++) {
        struct epoll_event out = {0};
        int n = epoll_wait(e, &out, 1, 10000);
        char x;
        if (n == 1 && read(p[0], &x, 1) != 1)
            return 4;
        printf("event %d: %d ready, data %llu\n", i, n, (unsigned long long)out.data.u64);
        fflush(stdout);
    }
    int st;
    waitpid(c, &st, 0);
    printf("child ended with %d\n", WEXITSTATUS(st));
    return 0;
}
