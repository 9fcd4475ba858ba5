/* restart_rseq CTL: after restart, every thread's rseq area is registered
 * again and sched_getcpu() tells the CPU the kernel reports for the thread
 * (field 39 of /proc/self/task/TID/stat). The thread hops between the CPUs
 * it may use (sched_setaffinity) so a stale cpu_id would show. Checked in
 * the main thread and in a second thread created before the checkpoint.
 * Marker `ready`, waits for `go`, prints a verdict. */
#include "ckpt_test.h"
#include <pthread.h>
#include <sched.h>
#include <sys/rseq.h>

extern const unsigned int __rseq_size __attribute__((weak));
extern const ptrdiff_t __rseq_offset __attribute__((weak));

static int proc_cpu(void) {
    char p[128], buf[2048];
    snprintf(p, sizeof p, "/proc/self/task/%d/stat", (int)gettid_());
    int fd = open(p, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    CHECK(n > 0);
    buf[n] = 0;
    char *s = strrchr(buf, ')');
    CHECK(s != NULL);
    s += 2; /* field 3 */
    for (int f = 3; f < 39; f++) {
        s = strchr(s, ' ');
        CHECK(s != NULL);
        s++;
    }
    return atoi(s);
}

static int rseq_cpu_id(void) {
    if (&__rseq_size == NULL || __rseq_size == 0)
        return -100;
    const char *tp = __builtin_thread_pointer();
    return *(const volatile int *)(tp + __rseq_offset + 4);
}

struct result {
    int mismatches, migrations, bad_rseq, moved;
};

static void check(struct result *r) {
    cpu_set_t allowed;
    CHECK(sched_getaffinity(0, sizeof allowed, &allowed) == 0);
    int cpus[CPU_SETSIZE], ncpu = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &allowed))
            cpus[ncpu++] = c;
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 300; i++) {
        if (ncpu > 1 && i % 10 == 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpus[(i / 10) % ncpu], &one);
            if (sched_setaffinity(0, sizeof one, &one) == 0)
                r->moved++;
        }
        int a = proc_cpu();
        int g = sched_getcpu();
        int q = rseq_cpu_id();
        int b = proc_cpu();
        if (a != b) {
            r->migrations++;
            continue;
        }
        if (g != a)
            r->mismatches++;
        if (q < 0 || q != a)
            r->bad_rseq++;
    }
    CHECK(sched_setaffinity(0, sizeof allowed, &allowed) == 0);
}

static struct result thr_res;
static void *second(void *arg) {
    (void)arg;
    wait_for("go", 30);
    check(&thr_res);
    return NULL;
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    int registered = &__rseq_size != NULL && __rseq_size > 0 && rseq_cpu_id() >= 0;
    printf("rseq registered before: %s\n", registered ? "yes" : "no (glibc without rseq?)");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, second, NULL) == 0);
    marker("ready", "pid=%d\n", (int)getpid());
    wait_for("go", 30);
    struct result m;
    check(&m);
    pthread_join(t, NULL);
    int reg_after = &__rseq_size != NULL && __rseq_size > 0 && rseq_cpu_id() >= 0;
    printf("rseq registered after restart: %s\n", reg_after ? "yes" : "NO");
    printf("main thread: sched_getcpu mismatches %s, rseq cpu_id %s\n",
           m.mismatches ? "SOME" : "none", m.bad_rseq ? "WRONG" : "ok");
    printf("second thread: sched_getcpu mismatches %s, rseq cpu_id %s\n",
           thr_res.mismatches ? "SOME" : "none", thr_res.bad_rseq ? "WRONG" : "ok");
    fprintf(stderr, "main: mismatches %d bad_rseq %d migrations %d moved %d; second: %d %d %d %d\n",
            m.mismatches, m.bad_rseq, m.migrations, m.moved, thr_res.mismatches, thr_res.bad_rseq,
            thr_res.migrations, thr_res.moved);
    int ok = registered == reg_after && !m.mismatches && !thr_res.mismatches &&
             (!registered || (!m.bad_rseq && !thr_res.bad_rseq));
    printf("verdict: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
