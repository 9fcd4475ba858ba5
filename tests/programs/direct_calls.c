/* The calls ckpt's wrappers make as system calls of their own (dup, dup2,
 * dup3, and open/openat while single-threaded) must behave exactly like
 * the C library's: results, errno (set on failure, untouched on success),
 * the mode honoured only with O_CREAT/O_TMPFILE, close-on-exec flags.
 * Then the program cancels itself: the next open() is a cancellation
 * point and must act on it, as without ckpt.
 * argv[1]: a scratch directory. Prints one line per check. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *what, long r) {
    printf("%-34s -> %ld errno=%s\n", what, r, r < 0 ? strerrorname_np(errno) : "-");
}

static void mode_of(const char *what, int fd) {
    struct stat st;
    fstat(fd, &st);
    printf("%-34s mode %o\n", what, (unsigned)(st.st_mode & 07777));
}

static void said_cancelled(void *a) {
    (void)a;
    printf("cancelled in open\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    umask(022);
    int fd = open("missing/file", O_RDONLY);
    show("open missing", fd);
    show("open dir for writing", open(".", O_WRONLY));
    const char *volatile null_path = NULL;
    show("open NULL", open(null_path, O_RDONLY));
    fd = open("made", O_CREAT | O_EXCL | O_WRONLY, 0664);
    show("open O_CREAT|O_EXCL 0664", fd >= 0);
    mode_of("  created", fd);
    show("open O_CREAT|O_EXCL again", open("made", O_CREAT | O_EXCL | O_WRONLY, 0600));
    int ro = open("made", O_RDONLY, 0777); /* mode ignored without O_CREAT */
    show("open O_RDONLY with a mode", ro >= 0);
    int t = open(".", O_TMPFILE | O_RDWR, 0600);
    show("open O_TMPFILE 0600", t >= 0);
    mode_of("  tmpfile", t);
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    int at = openat(dir, "made", O_RDONLY | O_CLOEXEC);
    show("openat relative, O_CLOEXEC", at >= 0);
    show("  FD_CLOEXEC", fcntl(at, F_GETFD) & FD_CLOEXEC);
    show("openat bad dirfd", openat(-5, "made", O_RDONLY));
    show("openat64 O_CREAT 0640", openat64(dir, "made2", O_CREAT | O_WRONLY, 0640) >= 0);

    errno = 1234;
    int d = dup(ro);
    show("dup", d > ro);
    show("  errno after success", errno);
    show("dup bad", dup(-1));
    show("dup2 onto itself", dup2(ro, ro) == ro);
    show("dup2 bad", dup2(-1, 50));
    show("dup2 to 50", dup2(ro, 50));
    show("  FD_CLOEXEC", fcntl(50, F_GETFD) & FD_CLOEXEC);
    show("dup3 onto itself", dup3(ro, ro, 0));
    show("dup3 bad flags", dup3(ro, 51, 12345));
    show("dup3 O_CLOEXEC to 51", dup3(ro, 51, O_CLOEXEC));
    show("  FD_CLOEXEC", fcntl(51, F_GETFD) & FD_CLOEXEC);
    errno = 4321;
    int again = open("made", O_RDONLY);
    show("open success keeps errno", errno);
    close(again);
    fflush(stdout);

    pthread_cleanup_push(said_cancelled, NULL);
    pthread_cancel(pthread_self());
    int never = open("made", O_RDONLY);
    printf("not cancelled: open returned %d\n", never >= 0);
    pthread_cleanup_pop(0);
    return 0;
}
