/* Loads ckpt's shim into itself after it started, as the crate does for
 * a program not run by `ckpt run` (argv[1]: the shim, argv[2]: image
 * dir), with state made before: two busy threads, a pipe holding bytes,
 * a file at an offset, a signal handler, and a POSIX timer (which no
 * wrapper recorded: the first checkpoint must be refused, naming it).
 * Once the timer is deleted it checkpoints; after a restart it checks
 * all of it. stdout: one line per fact. */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile long counters[2];
static volatile int got;
static void on_usr1(int s) { (void)s; got++; }
static void *spin(void *a) {
    long i = (long)a;
    for (;;) {
        counters[i]++;
        if (counters[i] % 100000 == 0)
            free(malloc(64));
    }
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        pthread_create(&t[i], 0, spin, (void *)i);
    signal(SIGUSR1, on_usr1);
    int p[2];
    if (pipe(p) != 0 || write(p[1], "bytes in a pipe", 15) != 15)
        return 1;
    int fd = open(argv[0], O_RDONLY);
    char skip[100];
    if (read(fd, skip, sizeof skip) != sizeof skip)
        return 1;
    timer_t tid;
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    timer_create(CLOCK_MONOTONIC, &sev, &tid);

    void *h = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        printf("dlopen: %s\n", dlerror());
        return 1;
    }
    int (*cp)(const char *, char *, size_t) = dlsym(h, "ckpt_shim_checkpoint");
    char out[4096];
    int r = cp(argv[2], out, sizeof out);
    printf("with an unrecorded timer: %s\n", r == -1 && strstr(out, "POSIX timers") ? "refused" : out);
    timer_delete(tid);
    fflush(stdout);
    r = cp(argv[2], out, sizeof out);
    fprintf(stderr, r == 0 ? "checkpoint written: %s\n" : "%s\n", r == 0 ? out : r == 1 ? "restarted" : out);
    if (r == 0)
        pause(); /* killed here */
    long before = counters[0];
    usleep(20000);
    printf("threads run: %d\n", counters[0] > before);
    raise(SIGUSR1);
    printf("handler: %d\n", got);
    char b[32] = {0};
    printf("pipe: %.*s\n", (int)read(p[0], b, sizeof b), b);
    printf("file offset: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
    return 0;
}
