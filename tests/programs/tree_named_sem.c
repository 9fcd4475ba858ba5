/* tree_named_sem CTL: a named POSIX semaphore shared by a parent, which
 * makes it (sem_open O_CREAT: glibc maps it under a temporary name, links
 * it to /dev/shm/sem.NAME and removes the temporary one, so the parent's
 * map names a deleted file), and its exec'd child, which opens it by
 * name. The parent posts ten times, the child waits for each and prints
 * it. Marks `ready` after five, waits for `go`. After a restart both must
 * still share the one semaphore (before: the parent's came back as a
 * copy of its own, and the child waited in vain). */
#include "ckpt_test.h"
#include <semaphore.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[2], "child") == 0) {
        sem_t *s = sem_open(argv[3], 0);
        if (s == SEM_FAILED) {
            perror("child sem_open");
            return 1;
        }
        for (int i = 0; i < 10; i++) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 10;
            if (sem_timedwait(s, &ts) != 0) {
                printf("child: wait %d timed out\n", i);
                return 2;
            }
            printf("child: got post %d\n", i);
            fflush(stdout);
        }
        return 0;
    }
    ctl_init(argc, argv);
    char name[64];
    snprintf(name, sizeof name, "/ckpt-test-sem-%d", (int)getpid());
    sem_unlink(name);
    sem_t *s = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
    if (s == SEM_FAILED) {
        perror("sem_open");
        return 1;
    }
    pid_t c = fork();
    if (c == 0) {
        execl("/proc/self/exe", argv[0], argv[1], "child", name, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 10; i++) {
        if (i == 5) {
            nap_ms(300);
            marker("ready", "pid=%d\n", (int)getpid());
            wait_for("go", 60);
        }
        sem_post(s);
        nap_ms(50);
    }
    int st = 0;
    waitpid(c, &st, 0);
    printf("parent: child exit %d\n", WEXITSTATUS(st));
    sem_unlink(name);
    return 0;
}
