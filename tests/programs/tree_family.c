/* A parent and its forked child that share state only a whole-tree
 * checkpoint can keep: a MAP_SHARED|MAP_ANONYMOUS counter both increment,
 * a pipe (parent -> child) and a stream socket pair (child -> parent) that
 * hold unread bytes at each stop, the stdout file both write through one
 * shared offset, and the child's exit status the parent collects.
 *
 * usage: tree_family CTL [ROUNDS]   (ROUNDS defaults to 2)
 *
 * Each round r:
 *   parent: writes "next" into the pipe
 *   child:  reads "next", prints, sends 40 bytes over the socket pair
 *   parent: reads 10 of them (30 stay queued), prints, writes 64 bytes
 *           into the pipe
 *   child:  reads 16 of them (48 stay in the pipe), prints
 *   both:   add 1000 to the shared counter; the child writes marker
 *           cready<r>, the parent waits for it and writes marker ready<r>
 *           (pids in it), then both wait for control file go<r>.
 *   -- the test checkpoints here: 48 bytes in the pipe, 30 in the socket --
 *   child:  checks its pid and parent pid are those it had, prints, reads
 *           the 48 bytes, prints, adds 1000, sends "done"
 *   parent: reads the 30 bytes and "done", prints, checks its pid, adds
 *           1000, prints the counter (4000 per round).
 * The child then exits with status 7; the parent reaps it and prints the
 * status. Every line is one write(2) to fd 1 and only one process prints
 * at a time, so the transcript is deterministic (no pids in it). */
#include "ckpt_test.h"
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

static void say(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    CHECK(n > 0 && n < (int)sizeof buf);
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(1, p, (size_t)n);
        if (w < 0 && errno == EINTR)
            continue;
        CHECK(w > 0);
        p += w;
        n -= (int)w;
    }
}

static void read_exact(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        CHECK(r > 0);
        got += (size_t)r;
    }
    buf[got] = 0;
}

static void write_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        CHECK(w > 0);
        buf += w;
        n -= (size_t)w;
    }
}

static void bump(volatile long *counter) {
    for (int i = 0; i < 1000; i++)
        __atomic_add_fetch(counter, 1, __ATOMIC_SEQ_CST);
}

static const char *yes(int c) { return c ? "yes" : "NO"; }

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    int rounds = argc > 2 ? atoi(argv[2]) : 2;
    volatile long *counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(counter != MAP_FAILED);
    int p2c[2], sv[2];
    CHECK(pipe(p2c) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    say("parent: start, %d rounds\n", rounds);
    pid_t me = getpid();
    pid_t kid = fork();
    CHECK(kid >= 0);
    if (kid == 0) {
        close(p2c[1]);
        close(sv[0]);
        pid_t self = getpid(), parent = getppid();
        for (int r = 1; r <= rounds; r++) {
            char buf[128], name[32];
            read_exact(p2c[0], buf, 4);
            say("child: round %d got '%s'\n", r, buf);
            snprintf(buf, sizeof buf, "c2p round %d: 0123456789abcdefghijklmnopq", r);
            CHECK(strlen(buf) == 40);
            write_all(sv[1], buf, 40);
            read_exact(p2c[0], buf, 16);
            say("child: round %d read 16 '%s'\n", r, buf);
            bump(counter);
            snprintf(name, sizeof name, "cready%d", r);
            marker(name, "pid=%d\n", (int)self);
            snprintf(name, sizeof name, "go%d", r);
            wait_for(name, 60);
            say("child: round %d pid same %s, ppid same %s\n", r, yes(getpid() == self),
                yes(getppid() == parent));
            read_exact(p2c[0], buf, 48);
            say("child: round %d read rest '%s'\n", r, buf);
            bump(counter);
            write_all(sv[1], "done", 4);
        }
        _exit(7);
    }
    close(p2c[0]);
    close(sv[1]);
    for (int r = 1; r <= rounds; r++) {
        char buf[128], name[32];
        write_all(p2c[1], "next", 4);
        read_exact(sv[0], buf, 10);
        say("parent: round %d read 10 '%s'\n", r, buf);
        snprintf(buf, sizeof buf,
                 "p2c round %d: ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvw!", r);
        CHECK(strlen(buf) == 64);
        write_all(p2c[1], buf, 64);
        bump(counter);
        snprintf(name, sizeof name, "cready%d", r);
        wait_for(name, 60);
        snprintf(name, sizeof name, "ready%d", r);
        marker(name, "parent=%d\nchild=%d\n", (int)me, (int)kid);
        snprintf(name, sizeof name, "go%d", r);
        wait_for(name, 60);
        read_exact(sv[0], buf, 34);
        say("parent: round %d read rest '%s'\n", r, buf);
        say("parent: round %d pid same %s\n", r, yes(getpid() == me));
        bump(counter);
        say("parent: round %d counter %ld\n", r, *counter);
    }
    int st = 0;
    pid_t w = waitpid(kid, &st, 0);
    say("parent: waitpid same pid %s, child %s %d\n", yes(w == kid),
        WIFEXITED(st) ? "exited" : "killed", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    say("parent: end\n");
    return 0;
}
