/* A vfork child that waits before its exec: its parent is blocked in
 * vfork (it can neither answer nor freeze) and the child shares its
 * memory. The checkpoint must refuse, naming the child, instead of
 * waiting for the parent and reporting success with an image of nothing. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("ready\n");
    pid_t c = vfork();
    if (c == 0) {
        write(1, "child waits\n", 12);
        struct timespec t = {20, 0};
        syscall(SYS_nanosleep, &t, NULL);
        _exit(3);
    }
    int st = 0;
    waitpid(c, &st, 0);
    printf("child ended with %d\n", WEXITSTATUS(st));
    return 0;
}
