/* A job started as root whose worker drops root's privileges (like a
 * server's worker processes): the child becomes uid/gid 65534, fills
 * and keeps changing 8 MiB, and prints its identity and a checksum per
 * step; it idles a second after steps 10 and 20 (where the test takes its
 * checkpoints). The parent stays root and reports the worker's end. */
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t c = fork();
    if (c == 0) {
        if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) {
            perror("dropping root");
            return 1;
        }
        size_t n = 8 << 20;
        unsigned char *m = malloc(n);
        for (size_t i = 0; i < n; i++) m[i] = (unsigned char)(i * 7);
        for (int s = 0; s < 30; s++) {
            for (size_t i = (size_t)s * 4096; i < n; i += 65536) m[i] += (unsigned char)s;
            uint64_t sum = 0;
            for (size_t i = 0; i < n; i += 512) sum = sum * 31 + m[i];
            printf("worker %d uid %d/%d gid %d sum %llu\n", s, (int)getuid(), (int)geteuid(),
                   (int)getgid(), (unsigned long long)sum);
            usleep(s == 10 || s == 20 ? 1000000 : 50000);
        }
        return 0;
    }
    int st = 0;
    waitpid(c, &st, 0);
    printf("parent uid %d: worker exited %d\n", (int)getuid(), WEXITSTATUS(st));
    return 0;
}
