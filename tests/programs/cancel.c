/* Thread cancellation and pthread_exit through wrapped calls: glibc ends
 * such threads by forced unwinding, which must pass over ckpt's wrapper
 * frames and still run the program's cleanup handlers.
 *   - a thread cancelled while in sleep(), one in poll(), one in
 *     nanosleep(), one in pthread_cond_wait (all with cleanup handlers);
 *   - a thread cancelled while open() waits for a FIFO's writer (a
 *     cancellation point: ckpt must not make it a plain system call
 *     once another thread can cancel);
 *   - a thread calling pthread_exit right after wrapped open/close.
 * Prints what each join returned and which cleanups ran. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int cleaned[5];
static char fifo[64];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void cleanup(void *arg) { cleaned[(long)arg] = 1; }
static void unlock(void *arg) { (void)arg; pthread_mutex_unlock(&mu); }

static void *in_sleep(void *a) {
    pthread_cleanup_push(cleanup, a);
    for (;;) sleep(10);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *in_poll(void *a) {
    int p[2];
    pipe(p);
    struct pollfd f = {p[0], POLLIN, 0};
    pthread_cleanup_push(cleanup, a);
    for (;;) poll(&f, 1, -1);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *in_nanosleep(void *a) {
    struct timespec ts = {10, 0};
    pthread_cleanup_push(cleanup, a);
    for (;;) nanosleep(&ts, NULL);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *in_cond_wait(void *a) {
    pthread_mutex_lock(&mu);
    pthread_cleanup_push(unlock, NULL);
    pthread_cleanup_push(cleanup, a);
    for (;;) pthread_cond_wait(&cv, &mu);
    pthread_cleanup_pop(0);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *in_fifo_open(void *a) {
    pthread_cleanup_push(cleanup, a);
    for (;;) open(fifo, O_RDONLY); /* blocks: nobody opens it for writing */
    pthread_cleanup_pop(0);
    return NULL;
}

static void *exits(void *a) {
    (void)a;
    int fd = open("/dev/null", O_RDONLY);
    close(fd);
    pthread_exit((void *)7);
}

int main(void) {
    snprintf(fifo, sizeof fifo, "/tmp/ckpt-cancel-fifo-%d", (int)getpid());
    unlink(fifo);
    if (mkfifo(fifo, 0600) != 0) return 3;
    void *(*fns[5])(void *) = {in_sleep, in_poll, in_nanosleep, in_cond_wait, in_fifo_open};
    pthread_t t[5];
    for (long i = 0; i < 5; i++)
        pthread_create(&t[i], NULL, fns[i], (void *)i);
    usleep(300000);
    for (int i = 0; i < 5; i++) {
        pthread_cancel(t[i]);
        void *r;
        pthread_join(t[i], &r);
        printf("thread %d: cancelled=%d cleanup=%d\n", i, r == PTHREAD_CANCELED, cleaned[i]);
    }
    pthread_t e;
    void *r;
    pthread_create(&e, NULL, exits, NULL);
    pthread_join(e, &r);
    printf("pthread_exit value %ld\n", (long)r);
    /* The mutex the cond_wait thread held was released by its cleanup. */
    printf("mutex free: %d\n", pthread_mutex_trylock(&mu) == 0);
    unlink(fifo);
    return 0;
}
