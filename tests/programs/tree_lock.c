/* tree_lock CTL: a parent holding an fcntl (POSIX) write lock on a file
 * that its children have open too: one inherited the parent's descriptor,
 * the other opened the file itself and asks (F_GETLK) who holds the lock,
 * once before `ready` and once after `go`. A restart in between must give
 * the parent its lock back (it was lost when the restart closed its own
 * copy of the shared descriptor after taking the lock again). */
#include "ckpt_test.h"
#include <fcntl.h>
#include <sys/wait.h>

static int held_by(int fd, pid_t who) {
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_GETLK, &fl) != 0)
        return -1;
    return fl.l_type == F_WRLCK && fl.l_pid == who;
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    char path[4096];
    ctl_path(path, sizeof path, "lockfile");
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0) {
        perror("lock");
        return 1;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t me = getpid();
    pid_t a = fork();
    if (a == 0) {
        wait_for("go", 60);
        nap_ms(300);
        _exit(0);
    }
    pid_t b = fork();
    if (b == 0) {
        int own = open(path, O_RDWR);
        printf("before: the parent holds the lock: %d\n", held_by(own, me));
        marker("checked", "\n");
        wait_for("go", 60);
        printf("after: the parent holds the lock: %d\n", held_by(own, me));
        _exit(0);
    }
    wait_for("checked", 60);
    marker("ready", "pid=%d\n", (int)me);
    wait_for("go", 60);
    waitpid(b, NULL, 0);
    waitpid(a, NULL, 0);
    printf("parent: done\n");
    return 0;
}
