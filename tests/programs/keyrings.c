/* Keyrings of the program's own: a key in its process keyring, a second
 * thread's thread keyring, a session keyring it joined (keyctl through
 * syscall(), as libkeyutils does). None can come back: the checkpoint
 * must say each. Prints "unsupported" where keyctl is refused (a seccomp
 * filter). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEY_SPEC_THREAD_KEYRING -1
#define KEY_SPEC_PROCESS_KEYRING -2

static void *worker(void *arg) {
    (void)arg;
    if (syscall(SYS_add_key, "user", "ckpt-thread-key", "t", 1, KEY_SPEC_THREAD_KEYRING) < 0) perror("thread key");
    for (;;) pause();
    return NULL;
}

int main(void) {
    if (syscall(SYS_add_key, "user", "ckpt-process-key", "p", 1, KEY_SPEC_PROCESS_KEYRING) < 0) {
        printf("unsupported: keyctl\n");
        return 0;
    }
    if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "ckpt-test-session") < 0) perror("join");
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    usleep(50000);
    for (int step = 0; step < 60; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
