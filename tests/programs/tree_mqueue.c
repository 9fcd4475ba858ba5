/* tree_mqueue CTL: POSIX message queues a job's processes share across a
 * restart: a named one and one unlinked after both processes opened it
 * (inherited by the fork). Each process queues messages on both before
 * the checkpoint (marker "ready" once all are queued); both wait for
 * CTL/go. Then the child sends "after" on each queue and ends; the parent
 * reaps it and receives every message of each queue in order, printing
 * them: one queue each, holding the messages of both processes
 * (tests/process_trees.rs). */
#include "ckpt_test.h"
#include <fcntl.h>
#include <mqueue.h>
#include <sys/wait.h>

static void drain(mqd_t q, const char *what) {
    char buf[128];
    unsigned prio;
    ssize_t n;
    while ((n = mq_receive(q, buf, sizeof buf, &prio)) >= 0)
        printf("%s: \"%.*s\" priority %u\n", what, (int)n, buf, prio);
    printf("%s: then %s\n", what, errno == EAGAIN ? "empty" : strerror(errno));
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    const char *named_name = "/ckpt-tree-mq", *hidden_name = "/ckpt-tree-mq-gone";
    mq_unlink(named_name); /* left by a killed run */
    mq_unlink(hidden_name);
    struct mq_attr a = {.mq_maxmsg = 8, .mq_msgsize = 64};
    mqd_t named = mq_open(named_name, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &a);
    mqd_t hidden = mq_open(hidden_name, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &a);
    CHECK(named != (mqd_t)-1 && hidden != (mqd_t)-1);
    CHECK(mq_unlink(hidden_name) == 0);
    CHECK(mq_send(named, "parent 1", 8, 1) == 0 && mq_send(hidden, "parent 1", 8, 2) == 0);
    pid_t kid = fork();
    CHECK(kid >= 0);
    if (kid == 0) {
        CHECK(mq_send(named, "child 1", 7, 3) == 0 && mq_send(hidden, "child 1", 7, 1) == 0);
        marker("child-ready", "\n");
        wait_for("go", 60);
        CHECK(mq_send(named, "child after", 11, 0) == 0);
        CHECK(mq_send(hidden, "child after", 11, 0) == 0);
        return 0;
    }
    wait_for("child-ready", 60);
    marker("ready", "pid=%d\n", (int)kid);
    wait_for("go", 60);
    int st;
    CHECK(waitpid(kid, &st, 0) == kid);
    printf("child ended %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    drain(named, "named");
    drain(hidden, "unlinked");
    mq_unlink(named_name);
    return 0;
}
