/* restart_timers CTL MODE: timers armed before the checkpoint keep firing
 * after restart. MODE:
 *   posix   a SIGEV_SIGNAL timer (SIGUSR1), a SIGEV_THREAD_ID timer
 *           (SIGUSR2) aimed at a worker thread, and setitimer(ITIMER_REAL)
 *           (SIGALRM), all periodic 10 ms;
 *   alarm   alarm(2) armed before the checkpoint must fire once after it;
 *   thread  a SIGEV_THREAD timer, periodic 10 ms.
 * Writes marker `ready` once every timer ticked a few times, waits for
 * `go`, then requires each timer to tick again (bounded) and prints a
 * verdict. Counts go to stderr (they depend on timing). */
#include "ckpt_test.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/time.h>

static atomic_long n_sig, n_tid, n_wrong, n_itimer, n_alarm, n_thread;
static pthread_t target_self; /* stored by the target thread itself */
static atomic_int target_ready, stop;
static pid_t target_tid; /* only used to aim the timer at creation */
static timer_t t_sig, t_tid, t_thr;

static void on_usr1(int s) { (void)s; n_sig++; }
static void on_usr2(int s) {
    (void)s;
    if (pthread_equal(pthread_self(), target_self))
        n_tid++;
    else
        n_wrong++;
}
static void on_alrm(int s) { (void)s; n_itimer++; }
static void on_alarm(int s) { (void)s; n_alarm++; }
static void on_thread(union sigval v) { (void)v; n_thread++; }

static void *target(void *a) {
    (void)a;
    target_self = pthread_self();
    target_tid = gettid_();
    target_ready = 1;
    while (!stop)
        nap_ms(2);
    return NULL;
}

static void handler(int sig, void (*f)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = f;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

static const struct itimerspec every10 = {{0, 10000000}, {0, 10000000}};

/* Wait until *c >= want (bounded, 5 s). */
static int reach(atomic_long *c, long want) {
    long long deadline = now_ns() + 5000000000LL;
    while (*c < want && now_ns() < deadline)
        nap_ms(5);
    return *c >= want;
}

static int still_armed(timer_t t) {
    struct itimerspec cur;
    if (timer_gettime(t, &cur) != 0)
        return 0;
    return cur.it_interval.tv_nsec == 10000000 && (cur.it_value.tv_sec || cur.it_value.tv_nsec);
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    const char *mode = argc > 2 ? argv[2] : "posix";
    int ok = 1;
    if (strcmp(mode, "posix") == 0) {
        handler(SIGUSR1, on_usr1);
        handler(SIGUSR2, on_usr2);
        handler(SIGALRM, on_alrm);
        /* The main thread and the target thread both could take SIGUSR2;
         * only a THREAD_ID timer aimed at the target reaches the target. */
        pthread_t th;
        CHECK(pthread_create(&th, NULL, target, NULL) == 0);
        while (!target_ready)
            nap_ms(1);
        struct sigevent ev;
        memset(&ev, 0, sizeof ev);
        ev.sigev_notify = SIGEV_SIGNAL;
        ev.sigev_signo = SIGUSR1;
        CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t_sig) == 0);
        memset(&ev, 0, sizeof ev);
        ev.sigev_notify = SIGEV_THREAD_ID;
        ev.sigev_signo = SIGUSR2;
        ev._sigev_un._tid = target_tid;
        CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t_tid) == 0);
        CHECK(timer_settime(t_sig, 0, &every10, NULL) == 0);
        CHECK(timer_settime(t_tid, 0, &every10, NULL) == 0);
        struct itimerval iv = {{0, 10000}, {0, 10000}};
        CHECK(setitimer(ITIMER_REAL, &iv, NULL) == 0);
        ok = reach(&n_sig, 5) && reach(&n_tid, 5) && reach(&n_itimer, 5);
        printf("armed: %s\n", ok ? "ok" : "timers did not tick");
        fflush(stdout);
        marker("ready", "pid=%d\n", (int)getpid());
        wait_for("go", 30);
        long s0 = n_sig, t0 = n_tid, i0 = n_itimer;
        int a = reach(&n_sig, s0 + 20), b = reach(&n_tid, t0 + 20), c = reach(&n_itimer, i0 + 20);
        printf("sigev_signal timer: %s\n", a ? "ticking" : "STOPPED");
        printf("sigev_thread_id timer: %s\n", b ? "ticking" : "STOPPED");
        printf("sigev_thread_id on the wrong thread: %s\n", n_wrong ? "YES" : "never");
        printf("timer ids still valid and armed: %s\n",
               still_armed(t_sig) && still_armed(t_tid) ? "yes" : "NO");
        struct itimerval cur;
        CHECK(getitimer(ITIMER_REAL, &cur) == 0);
        printf("setitimer(ITIMER_REAL): %s, interval %s\n", c ? "ticking" : "STOPPED",
               cur.it_interval.tv_usec == 10000 ? "kept" : "LOST");
        ok = ok && a && b && c && !n_wrong;
        fprintf(stderr, "counts: sig %ld->%ld tid %ld->%ld (wrong %ld) itimer %ld->%ld\n", s0,
                (long)n_sig, t0, (long)n_tid, (long)n_wrong, i0, (long)n_itimer);
        stop = 1;
        pthread_join(th, NULL);
    } else if (strcmp(mode, "alarm") == 0) {
        handler(SIGALRM, on_alarm);
        alarm(2);
        printf("armed\n");
        fflush(stdout);
        marker("ready", "pid=%d\n", (int)getpid());
        wait_for("go", 30);
        unsigned left = alarm(0);
        alarm(left); /* re-arm what was left (alarm(0) cancelled it) */
        int pending = left > 0 || n_alarm > 0;
        long long deadline = now_ns() + 6000000000LL;
        while (n_alarm == 0 && now_ns() < deadline)
            nap_ms(5);
        printf("alarm armed across restart: %s\n", pending ? "yes" : "NO");
        printf("alarm fired: %ld time(s)\n", (long)n_alarm);
        ok = pending && n_alarm == 1;
    } else if (strcmp(mode, "thread") == 0) {
        struct sigevent ev;
        memset(&ev, 0, sizeof ev);
        ev.sigev_notify = SIGEV_THREAD;
        ev.sigev_notify_function = on_thread;
        CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t_thr) == 0);
        CHECK(timer_settime(t_thr, 0, &every10, NULL) == 0);
        ok = reach(&n_thread, 5);
        printf("armed: %s\n", ok ? "ok" : "timer did not tick");
        fflush(stdout);
        marker("ready", "pid=%d\n", (int)getpid());
        wait_for("go", 30);
        long t0 = n_thread;
        int a = reach(&n_thread, t0 + 20);
        printf("sigev_thread timer: %s\n", a ? "ticking" : "STOPPED");
        printf("timer id still valid and armed: %s\n", still_armed(t_thr) ? "yes" : "NO");
        fprintf(stderr, "counts: thread %ld->%ld\n", t0, (long)n_thread);
        ok = ok && a;
    }
    printf("verdict: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
