/* Times open+close (reading, and appending), dup+close, a pipe's
 * write+read, fcntl(F_GETFL),
 * an atomic save (rename over), mkdir+rmdir, open(new)+unlink and
 * clock_gettime loops; prints
 * "name ns_per_op" lines. Then starts a second thread and times the
 * first two again ("... (2 threads)"): open is a cancellation point, and
 * ckpt's wrapper makes it through the C library once threads exist.
 * Run natively and under the shim by benches/wrapper_overhead.rs. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void file_loops(long n, const char *path, const char *suffix) {
    double t = now();
    for (long i = 0; i < n; i++) close(open(path, O_RDONLY));
    printf("open+close%s %.1f\n", suffix, (now() - t) / n);
    /* Opened for writing: under ckpt, in a job, the file's path goes to
     * the job's log once (then a table lookup). */
    t = now();
    for (long i = 0; i < n; i++) close(open(path, O_WRONLY | O_APPEND));
    printf("open(O_APPEND)+close%s %.1f\n", suffix, (now() - t) / n);
    int fd = open(path, O_RDONLY);
    t = now();
    for (long i = 0; i < n; i++) close(dup(fd));
    printf("dup+close%s %.1f\n", suffix, (now() - t) / n);
    close(fd);
}

static void *idle(void *a) {
    (void)a;
    pause();
    return NULL;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    const char *path = argc > 2 ? argv[2] : "/dev/null";
    file_loops(n, path, "");
    /* A pipe's write and read of 64 bytes: under ckpt both are wrapped
     * (a checkpoint must not cut them short). */
    int p[2];
    char b[64] = {0};
    if (pipe(p) == 0) {
        double tp = now();
        for (long i = 0; i < n; i++) {
            if (write(p[1], b, sizeof b) != sizeof b || read(p[0], b, sizeof b) != sizeof b)
                break;
        }
        printf("pipe write+read %.1f\n", (now() - tp) / n);
        close(p[0]);
        close(p[1]);
    }
    int fd = open(path, O_RDONLY);
    volatile int sink = 0;
    double t = now();
    for (long i = 0; i < n * 4; i++) sink += fcntl(fd, F_GETFL);
    printf("fcntl(F_GETFL) %.1f\n", (now() - t) / (n * 4));
    /* An atomic save (a new version renamed over the file) and a
     * directory made and removed: under ckpt, in a job, the rename asks
     * whether its target was there and logs both once, mkdir logs the
     * directory each time (it is a new one). */
    char tmp[4096], saved[4096], dir[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(saved, sizeof saved, "%s.saved", path);
    snprintf(dir, sizeof dir, "%s.d", path);
    t = now();
    for (long i = 0; i < n / 40; i++) {
        close(open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600));
        rename(tmp, saved);
    }
    printf("open(new)+rename over %.1f\n", (now() - t) / (n / 40));
    t = now();
    for (long i = 0; i < n / 40; i++) {
        mkdir(dir, 0700);
        rmdir(dir);
    }
    printf("mkdir+rmdir %.1f\n", (now() - t) / (n / 40));
    /* A file made and removed: under ckpt, in a job, the removal asks
     * the file's birth time first and logs it each time. */
    t = now();
    for (long i = 0; i < n / 40; i++) {
        close(open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600));
        unlink(tmp);
    }
    printf("open(new)+unlink %.1f\n", (now() - t) / (n / 40));
    /* clock_gettime is wrapped (CPU-time clocks go on across a restart):
     * the monotonic clock must still cost what it does natively. */
    struct timespec ts;
    t = now();
    for (long i = 0; i < n * 20; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sink += ts.tv_nsec;
    }
    printf("clock_gettime(MONOTONIC) %.1f\n", (now() - t) / (n * 20));
    t = now();
    for (long i = 0; i < n; i++) {
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        sink += ts.tv_nsec;
    }
    printf("clock_gettime(PROCESS_CPUTIME) %.1f\n", (now() - t) / n);
    pthread_t th;
    pthread_create(&th, NULL, idle, NULL);
    file_loops(n, path, " (2 threads)");
    return 0;
}
