/* A program that builds a known set of kernel state, for `ckpt inspect`.
 *
 *   state CONTROL_DIR
 *
 * In CONTROL_DIR/work (created, chdir'ed into) with umask 027 it
 *  - installs SIGUSR2 (sigaction, SA_SIGINFO|SA_RESTART, mask {SIGINT}),
 *    SIGUSR1 (sigaction, SA_RESTART), SIGINT (signal()), SIGPIPE (SIG_IGN);
 *  - sets RLIMIT_CORE's soft limit to 0;
 *  - opens: data_open.txt with open (O_RDWR, 100 bytes, offset 37); the
 *    directory sub with O_DIRECTORY|O_CLOEXEC; sub/data_openat.txt with
 *    openat (O_WRONLY|O_APPEND|O_CLOEXEC, 55 bytes); data_fopen.txt with
 *    fopen "w+" (20 bytes, offset 7); a dup of the openat descriptor; a
 *    pipe; an F_DUPFD (>= 10) of the open descriptor;
 *  - starts thread A (detached, 256 KiB stack, named worker-a) and thread B
 *    (joinable, 1 MiB stack, named worker-b, blocks SIGINT);
 *  - creates timers: SIGEV_SIGNAL/SIGUSR1 on CLOCK_MONOTONIC (first 100 ms,
 *    then every 500 ms); SIGEV_THREAD_ID/SIGUSR2 at thread B on
 *    CLOCK_REALTIME (first 50 ms, then every 2 s); SIGEV_THREAD on
 *    CLOCK_MONOTONIC (fires once after 50 ms, then re-armed: 600 s, every
 *    600 s);
 *  - waits until each timer fired at least once, prints what it sees,
 *    writes marker "ready" (pid, tids, descriptors, addresses, timer ids),
 *    waits for control file "go", then uses every object once more, prints
 *    the results and exits 0.
 */
#include "ckpt_test.h"

#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/resource.h>

static volatile sig_atomic_t usr1_count, usr2_b_timer, usr2_other, int_count;
static volatile pid_t tid_a, tid_b;
static atomic_int stop_threads;
static atomic_int sigev_thread_value;

static void on_usr1(int sig) {
    (void)sig;
    usr1_count++;
}

static void on_usr2(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    if (gettid_() == tid_b && si->si_code == SI_TIMER && si->si_value.sival_int == 222)
        usr2_b_timer++;
    else
        usr2_other++;
}

static void on_int(int sig) {
    (void)sig;
    int_count++;
}

static void on_sigev_thread(union sigval v) {
    atomic_store(&sigev_thread_value, v.sival_int);
}

static void *thread_a(void *arg) {
    (void)arg;
    tid_a = gettid_();
    while (!atomic_load(&stop_threads))
        nap_ms(20);
    return NULL;
}

static void *thread_b(void *arg) {
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    tid_b = gettid_();
    while (!atomic_load(&stop_threads))
        nap_ms(20);
    return (void *)42;
}

/* Wait (bounded) for a condition set by a signal or another thread. */
#define WAIT_UNTIL(cond, what)                                        \
    do {                                                              \
        long long dl_ = now_ns() + 10000000000LL;                     \
        while (!(cond)) {                                             \
            if (now_ns() > dl_) {                                     \
                fprintf(stderr, "timed out waiting for %s\n", what);  \
                exit(94);                                             \
            }                                                         \
            nap_ms(5);                                                \
        }                                                             \
    } while (0)

