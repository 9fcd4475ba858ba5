/* A program that puts its terminal (standard input) in raw mode, as an
 * editor does, and counts SIGWINCH. After the loop it prints its
 * terminal's settings as it finds them, and the window size when it got
 * a SIGWINCH. A restart must give it the terminal as it had set it
 * (whatever the shell left it in) and tell it of a new window size.
 * Output goes to standard output (a file in the test). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t winch;
static void on_winch(int s) { (void)s; winch++; }

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGWINCH, on_winch);
    struct termios t;
    if (tcgetattr(0, &t)) {
        printf("standard input is not a terminal\n");
        return 1;
    }
    cfmakeraw(&t);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(0, TCSANOW, &t))
        return 1;
    for (int i = 0; i < 40; i++) {
        printf("step %d\n", i);
        usleep(40000);
    }
    struct termios now;
    tcgetattr(0, &now);
    printf("canonical %d, echo %d, signals %d, output processing %d\n", !!(now.c_lflag & ICANON),
           !!(now.c_lflag & ECHO), !!(now.c_lflag & ISIG), !!(now.c_oflag & OPOST));
    if (winch) {
        struct winsize w;
        ioctl(0, TIOCGWINSZ, &w);
        printf("resized to %d rows, %d columns\n", w.ws_row, w.ws_col);
    }
    return 0;
}
