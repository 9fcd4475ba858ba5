/* restart_signals CTL MODE: signal state set before the checkpoint holds
 * after restart. MODE:
 *   handlers  handlers installed before (plain, SA_SIGINFO, SA_RESETHAND),
 *             an ignored signal and a blocked one; after `go` the program
 *             raises signals and prints what ran;
 *   pending   signals blocked and raised before the checkpoint (a
 *             thread-directed SIGUSR2, a process-directed SIGWINCH, a
 *             real-time signal queued twice with values) must be pending
 *             after restart and delivered once unblocked.
 * Marker `ready` then waits for `go`. */
#include "ckpt_test.h"
#include <signal.h>

static volatile sig_atomic_t n_usr1, n_usr2, n_hup, n_winch, n_rt, rt_vals[8], info_ok;

static void on_usr1(int s) { (void)s; n_usr1++; }
static void on_usr2_info(int s, siginfo_t *si, void *uc) {
    (void)uc;
    n_usr2++;
    if (s == SIGUSR2 && si && si->si_signo == SIGUSR2)
        info_ok = 1;
}
static void on_hup(int s) { (void)s; n_hup++; }
static void on_winch(int s) { (void)s; n_winch++; }
static void on_rt(int s, siginfo_t *si, void *uc) {
    (void)s;
    (void)uc;
    if (n_rt < 8)
        rt_vals[n_rt] = si->si_value.sival_int;
    n_rt++;
}

static void install(int sig, void (*h)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

static void install_info(int sig, void (*h)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0);
}

static const char *disp(int sig) {
    struct sigaction sa;
    CHECK(sigaction(sig, NULL, &sa) == 0);
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL)
        return "default";
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN)
        return "ignored";
    return "handler";
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    const char *mode = argc > 2 ? argv[2] : "handlers";
    int ok = 1;
    int rt = SIGRTMIN + 1;
    if (strcmp(mode, "handlers") == 0) {
        install(SIGUSR1, on_usr1, SA_RESTART);
        install_info(SIGUSR2, on_usr2_info);
        install(SIGHUP, on_hup, SA_RESETHAND);
        install(SIGPIPE, SIG_IGN, 0);
        sigset_t b;
        sigemptyset(&b);
        sigaddset(&b, SIGINT);
        CHECK(sigprocmask(SIG_BLOCK, &b, NULL) == 0);
        marker("ready", "pid=%d\n", (int)getpid());
        wait_for("go", 30);
        printf("before raising: SIGUSR1 %s, SIGUSR2 %s, SIGHUP %s, SIGPIPE %s\n", disp(SIGUSR1),
               disp(SIGUSR2), disp(SIGHUP), disp(SIGPIPE));
        raise(SIGUSR1);
        raise(SIGUSR1);
        raise(SIGUSR2);
        raise(SIGHUP);
        raise(SIGPIPE); /* ignored: the program survives */
        sigset_t cur;
        CHECK(sigprocmask(SIG_BLOCK, NULL, &cur) == 0);
        printf("SIGUSR1 handler ran %d time(s)\n", (int)n_usr1);
        printf("SIGUSR2 SA_SIGINFO handler ran %d time(s), siginfo %s\n", (int)n_usr2,
               info_ok ? "ok" : "WRONG");
        printf("SIGHUP SA_RESETHAND handler ran %d time(s), now %s\n", (int)n_hup, disp(SIGHUP));
        printf("SIGPIPE survived while ignored\n");
        printf("SIGINT still blocked: %s\n", sigismember(&cur, SIGINT) ? "yes" : "NO");
        ok = n_usr1 == 2 && n_usr2 == 1 && info_ok && n_hup == 1 && sigismember(&cur, SIGINT) &&
             strcmp(disp(SIGHUP), "default") == 0;
    } else {
        install_info(SIGUSR2, on_usr2_info);
        install(SIGWINCH, on_winch, SA_RESTART);
        install_info(rt, on_rt);
        sigset_t b;
        sigemptyset(&b);
        sigaddset(&b, SIGUSR2);
        sigaddset(&b, SIGWINCH);
        sigaddset(&b, rt);
        CHECK(sigprocmask(SIG_BLOCK, &b, NULL) == 0);
        raise(SIGUSR2);            /* thread-directed */
        kill(getpid(), SIGWINCH);  /* process-directed */
        union sigval v;
        v.sival_int = 11;
        CHECK(sigqueue(getpid(), rt, v) == 0);
        v.sival_int = 22;
        CHECK(sigqueue(getpid(), rt, v) == 0);
        marker("ready", "pid=%d\n", (int)getpid());
        wait_for("go", 30);
        sigset_t p;
        CHECK(sigpending(&p) == 0);
        printf("pending after restart: SIGUSR2 %s, SIGWINCH %s, SIGRTMIN+1 %s\n",
               sigismember(&p, SIGUSR2) ? "yes" : "NO", sigismember(&p, SIGWINCH) ? "yes" : "NO",
               sigismember(&p, rt) ? "yes" : "NO");
        printf("delivered while blocked: %d %d %d\n", (int)n_usr2, (int)n_winch, (int)n_rt);
        CHECK(sigprocmask(SIG_UNBLOCK, &b, NULL) == 0);
        printf("after unblocking: SIGUSR2 %d time(s) (siginfo %s), SIGWINCH %d time(s)\n",
               (int)n_usr2, info_ok ? "ok" : "WRONG", (int)n_winch);
        printf("SIGRTMIN+1 %d time(s), values %d %d\n", (int)n_rt, (int)rt_vals[0],
               (int)rt_vals[1]);
        ok = n_usr2 == 1 && info_ok && n_winch == 1 && n_rt == 2 && rt_vals[0] == 11 &&
             rt_vals[1] == 22;
    }
    printf("verdict: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
