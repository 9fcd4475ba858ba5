/* A zombie, a session and a process group across a whole-tree restart.
 *
 * usage: tree_group CTL
 *
 * The parent makes itself a session (and group) leader, then forks:
 *   A: exits at once with status 3; the parent waits for that with
 *      waitid(WNOWAIT), so A is a zombie (exited, not reaped) from then on;
 *   B: leads a new process group (setpgid by both, as a shell does);
 *   C: joins B's group.
 * B and C install a SIGTERM handler and wait (bounded) in pause(). B holds
 * the write end of a pipe whose read end C holds: C's handler first reads
 * it until end of file (B gone), so "B got TERM" is always printed before
 * "C got TERM". B exits with 11 and C with 12 from their handlers.
 * Once B and C are ready the parent writes marker `ready` (pids in it) and
 * waits for control file `go` (the test checkpoints there). Then it checks
 * that it, B and C are in the session and groups they were in, that A is
 * still a zombie, reaps A and prints its status, sends SIGTERM to B's
 * group, reaps B and C and prints their statuses.
 * Each line is one write(2); only one process prints at a time. */
#include "ckpt_test.h"
#include <signal.h>
#include <sys/wait.h>

static void say(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n <= 0 || n >= (int)sizeof buf)
        _exit(94);
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(1, p, (size_t)n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(94);
        p += w;
        n -= (int)w;
    }
}

static const char *yes(int c) { return c ? "yes" : "NO"; }

static int g_bc_read = -1;

static void b_term(int sig) {
    (void)sig;
    say("B got TERM\n");
    _exit(11);
}

static void c_term(int sig) {
    (void)sig;
    char c;
    /* End of file once B (the only writer left) is gone. */
    while (read(g_bc_read, &c, 1) != 0) {
    }
    say("C got TERM\n");
    _exit(12);
}

/* B and C: wait for SIGTERM, at most a minute. */
static void idle(const char *ready) {
    marker(ready, "pid=%d\n", (int)getpid());
    for (int i = 0; i < 600; i++) {
        alarm(1);
        pause();
    }
    _exit(97);
}

static void on_alarm(int sig) { (void)sig; }

static const char *status_text(int st, char *buf, size_t n) {
    if (WIFEXITED(st))
        snprintf(buf, n, "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, n, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, n, "status %#x", st);
    return buf;
}

/* State letter of /proc/PID/stat ('?' when unreadable). */
static char proc_state(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return '?';
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return '?';
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    pid_t me = getpid();
    CHECK(setsid() == me);
    say("parent: session leader %s\n", yes(getsid(0) == me && getpgid(0) == me));

    pid_t a = fork();
    CHECK(a >= 0);
    if (a == 0)
        _exit(3);
    siginfo_t si = {0};
    CHECK(waitid(P_PID, (id_t)a, &si, WEXITED | WNOWAIT) == 0);
    say("parent: A exited (not reaped) with %d\n", si.si_status);

    int bc[2];
    CHECK(pipe(bc) == 0);
    pid_t b = fork();
    CHECK(b >= 0);
    if (b == 0) {
        close(bc[0]);
        CHECK(setpgid(0, 0) == 0);
        sa.sa_handler = b_term;
        CHECK(sigaction(SIGTERM, &sa, NULL) == 0);
        idle("b-ready");
    }
    CHECK(setpgid(b, b) == 0 || errno == EACCES);
    pid_t c = fork();
    CHECK(c >= 0);
    if (c == 0) {
        close(bc[1]);
        g_bc_read = bc[0];
        CHECK(setpgid(0, b) == 0);
        sa.sa_handler = c_term;
        CHECK(sigaction(SIGTERM, &sa, NULL) == 0);
        idle("c-ready");
    }
    CHECK(setpgid(c, b) == 0 || errno == EACCES);
    close(bc[0]);
    close(bc[1]);
    wait_for("b-ready", 60);
    wait_for("c-ready", 60);
    say("parent: B leads its group %s, C in it %s\n", yes(getpgid(b) == b),
        yes(getpgid(c) == b));
    marker("ready", "parent=%d\na=%d\nb=%d\nc=%d\n", (int)me, (int)a, (int)b, (int)c);
    wait_for("go", 60);

    say("parent: pid same %s, session same %s, group same %s\n", yes(getpid() == me),
        yes(getsid(0) == me), yes(getpgid(0) == me));
    say("parent: B leads its group %s, C in it %s, both in my session %s\n",
        yes(getpgid(b) == b), yes(getpgid(c) == b),
        yes(getsid(b) == me && getsid(c) == me));
    say("parent: A is a zombie %s\n", yes(proc_state(a) == 'Z'));
    char text[64];
    int st = 0;
    pid_t w = waitpid(a, &st, 0);
    say("parent: reaped A %s: %s\n", yes(w == a), status_text(st, text, sizeof text));
    CHECK(kill(-b, SIGTERM) == 0);
    int stb = 0, stc = 0;
    pid_t wb = waitpid(b, &stb, 0);
    pid_t wc = waitpid(c, &stc, 0);
    say("parent: reaped B %s: %s\n", yes(wb == b), status_text(stb, text, sizeof text));
    say("parent: reaped C %s: %s\n", yes(wc == c), status_text(stc, text, sizeof text));
    say("parent: no child left %s\n", yes(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD));
    say("parent: end\n");
    return 0;
}
