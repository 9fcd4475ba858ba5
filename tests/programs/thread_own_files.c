/* A thread with a descriptor table of its own (unshare(CLONE_FILES)),
 * holding a file only it can see: a restart gives the thread the
 * process's table, so the checkpoint must say so; a thread that shares
 * the table is not named. Prints "step N" while it waits. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void *own(void *arg) {
    (void)arg;
    if (unshare(CLONE_FILES) != 0) { perror("unshare"); return NULL; }
    int fd = open("/dev/null", O_RDONLY);
    (void)fd;
    pause();
    return NULL;
}

static void *shared(void *arg) {
    (void)arg;
    pause();
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_t a, b;
    pthread_create(&a, NULL, own, NULL);
    pthread_create(&b, NULL, shared, NULL);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    return 0;
}
