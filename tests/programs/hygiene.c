/* Descriptor and signal hygiene: the program must not see, nor be able to
 * break, what ckpt keeps for itself.
 *
 *   hygiene CONTROL_DIR
 *
 * 1. open() must return 3, the lowest free descriptor.
 * 2. close_range(3, ~0U, 0), then close() every descriptor from 3 up to the
 *    soft RLIMIT_NOFILE (at least 1024), ignoring errors; marker "stage1";
 *    wait for control file "go1" (the test checkpoints meanwhile).
 * 3. dup2 onto each of the 300 highest numbers (ckpt's own descriptors
 *    must move out of the way), then close them.
 * 4. sigprocmask(SIG_BLOCK, full set) and read the mask back: signal 62
 *    must not show; pthread_sigmask likewise in a new thread; then
 *    sigaction(62, handler) (and signal(62, SIG_IGN)): each either fails or
 *    is invisible; marker "stage2" (with what those calls returned); wait
 *    for "go2" (the test checkpoints again), print "done", exit 0.
 */
#include "ckpt_test.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#define CKSIG 62

static volatile sig_atomic_t got62;
static void on62(int s) {
    (void)s;
    got62++;
}

static int thread_sees_62 = -1;
static void *thread_fn(void *arg) {
    (void)arg;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_sigmask(SIG_BLOCK, NULL, &old);
    thread_sees_62 = sigismember(&old, CKSIG);
    return NULL;
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    /* The control dir is used by path only: no descriptor of ours stays. */
    char path[4096];
    ctl_path(path, sizeof path, "hygiene.txt");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    printf("first open returned fd %d\n", fd);
    CHECK(fd >= 0);
    close(fd);

    errno = 0;
    int r = close_range(3, ~0U, 0);
    printf("close_range(3, ~0U, 0) = %d%s\n", r, r ? " (failed)" : "");
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    long top = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1048576 ? 1048576 : (long)rl.rlim_cur;
    if (top < 1024)
        top = 1024;
    for (long i = 3; i <= top + 16; i++)
        close((int)i);
    printf("closed 3..limit\n");
    fflush(stdout);
    /* After the storm of closes, open still gives 3. */
    fd = open(path, O_RDONLY);
    printf("open after close_range returned fd %d\n", fd);
    close(fd);
    fflush(stdout);
    marker("stage1", "pid=%d\nnofile=%ld\n", (int)getpid(), top);
    wait_for("go1", 120);

    /* Every number near the limit is the program's to take with dup2
     * (ckpt keeps its own there and must move them away). */
    int dup_failed = 0;
    for (long i = top - 1; i >= top - 300 && i > 3; i--)
        if (dup2(0, (int)i) != (int)i)
            dup_failed++;
    printf("dup2 onto the top 300 numbers: %d failed\n", dup_failed);
    for (long i = top - 1; i >= top - 300 && i > 3; i--)
        close((int)i);
    fflush(stdout);

    sigset_t all, old;
    sigfillset(&all);
    CHECK(sigprocmask(SIG_BLOCK, &all, NULL) == 0);
    CHECK(sigprocmask(SIG_BLOCK, NULL, &old) == 0);
    printf("after blocking everything: SIGUSR1 blocked=%d SIGRTMIN blocked=%d signal 62 blocked=%d\n",
           sigismember(&old, SIGUSR1), sigismember(&old, SIGRTMIN), sigismember(&old, CKSIG));
    CHECK(sigprocmask(SIG_SETMASK, &all, NULL) == 0);
    CHECK(sigprocmask(SIG_SETMASK, NULL, &old) == 0);
    printf("after SIG_SETMASK full: signal 62 blocked=%d\n", sigismember(&old, CKSIG));

    pthread_t th;
    CHECK(pthread_create(&th, NULL, thread_fn, NULL) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    printf("thread after blocking everything: signal 62 blocked=%d\n", thread_sees_62);

    struct sigaction sa, now;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on62;
    sigemptyset(&sa.sa_mask);
    errno = 0;
    int sr = sigaction(CKSIG, &sa, NULL);
    int se = errno;
    memset(&now, 0, sizeof now);
    int gr = sigaction(CKSIG, NULL, &now);
    errno = 0;
    void (*prev)(int) = signal(CKSIG, SIG_IGN);
    int pe = errno;
    marker("stage2", "pid=%d\nsigaction_ret=%d\nsigaction_errno=%d\nget_ret=%d\nhandler_is_ours=%d\nsignal_failed=%d\nsignal_errno=%d\n",
           (int)getpid(), sr, se, gr, now.sa_handler == on62, prev == SIG_ERR, pe);
    wait_for("go2", 120);
    printf("signal 62 reached the program's handler %d times\n", (int)got62);
    printf("done\n");
    return 0;
}
