/* POSIX message queues across a restart: a named queue holding messages
 * of several priorities (one empty, one of the queue's full size),
 * opened twice (read-write non-blocking, and read-only); and a queue the
 * program unlinked but holds open, with messages. After the restart each
 * descriptor must find its queue with its attributes and every message,
 * in the order a receiver takes them (highest priority first, in sending
 * order within a priority). The named queue is "/ckpt-test-mq"; the
 * program unlinks it at the start (one a killed run left) and the end.
 * A third queue, empty, has a notification registered (mq_notify), which
 * a restart cannot register again: the checkpoint must say so.
 * Prints "step N" while it waits, then what it receives. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void drain(const char *what, mqd_t q) {
    struct mq_attr a;
    mq_getattr(q, &a);
    printf("%s: %ld messages, at most %ld of %ld bytes, %s\n", what, a.mq_curmsgs, a.mq_maxmsg,
           a.mq_msgsize, a.mq_flags & O_NONBLOCK ? "non-blocking" : "blocking");
    char buf[256];
    for (long i = 0; i < a.mq_curmsgs; i++) {
        unsigned prio = 0;
        ssize_t n = mq_receive(q, buf, sizeof buf, &prio);
        if (n < 0) {
            printf("%s: receive: %s\n", what, strerror(errno));
            return;
        }
        printf("%s: priority %u, %zd bytes '%.*s'\n", what, prio, n, (int)(n > 20 ? 20 : n), buf);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *name = "/ckpt-test-mq";
    mq_unlink(name);
    struct mq_attr a = {.mq_maxmsg = 8, .mq_msgsize = 200};
    mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0640, &a);
    mqd_t r = mq_open(name, O_RDONLY);
    struct mq_attr b = {.mq_maxmsg = 3, .mq_msgsize = 16};
    mqd_t u = mq_open("/ckpt-test-mq-unlinked", O_CREAT | O_RDWR, 0600, &b);
    if (q == (mqd_t)-1 || r == (mqd_t)-1 || u == (mqd_t)-1) {
        perror("mq_open");
        return 1;
    }
    mq_unlink("/ckpt-test-mq-unlinked");
    mqd_t n = mq_open("/ckpt-test-mq-notified", O_CREAT | O_RDWR, 0600, &b);
    struct sigevent ev = {.sigev_notify = SIGEV_NONE};
    if (n == (mqd_t)-1 || mq_notify(n, &ev))
        return 1;
    mq_unlink("/ckpt-test-mq-notified");
    char big[200];
    memset(big, 'z', sizeof big);
    if (mq_send(q, "low", 3, 1) || mq_send(q, "high", 4, 9) || mq_send(q, "", 0, 5) ||
        mq_send(q, "low again", 9, 1) || mq_send(q, big, sizeof big, 5) ||
        mq_send(u, "kept", 4, 0) || mq_send(u, "too", 3, 2))
        return 1;
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    if (mq_send(q, "after", 5, 3))
        printf("send after: %s\n", strerror(errno));
    drain("read-only descriptor", r);
    drain("read-write descriptor", q);
    drain("unlinked queue", u);
    printf("unlinked name: %s\n",
           mq_open("/ckpt-test-mq-unlinked", O_RDONLY) == (mqd_t)-1 ? strerror(errno) : "exists");
    mq_unlink(name);
    return 0;
}
