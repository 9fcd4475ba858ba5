/* tree_pty CTL: a job driving a child through a pseudo-terminal the way
 * `script`, expect or a terminal emulator does. forkpty(): the child is a
 * session leader whose controlling terminal is the new pair's slave (its
 * stdin, stdout and stderr); it turns echo off, then answers each line it
 * reads through /dev/tty (which only a controlling terminal opens), saying
 * whether it still leads its session, is the terminal's foreground
 * group, and the window size. The parent, holding the master, sends
 * numbers and prints the answers. Three rounds, `ready`, wait for `go`,
 * three more rounds, then `quit`: a restart in between must give the
 * output of an uninterrupted run. */
#include "ckpt_test.h"
#include <pty.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

static void child(void) {
    struct termios t;
    if (tcgetattr(0, &t) == 0) {
        t.c_lflag &= ~(ECHO | ECHONL);
        tcsetattr(0, TCSANOW, &t);
    }
    printf("child: echo off\n");
    fflush(stdout);
    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (strcmp(line, "quit") == 0)
            _exit(7);
        int tty = open("/dev/tty", O_RDWR);
        struct winsize w = {0};
        ioctl(0, TIOCGWINSZ, &w);
        struct termios now;
        tcgetattr(0, &now);
        dprintf(tty >= 0 ? tty : 1,
                "child: got %s tty=%s leader=%d fg=%d size=%dx%d echo=%d\n", line,
                tty >= 0 ? "yes" : "no", getsid(0) == getpid(),
                tcgetpgrp(0) == getpgrp(), w.ws_row, w.ws_col,
                (now.c_lflag & ECHO) != 0);
        if (tty >= 0)
            close(tty);
    }
    _exit(3);
}

/* Send `n` (none when negative), print the child's answer (without the
 * terminal's \r). */
static void round_trip(int m, int n) {
    char msg[32];
    int len = snprintf(msg, sizeof msg, "%d\n", n);
    if (n >= 0 && write(m, msg, len) != len) {
        perror("write");
        exit(1);
    }
    char buf[512];
    size_t have = 0;
    for (;;) {
        ssize_t k = read(m, buf + have, sizeof buf - 1 - have);
        if (k <= 0) {
            perror("read");
            exit(1);
        }
        have += k;
        buf[have] = 0;
        char *nl = strchr(buf, '\n');
        if (nl && strstr(buf, "child:"))
            break;
    }
    for (size_t i = 0; i < have; i++)
        if (buf[i] != '\r')
            putchar(buf[i]);
    fflush(stdout);
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    int m;
    struct winsize w = {.ws_row = 33, .ws_col = 77};
    pid_t c = forkpty(&m, NULL, NULL, &w);
    if (c < 0) {
        perror("forkpty");
        return 1;
    }
    if (c == 0)
        child();
    for (int i = -1; i < 3; i++)
        round_trip(m, i);
    marker("ready", "pid=%d child=%d\n", (int)getpid(), (int)c);
    wait_for("go", 60);
    for (int i = 3; i < 6; i++)
        round_trip(m, i);
    struct winsize now = {0};
    ioctl(m, TIOCGWINSZ, &now);
    printf("parent: size=%dx%d\n", now.ws_row, now.ws_col);
    if (write(m, "quit\n", 5) != 5)
        return 1;
    int st = 0;
    waitpid(c, &st, 0);
    printf("parent: child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
