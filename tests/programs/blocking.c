/* Blocking calls that a checkpoint must neither cut short nor stretch.
 *
 *   blocking CONTROL_DIR timed    sleep(3), nanosleep 2 s, poll 2 s on a
 *                                 silent pipe, pthread_cond_timedwait 2 s,
 *                                 usleep 1.5 s, select 1.5 s, epoll_wait 1.5 s,
 *                                 sem_timedwait 1.5 s, semtimedop 1.5 s
 *   blocking CONTROL_DIR wakeup   read on a pipe written after 1.5 s, waitpid
 *                                 for a child exiting after 1.5 s, accept on
 *                                 a socket connected to after 1.5 s, sem_wait
 *                                 and msgrcv woken after 1.5 s
 *
 * stdout (deterministic): one line per call with its return value, errno
 * name when it failed, and whether it took at least the requested time.
 * stderr: "TIMING name requested_ns elapsed_ns" per call.
 * Markers: "ready" (pid) before the first call, "finishing" after the last.
 */
#include "ckpt_test.h"

#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

static const char *errname(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "?";
}

/* ret_fail: whether the call reported failure (then errno is printed). */
static void report(const char *name, long ret, int ret_fail, int err, long long req_ns, long long t0,
                   long long min_ok_ns) {
    long long el = now_ns() - t0;
    printf("%s: ret=%ld errno=%s elapsed_ok=%s\n", name, ret, ret_fail ? errname(err) : "-",
           el >= min_ok_ns ? "yes" : "no");
    fflush(stdout);
    fprintf(stderr, "TIMING %s %lld %lld\n", name, req_ns, el);
}

static void timed(void) {
    long long t0;
    int r, e;

    t0 = now_ns();
    unsigned left = sleep(3);
    report("sleep(3)", (long)left, 0, 0, 3000000000LL, t0, 3000000000LL);

    struct timespec ts = {2, 0}, rem = {0, 0};
    t0 = now_ns();
    errno = 0;
    r = nanosleep(&ts, &rem);
    e = errno;
    report("nanosleep(2s)", r, r != 0, e, 2000000000LL, t0, 2000000000LL);

    int p[2];
    CHECK(pipe(p) == 0);
    struct pollfd pfd = {p[0], POLLIN, 0};
    t0 = now_ns();
    errno = 0;
    r = poll(&pfd, 1, 2000);
    e = errno;
    report("poll(2000ms)", r, r < 0, e, 2000000000LL, t0, 2000000000LL);

    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_condattr_t ca;
    pthread_cond_t cv;
    CHECK(pthread_condattr_init(&ca) == 0);
    CHECK(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0);
    CHECK(pthread_cond_init(&cv, &ca) == 0);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += 2;
    t0 = now_ns();
    pthread_mutex_lock(&mu);
    int nobody_signals = 0;
    r = 0;
    while (!nobody_signals && r == 0)
        r = pthread_cond_timedwait(&cv, &mu, &dl);
    pthread_mutex_unlock(&mu);
    report("pthread_cond_timedwait(2s)", r, 0, 0, 2000000000LL, t0, 2000000000LL);
    printf("pthread_cond_timedwait: %s\n", r == ETIMEDOUT ? "ETIMEDOUT" : errname(r));

    t0 = now_ns();
    errno = 0;
    r = usleep(1500000);
    e = errno;
    report("usleep(1.5s)", r, r != 0, e, 1500000000LL, t0, 1500000000LL);

    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = {1, 500000};
    t0 = now_ns();
    errno = 0;
    r = select(p[0] + 1, &rs, NULL, NULL, &tv);
    e = errno;
    report("select(1.5s)", r, r < 0, e, 1500000000LL, t0, 1500000000LL);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == 0);
    struct epoll_event out[4];
    t0 = now_ns();
    errno = 0;
    r = epoll_wait(ep, out, 4, 1500);
    e = errno;
    report("epoll_wait(1500ms)", r, r < 0, e, 1500000000LL, t0, 1500000000LL);

    sem_t sem;
    CHECK(sem_init(&sem, 0, 0) == 0);
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += 500000000;
    dl.tv_sec += 1 + dl.tv_nsec / 1000000000;
    dl.tv_nsec %= 1000000000;
    t0 = now_ns();
    errno = 0;
    r = sem_timedwait(&sem, &dl);
    e = errno;
    report("sem_timedwait(1.5s)", r, r != 0, e, 1500000000LL, t0, 1400000000LL);

    int sid = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    CHECK(sid >= 0);
    struct sembuf down = {0, -1, 0};
    struct timespec rel = {1, 500000000};
    t0 = now_ns();
    errno = 0;
    r = semtimedop(sid, &down, 1, &rel);
    e = errno;
    report("semtimedop(1.5s)", r, r != 0, e, 1500000000LL, t0, 1500000000LL);
    semctl(sid, 0, IPC_RMID);
}

/* A helper thread: sleep 1.5 s, then do something. */
struct later {
    int what; /* 0: write to pipe fd, 1: connect to socket path, 2: sem_post, 3: msgsnd to fd */
    int fd;
    const char *path;
    int sleep_ret, sleep_errno, act_ok;
    sem_t *sem;
};

