/* A program that uses SIGRTMAX-2 (ckpt's reserved signal by default until
 * 2026-12) the way a JVM does for blocking I/O: a handler that does nothing, and
 * pthread_kill to a thread blocked in read() to make it return EINTR.
 * The program must be able to install the handler, read it back, and get
 * its interruption, before and after a restart. Prints "step N" (idling a
 * second after step 19, when the test checkpoints). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint_window.h"

static volatile sig_atomic_t handled;
static void on_sig(int s) { (void)s; handled++; }

static int p[2];
static volatile int reader_state; /* 1 blocked, 2 got EINTR, 3 got data */

static void *reader(void *a) {
    (void)a;
    char c;
    reader_state = 1;
    ssize_t n = read(p[0], &c, 1);
    reader_state = n < 0 && errno == EINTR ? 2 : 3;
    return NULL;
}

/* Interrupt a thread blocked in read() with the signal; what happened? */
static const char *interrupt_a_read(void) {
    pthread_t t;
    reader_state = 0;
    pthread_create(&t, NULL, reader, NULL);
    while (reader_state != 1)
        usleep(1000);
    usleep(20000);
    int before = handled;
    pthread_kill(t, SIGRTMAX - 2);
    for (int i = 0; i < 200 && reader_state == 1; i++)
        usleep(5000);
    if (reader_state == 1 && write(p[1], "x", 1) != 1)
        return "stuck";
    pthread_join(t, NULL);
    return reader_state == 2 && handled > before ? "EINTR after its handler ran" : "not interrupted";
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (pipe(p))
        return 1;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sigemptyset(&sa.sa_mask);
    printf("sigaction(SIGRTMAX-2): %d\n", sigaction(SIGRTMAX - 2, &sa, NULL));
    sigaction(SIGRTMAX - 2, NULL, &old);
    printf("read back: %s\n", old.sa_handler == on_sig ? "its handler" : "another");
    printf("before: %s\n", interrupt_a_read());
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        if (i % 10 == 9)
            printf("step %d\n", i);
        usleep(20000);
    }
    printf("after: %s\n", interrupt_a_read());
    sigaction(SIGRTMAX - 2, NULL, &old);
    printf("read back: %s\n", old.sa_handler == on_sig ? "its handler" : "another");
    return 0;
}