static void fill(char *buf, int n, char base) {
    for (int i = 0; i < n; i++)
        buf[i] = (char)(base + i % 26);
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    char work[4096];
    ctl_path(work, sizeof work, "work");
    CHECK(mkdir(work, 0755) == 0 || errno == EEXIST);
    CHECK(chdir(work) == 0);
    CHECK(mkdir("sub", 0755) == 0 || errno == EEXIST);
    umask(027);

    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_CORE, &rl) == 0);
    rl.rlim_cur = 0;
    CHECK(setrlimit(RLIMIT_CORE, &rl) == 0);

    /* Signals. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr2;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    CHECK(signal(SIGINT, on_int) != SIG_ERR);
    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);

    /* Descriptors. */
    char buf[128];
    int fd_open = open("data_open.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd_open >= 0);
    fill(buf, 100, 'A');
    CHECK(write(fd_open, buf, 100) == 100);
    CHECK(lseek(fd_open, 37, SEEK_SET) == 37);

    int fd_dir = open("sub", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(fd_dir >= 0);
    int fd_openat = openat(fd_dir, "data_openat.txt", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    CHECK(fd_openat >= 0);
    fill(buf, 55, 'a');
    CHECK(write(fd_openat, buf, 55) == 55);

    FILE *fp = fopen("data_fopen.txt", "w+");
    CHECK(fp != NULL);
    CHECK(fputs("0123456789abcdefghij", fp) >= 0);
    CHECK(fflush(fp) == 0);
    CHECK(fseek(fp, 7, SEEK_SET) == 0);
    int fd_fopen = fileno(fp);

    int fd_dup = dup(fd_openat);
    CHECK(fd_dup >= 0);
    int p[2];
    CHECK(pipe(p) == 0);
    int fd_dupfd = fcntl(fd_open, F_DUPFD, 10);
    CHECK(fd_dupfd >= 10);

    /* Threads. */
    pthread_t ta, tb;
    pthread_attr_t aa, ab;
    CHECK(pthread_attr_init(&aa) == 0);
    CHECK(pthread_attr_setstacksize(&aa, 256 * 1024) == 0);
    CHECK(pthread_attr_setdetachstate(&aa, PTHREAD_CREATE_DETACHED) == 0);
    CHECK(pthread_create(&ta, &aa, thread_a, NULL) == 0);
    CHECK(pthread_attr_init(&ab) == 0);
    CHECK(pthread_attr_setstacksize(&ab, 1024 * 1024) == 0);
    CHECK(pthread_attr_setdetachstate(&ab, PTHREAD_CREATE_JOINABLE) == 0);
    CHECK(pthread_create(&tb, &ab, thread_b, NULL) == 0);
    WAIT_UNTIL(tid_a != 0 && tid_b != 0, "thread ids");
    CHECK(pthread_setname_np(ta, "worker-a") == 0);
    CHECK(pthread_setname_np(tb, "worker-b") == 0);

    /* Timers. */
    timer_t t_sig, t_tid, t_thr;
    struct sigevent se;
    struct itimerspec its;

    memset(&se, 0, sizeof se);
    se.sigev_notify = SIGEV_SIGNAL;
    se.sigev_signo = SIGUSR1;
    se.sigev_value.sival_int = 111;
    CHECK(timer_create(CLOCK_MONOTONIC, &se, &t_sig) == 0);
    memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = 100000000;
    its.it_interval.tv_nsec = 500000000;
    CHECK(timer_settime(t_sig, 0, &its, NULL) == 0);

    memset(&se, 0, sizeof se);
    se.sigev_notify = SIGEV_THREAD_ID;
    se.sigev_signo = SIGUSR2;
    se.sigev_value.sival_int = 222;
    se._sigev_un._tid = tid_b;
    CHECK(timer_create(CLOCK_REALTIME, &se, &t_tid) == 0);
    memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = 50000000;
    its.it_interval.tv_sec = 2;
    CHECK(timer_settime(t_tid, 0, &its, NULL) == 0);

    memset(&se, 0, sizeof se);
    se.sigev_notify = SIGEV_THREAD;
    se.sigev_notify_function = on_sigev_thread;
    se.sigev_value.sival_int = 333;
    CHECK(timer_create(CLOCK_MONOTONIC, &se, &t_thr) == 0);
    memset(&its, 0, sizeof its);
    its.it_value.tv_nsec = 50000000;
    CHECK(timer_settime(t_thr, 0, &its, NULL) == 0);

    raise(SIGUSR2);
    raise(SIGINT);
    WAIT_UNTIL(usr1_count >= 1, "the SIGUSR1 timer");
    WAIT_UNTIL(usr2_b_timer >= 1, "the SIGEV_THREAD_ID timer in thread B");
    WAIT_UNTIL(atomic_load(&sigev_thread_value) == 333, "the SIGEV_THREAD timer");
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = 600;
    its.it_interval.tv_sec = 600;
    CHECK(timer_settime(t_thr, 0, &its, NULL) == 0);
    /* Let glibc's short-lived notification thread finish. */
    nap_ms(200);

    mode_t um = umask(0);
    umask(um);
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    char cwd_copy[4096];
    strcpy(cwd_copy, cwd);

    printf("fds open=%d dir=%d openat=%d fopen=%d dup=%d pipe=%d,%d dupfd=%d\n", fd_open, fd_dir,
           fd_openat, fd_fopen, fd_dup, p[0], p[1], fd_dupfd);
    printf("offsets open=%ld openat=%ld fopen=%ld dup=%ld dupfd=%ld\n", (long)lseek(fd_open, 0, SEEK_CUR),
           (long)lseek(fd_openat, 0, SEEK_CUR), (long)lseek(fd_fopen, 0, SEEK_CUR),
           (long)lseek(fd_dup, 0, SEEK_CUR), (long)lseek(fd_dupfd, 0, SEEK_CUR));
    printf("umask=%03o cwd=%s\n", (unsigned)um, basename(cwd_copy));
    printf("signals usr1_timer=%s usr2_thread_timer=%s usr2_raise=%d int=%d sigev_thread=%d\n",
           usr1_count > 0 ? "yes" : "no", usr2_b_timer > 0 ? "yes" : "no", (int)usr2_other,
           (int)int_count, atomic_load(&sigev_thread_value));

    marker("ready",
           "pid=%d\ntid_main=%d\ntid_a=%d\ntid_b=%d\n"
           "fd_open=%d\nfd_dir=%d\nfd_openat=%d\nfd_fopen=%d\nfd_dup=%d\nfd_pipe_r=%d\nfd_pipe_w=%d\nfd_dupfd=%d\n"
           "fn_thread_a=%lu\nfn_thread_b=%lu\nfn_on_usr1=%lu\nfn_on_usr2=%lu\nfn_on_int=%lu\nfn_sigev=%lu\n"
           "timer_sig=%lu\ntimer_tid=%lu\ntimer_thr=%lu\ncwd=%s\n",
           (int)getpid(), (int)gettid_(), (int)tid_a, (int)tid_b, fd_open, fd_dir, fd_openat, fd_fopen,
           fd_dup, p[0], p[1], fd_dupfd, (unsigned long)(uintptr_t)thread_a,
           (unsigned long)(uintptr_t)thread_b, (unsigned long)(uintptr_t)on_usr1,
           (unsigned long)(uintptr_t)on_usr2, (unsigned long)(uintptr_t)on_int,
           (unsigned long)(uintptr_t)on_sigev_thread, (unsigned long)(uintptr_t)t_sig,
           (unsigned long)(uintptr_t)t_tid, (unsigned long)(uintptr_t)t_thr, cwd);

    wait_for("go", 120);

    /* Everything must still be as it was. */
    atomic_store(&stop_threads, 1);
    void *ret = NULL;
    CHECK(pthread_join(tb, &ret) == 0);
    printf("join b=%ld\n", (long)(intptr_t)ret);

    char rd[16] = {0};
    CHECK(read(fd_open, rd, 10) == 10);
    printf("read at 37: %s, dupfd now at %ld\n", rd, (long)lseek(fd_dupfd, 0, SEEK_CUR));
    CHECK(write(fd_dup, "XYZ", 3) == 3);
    struct stat st;
    CHECK(fstat(fd_openat, &st) == 0);
    printf("openat file size after append=%ld mode=%04o\n", (long)st.st_size, (unsigned)(st.st_mode & 07777));
    CHECK(fstat(fd_open, &st) == 0);
    printf("open file mode=%04o\n", (unsigned)(st.st_mode & 07777));
    printf("flags openat_cloexec=%d dup_cloexec=%d dup_append=%d dir_cloexec=%d open_cloexec=%d\n",
           !!(fcntl(fd_openat, F_GETFD) & FD_CLOEXEC), !!(fcntl(fd_dup, F_GETFD) & FD_CLOEXEC),
           !!(fcntl(fd_dup, F_GETFL) & O_APPEND), !!(fcntl(fd_dir, F_GETFD) & FD_CLOEXEC),
           !!(fcntl(fd_open, F_GETFD) & FD_CLOEXEC));
    CHECK(fputs("++", fp) >= 0);
    CHECK(fclose(fp) == 0);
    FILE *in = fopen("data_fopen.txt", "r");
    CHECK(in != NULL);
    char line[64] = {0};
    CHECK(fgets(line, sizeof line, in) != NULL);
    fclose(in);
    printf("fopen file=%s\n", line);
    CHECK(write(p[1], "ping", 4) == 4);
    memset(rd, 0, sizeof rd);
    CHECK(read(p[0], rd, 4) == 4);
    printf("pipe=%s\n", rd);

    CHECK(timer_gettime(t_sig, &its) == 0);
    printf("timer sigusr1 interval=%ld.%09ld\n", (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
    CHECK(timer_gettime(t_tid, &its) == 0);
    printf("timer thread_id interval=%ld.%09ld\n", (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
    CHECK(timer_gettime(t_thr, &its) == 0);
    printf("timer sigev_thread interval=%ld.%09ld\n", (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
    CHECK(timer_delete(t_sig) == 0);
    CHECK(timer_delete(t_tid) == 0);
    CHECK(timer_delete(t_thr) == 0);

    struct sigaction old;
    CHECK(sigaction(SIGUSR2, NULL, &old) == 0);
    printf("sigusr2 siginfo=%d restart=%d mask_has_int=%d\n", !!(old.sa_flags & SA_SIGINFO),
           !!(old.sa_flags & SA_RESTART), sigismember(&old.sa_mask, SIGINT));
    CHECK(sigaction(SIGPIPE, NULL, &old) == 0);
    printf("sigpipe ignored=%d\n", old.sa_handler == SIG_IGN);
    CHECK(getrlimit(RLIMIT_CORE, &rl) == 0);
    printf("rlimit core soft=%lu\n", (unsigned long)rl.rlim_cur);
    um = umask(0);
    printf("umask still=%03o\n", (unsigned)um);
    printf("done\n");
    return 0;
}
