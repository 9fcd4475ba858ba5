/* A thread with a working directory and umask of its own
 * (unshare(CLONE_FS)) and, when run as root, an identity of its own (raw
 * setresuid/setresgid change only the calling thread; glibc's change them
 * all) keeps them across a restart, and the main thread keeps the
 * process's. Before, a restarted thread had the process's cwd, umask and
 * uids. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

static int as_root;

static void view(const char *who, int step) {
    char cwd[4096] = "";
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "?");
    const char *base = strrchr(cwd, '/');
    mode_t m = umask(0);
    umask(m);
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("step %d %s: dir %s umask %03o uid %d/%d/%d gid %d/%d/%d\n", step, who,
           base ? base + 1 : cwd, m, (int)r, (int)e, (int)s, (int)gr, (int)ge, (int)gs);
    fflush(stdout);
}

static void *worker(void *arg) {
    (void)arg;
    if (unshare(CLONE_FS) != 0) { perror("unshare"); return NULL; }
    if (chdir("sub-own") != 0) { perror("chdir"); return NULL; }
    umask(077);
    if (as_root) {
        if (syscall(SYS_setresgid, -1, 1234, -1) != 0) perror("setresgid");
        if (syscall(SYS_setresuid, -1, 4321, -1) != 0) perror("setresuid");
    }
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        view("thread", step);
        usleep(25000);
    }
    return NULL;
}

int main(void) {
    as_root = geteuid() == 0;
    mkdir("sub-own", 0755);
    umask(022);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    view("main", 40);
    return 0;
}
