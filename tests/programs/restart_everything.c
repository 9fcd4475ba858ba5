/* Many kinds of state at once (issue "Nothing comes back silently
 * wrong"): shared anonymous memory, a sealed memfd mapped shared, a private
 * mapping of an unlinked file, a fired periodic timerfd, a named FIFO and
 * an unlinked one with bytes in them, a datagram socket pair with queued
 * messages, a pipe whose writer was closed, real-time signals queued to a
 * second thread, an epoll watch whose descriptor was closed and its number
 * reused, thread names, a 1 TiB NORESERVE reservation, a namespace
 * descriptor, and an O_APPEND log; a stream socket pair whose writer shut
 * its side down, a POSIX message queue with messages, a semaphore-mode
 * eventfd, a pipe set for signal-driven I/O, a pidfd of itself, a timer
 * slack. After step 30 each is checked and printed; the output must
 * equal an uninterrupted run's. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "checkpoint_window.h"

static pthread_barrier_t b1, b2;
static volatile sig_atomic_t usr2;
static void on_usr2(int s) { (void)s; usr2++; }
static pid_t other_tid;

static void *other(void *arg) {
    (void)arg;
    prctl(PR_SET_NAME, "other-worker");
    other_tid = (pid_t)syscall(SYS_gettid);
    pthread_barrier_wait(&b1);
    pthread_barrier_wait(&b2);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN + 2);
    struct timespec zero = {0, 0};
    siginfo_t si;
    while (sigtimedwait(&s, &si, &zero) > 0)
        printf("thread signal value %d\n", si.si_value.sival_int);
    char name[16];
    prctl(PR_GET_NAME, name);
    printf("thread name %s\n", name);
    fflush(stdout);
    return NULL;
}

int main(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN + 2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_barrier_init(&b1, NULL, 2);
    pthread_barrier_init(&b2, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, other, NULL);
    pthread_barrier_wait(&b1);

    unsigned char *shm = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 1 << 20; i++) shm[i] = (unsigned char)(i * 7);
    int mfd = memfd_create("everything", MFD_ALLOW_SEALING);
    ftruncate(mfd, 4096);
    char *mm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    strcpy(mm, "memfd-through-map");
    fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    char up[] = "/tmp/ckpt-everything-XXXXXX";
    int uf = mkstemp(up);
    write(uf, "unlinked-private", 16);
    char *um = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, uf, 0);
    close(uf);
    unlink(up);
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = {{3, 0}, {0, 1000}};
    timerfd_settime(tfd, 0, &its, NULL);
    char fp[] = "/tmp/ckpt-everything-fifo-XXXXXX";
    mkstemp(fp);
    unlink(fp);
    mkfifo(fp, 0600);
    int fr = open(fp, O_RDONLY | O_NONBLOCK), fw = open(fp, O_WRONLY);
    write(fw, "fifo-bytes", 10);
    char fp2[] = "/tmp/ckpt-everything-fifo2-XXXXXX";
    mkstemp(fp2);
    unlink(fp2);
    mkfifo(fp2, 0600);
    int gr = open(fp2, O_RDONLY | O_NONBLOCK), gw = open(fp2, O_WRONLY);
    write(gw, "gone-fifo", 9);
    unlink(fp2);
    int sp[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sp);
    send(sp[0], "one", 3, 0);
    send(sp[0], "", 0, 0);
    send(sp[0], "three", 5, 0);
    int pp[2];
    pipe(pp);
    write(pp[1], "last-words", 10);
    close(pp[1]);
    for (int v = 1; v <= 3; v++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        si.si_signo = SIGRTMIN + 2;
        si.si_code = SI_QUEUE;
        si.si_pid = getpid();
        si.si_uid = getuid();
        si.si_value.sival_int = v * 11;
        syscall(SYS_rt_tgsigqueueinfo, getpid(), other_tid, SIGRTMIN + 2, &si);
    }
    int ep = epoll_create1(0);
    int ev = eventfd(0, 0);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 0xabc};
    epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e);
    int evk = dup(ev);
    close(ev);
    int reuse[2];
    pipe(reuse);
    void *big = mmap(NULL, 1ul << 40, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ((char *)big)[123456789] = 42;
    int nsfd = open("/proc/self/ns/uts", O_RDONLY);
    int log = open("/tmp/ckpt-everything-log-unused", O_WRONLY | O_CREAT | O_APPEND, 0600);
    unlink("/tmp/ckpt-everything-log-unused");
    int shut[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, shut);
    write(shut[1], "last words", 10);
    shutdown(shut[1], SHUT_WR);
    struct mq_attr qa = {.mq_maxmsg = 4, .mq_msgsize = 32};
    mq_unlink("/ckpt-everything-mq");
    mqd_t mq = mq_open("/ckpt-everything-mq", O_CREAT | O_RDWR | O_NONBLOCK, 0600, &qa);
    mq_unlink("/ckpt-everything-mq");
    mq_send(mq, "second", 6, 1);
    mq_send(mq, "first", 5, 7);
    int sem = eventfd(2, EFD_SEMAPHORE);
    signal(SIGUSR2, on_usr2);
    int sio[2];
    pipe(sio);
    fcntl(sio[0], F_SETOWN, getpid());
    fcntl(sio[0], F_SETSIG, SIGUSR2);
    fcntl(sio[0], F_SETFL, O_ASYNC | O_NONBLOCK);
    int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
    prctl(PR_SET_TIMERSLACK, 234000);
    prctl(PR_SET_NAME, "main-loop");
    usleep(20000);

    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        fflush(stdout);
        if (step == 30) {
            unsigned sum = 0;
            for (int i = 0; i < 1 << 20; i++) sum = sum * 31 + shm[i];
            printf("shared %08x\n", sum);
            char buf[64] = {0};
            pread(mfd, buf, 17, 0);
            printf("memfd %s seals %#x map-shared %d\n", buf, fcntl(mfd, F_GET_SEALS), mm[0] == buf[0]);
            printf("unlinked map %.16s\n", um);
            uint64_t ticks = 0;
            struct itimerspec cur;
            timerfd_gettime(tfd, &cur);
            read(tfd, &ticks, 8);
            printf("timerfd ticks %llu armed %d\n", (unsigned long long)ticks, cur.it_interval.tv_sec == 3);
            memset(buf, 0, sizeof buf);
            printf("fifo %zd %.10s\n", read(fr, buf, sizeof buf), buf);
            memset(buf, 0, sizeof buf);
            printf("unlinked fifo %zd %.9s\n", read(gr, buf, sizeof buf), buf);
            for (int i = 0; i < 3; i++) {
                memset(buf, 0, sizeof buf);
                ssize_t n = recv(sp[1], buf, sizeof buf, MSG_DONTWAIT);
                printf("message %zd '%s'\n", n, buf);
            }
            memset(buf, 0, sizeof buf);
            ssize_t n1 = read(pp[0], buf, sizeof buf);
            ssize_t n2 = read(pp[0], buf + 20, sizeof buf - 20);
            printf("pipe %zd '%.10s' then %zd\n", n1, buf, n2);
            write(reuse[1], "x", 1);
            struct epoll_event got;
            int a = epoll_wait(ep, &got, 1, 0);
            uint64_t one = 1;
            write(evk, &one, 8);
            int c = epoll_wait(ep, &got, 1, 0);
            printf("epoll %d then %d data %#llx\n", a, c, c > 0 ? (unsigned long long)got.data.u64 : 0ull);
            printf("reservation %d\n", ((char *)big)[123456789]);
            printf("ns fd %s\n", fcntl(nsfd, F_GETFD) >= 0 ? "open" : "closed");
            printf("log %s\n", write(log, "x", 1) == 1 ? "writable" : "not");
            memset(buf, 0, sizeof buf);
            n1 = read(shut[0], buf, sizeof buf);
            n2 = read(shut[0], buf + 20, sizeof buf - 20);
            printf("shut stream %zd '%.10s' then %zd\n", n1, buf, n2);
            for (int i = 0; i < 2; i++) {
                unsigned prio = 0;
                memset(buf, 0, sizeof buf);
                ssize_t m = mq_receive(mq, buf, sizeof buf, &prio);
                printf("queue %zd '%s' priority %u\n", m, buf, prio);
            }
            uint64_t took = 0;
            read(sem, &took, 8);
            printf("semaphore eventfd gives %llu\n", (unsigned long long)took);
            write(sio[1], "s", 1);
            for (int i = 0; i < 200 && !usr2; i++)
                usleep(1000);
            printf("signal-driven pipe %d\n", usr2 > 0);
            printf("own pidfd %d\n", self >= 0 && syscall(SYS_pidfd_send_signal, self, 0, NULL, 0) == 0);
            printf("timer slack %d\n", prctl(PR_GET_TIMERSLACK));
            char name[16];
            prctl(PR_GET_NAME, name);
            printf("main name %s\n", name);
            fflush(stdout);
            pthread_barrier_wait(&b2);
            pthread_join(t, NULL);
        }
        usleep(20000);
    }
    return 0;
}