struct msg {
    long type;
    char text[8];
};

static void *later_fn(void *arg) {
    struct later *l = arg;
    struct timespec ts = {1, 500000000};
    errno = 0;
    l->sleep_ret = nanosleep(&ts, NULL);
    l->sleep_errno = errno;
    if (l->what == 0) {
        l->act_ok = write(l->fd, "hello", 5) == 5;
    } else if (l->what == 2) {
        l->act_ok = sem_post(l->sem) == 0;
    } else if (l->what == 3) {
        struct msg m = {1, "queued"};
        l->act_ok = msgsnd(l->fd, &m, sizeof m.text, 0) == 0;
    } else {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un a;
        memset(&a, 0, sizeof a);
        a.sun_family = AF_UNIX;
        snprintf(a.sun_path, sizeof a.sun_path, "%s", l->path);
        l->act_ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0 && write(s, "x", 1) == 1;
        if (s >= 0)
            close(s);
    }
    return NULL;
}

static void wakeup(void) {
    long long t0;
    int e;
    const long long MIN = 1000000000LL; /* the helper starts a little before the call */

    /* read on a pipe that gets data after 1.5 s */
    int p[2];
    CHECK(pipe(p) == 0);
    struct later lw = {0, p[1], NULL, 0, 0, 0, NULL};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, later_fn, &lw) == 0);
    char buf[16] = {0};
    t0 = now_ns();
    errno = 0;
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    e = errno;
    report("read(pipe)", (long)n, n < 0, e, 1500000000LL, t0, MIN);
    printf("read data=%s\n", n > 0 ? buf : "");
    pthread_join(th, NULL);
    printf("writer: sleep ret=%d errno=%s wrote=%d\n", lw.sleep_ret, lw.sleep_ret ? errname(lw.sleep_errno) : "-",
           lw.act_ok);

    /* waitpid for a child that exits after 1.5 s */
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        struct timespec ts = {1, 500000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        _exit(7);
    }
    int status = 0;
    t0 = now_ns();
    errno = 0;
    pid_t w = waitpid(child, &status, 0);
    e = errno;
    report("waitpid", w == child ? 1 : (long)w, w < 0, e, 1500000000LL, t0, MIN);
    printf("waitpid: got child=%s exited=%d status=%d\n", w == child ? "yes" : "no", WIFEXITED(status),
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    /* accept on a socket connected to after 1.5 s */
    char path[4096];
    ctl_path(path, sizeof path, "sock");
    unlink(path);
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(ls >= 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    CHECK(strlen(path) < sizeof a.sun_path);
    strcpy(a.sun_path, path);
    CHECK(bind(ls, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(ls, 4) == 0);
    struct later lc = {1, -1, path, 0, 0, 0, NULL};
    CHECK(pthread_create(&th, NULL, later_fn, &lc) == 0);
    t0 = now_ns();
    errno = 0;
    int cs = accept(ls, NULL, NULL);
    e = errno;
    report("accept", cs >= 0 ? 1 : cs, cs < 0, e, 1500000000LL, t0, MIN);
    char c = 0;
    ssize_t got = cs >= 0 ? read(cs, &c, 1) : -1;
    printf("accept: connection=%s byte=%c\n", cs >= 0 ? "yes" : "no", got == 1 ? c : '?');
    pthread_join(th, NULL);
    printf("connector: sleep ret=%d errno=%s connected=%d\n", lc.sleep_ret,
           lc.sleep_ret ? errname(lc.sleep_errno) : "-", lc.act_ok);

    /* sem_wait woken by sem_post after 1.5 s */
    sem_t sem;
    CHECK(sem_init(&sem, 0, 0) == 0);
    struct later ls_ = {2, -1, NULL, 0, 0, 0, &sem};
    CHECK(pthread_create(&th, NULL, later_fn, &ls_) == 0);
    t0 = now_ns();
    errno = 0;
    int r = sem_wait(&sem);
    e = errno;
    report("sem_wait", r, r != 0, e, 1500000000LL, t0, MIN);
    pthread_join(th, NULL);

    /* msgrcv woken by msgsnd after 1.5 s */
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    CHECK(q >= 0);
    struct later lq = {3, q, NULL, 0, 0, 0, NULL};
    CHECK(pthread_create(&th, NULL, later_fn, &lq) == 0);
    struct msg m = {0, ""};
    t0 = now_ns();
    errno = 0;
    ssize_t got_m = msgrcv(q, &m, sizeof m.text, 0, 0);
    e = errno;
    report("msgrcv", got_m, got_m < 0, e, 1500000000LL, t0, MIN);
    printf("msgrcv: text=%s\n", got_m > 0 ? m.text : "");
    pthread_join(th, NULL);
    msgctl(q, IPC_RMID, NULL);
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    if (argc < 3) {
        fprintf(stderr, "usage: blocking CONTROL_DIR timed|wakeup\n");
        return 2;
    }
    marker("ready", "pid=%d\n", (int)getpid());
    if (strcmp(argv[2], "timed") == 0)
        timed();
    else if (strcmp(argv[2], "wakeup") == 0)
        wakeup();
    else
        return 2;
    marker("finishing", "pid=%d\n", (int)getpid());
    printf("done\n");
    return 0;
}
