/* Kernel state of descriptors and threads that reads and writes never
 * show, across a restart:
 * - an eventfd made with EFD_SEMAPHORE (a read takes 1, not the count);
 * - signal-driven I/O: a pipe with O_ASYNC, F_SETOWN to the process and
 *   F_SETSIG SIGUSR1 (whose si_fd names the pipe); a socket pair end owned by a thread (F_SETOWN_EX
 *   F_OWNER_TID) that gets SIGIO;
 * - the owner of two sockets without O_ASYNC, who gets SIGURG when
 *   out-of-band data arrives: set with F_SETOWN on one, with
 *   ioctl(FIOSETOWN) on the other;
 * - a read lease on a file (F_SETLEASE);
 * - per thread: the timer slack and the parent-death signal
 *   (PR_SET_TIMERSLACK, PR_SET_PDEATHSIG), different in a second thread.
 * Prints "step N" while it waits, then what it finds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

static volatile sig_atomic_t usr1, io_in_thread, urg;
static volatile pid_t worker_tid;
static int sp[2];
static volatile int done;

static volatile int usr1_fd = -1;
/* (si_fd named a number the restart used for a moment, before.) */
static void on_usr1(int s, siginfo_t *si, void *u) {
    (void)s;
    (void)u;
    usr1++;
    usr1_fd = si->si_fd;
}
static void on_urg(int s) { (void)s; urg++; }

/* Out-of-band data into `to`: did the owner of its peer get SIGURG? */
static int urgent(int to) {
    int before = urg;
    if (send(to, "!", 1, MSG_OOB) != 1)
        return -1;
    for (int i = 0; i < 200 && urg == before; i++)
        usleep(5000);
    return urg > before;
}
static void on_io(int s) {
    (void)s;
    if (syscall(SYS_gettid) == worker_tid)
        io_in_thread++;
}

static void *worker(void *arg) {
    (void)arg;
    prctl(PR_SET_TIMERSLACK, 777000, 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGHUP, 0, 0, 0);
    worker_tid = syscall(SYS_gettid);
    struct f_owner_ex o = {F_OWNER_TID, worker_tid};
    if (fcntl(sp[0], F_SETOWN_EX, &o) || fcntl(sp[0], F_SETFL, O_ASYNC | O_NONBLOCK))
        printf("worker: owner not set\n");
    while (!done)
        usleep(1000);
    unsigned long slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    int sig = 0;
    prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
    printf("worker: timer slack %lu, parent-death signal %d\n", slack, sig);
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *leased = argc > 1 ? argv[1] : "restart_fd_signals.lease";
    struct sigaction sa = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGIO, on_io);
    signal(SIGURG, on_urg);
    prctl(PR_SET_TIMERSLACK, 123000, 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    int e = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
    int p[2];
    if (e < 0 || pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, sp))
        return 1;
    if (fcntl(p[0], F_SETOWN, getpid()) || fcntl(p[0], F_SETSIG, SIGUSR1) ||
        fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK))
        return 1;
    int so[2], si[2], me = getpid();
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, so) || socketpair(AF_UNIX, SOCK_STREAM, 0, si) ||
        fcntl(so[0], F_SETOWN, me) || ioctl(si[0], FIOSETOWN, &me))
        return 1;
    int lf = open(leased, O_RDONLY | O_CREAT, 0644);
    if (lf < 0 || fcntl(lf, F_SETLEASE, F_RDLCK))
        printf("no lease: %s\n", strerror(errno));
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    while (!worker_tid)
        usleep(1000);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    uint64_t v = 0;
    ssize_t n = read(e, &v, 8);
    printf("eventfd read %zd: %lu\n", n, (unsigned long)v);
    n = read(e, &v, 8);
    printf("eventfd read %zd: %lu\n", n, (unsigned long)v);
    printf("pipe: signal %d, owner is the process %d\n", fcntl(p[0], F_GETSIG),
           fcntl(p[0], F_GETOWN) == getpid());
    if (write(p[1], "x", 1) != 1 || write(sp[1], "y", 1) != 1)
        return 1;
    for (int i = 0; i < 200 && (!usr1 || !io_in_thread); i++)
        usleep(5000);
    printf("SIGUSR1 for the pipe: %d (its si_fd the pipe's: %d), SIGIO in the worker for the "
           "socket: %d\n",
           usr1 > 0, usr1_fd == p[0], io_in_thread > 0);
    printf("SIGURG for a socket owned with F_SETOWN: %d, with FIOSETOWN: %d\n", urgent(so[1]),
           urgent(si[1]));
    printf("lease: %s\n", fcntl(lf, F_GETLEASE) == F_RDLCK ? "read" : "none");
    int sig = 0;
    prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
    printf("main: timer slack %lu, parent-death signal %d\n",
           (unsigned long)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), sig);
    done = 1;
    pthread_join(t, NULL);
    return 0;
}
