/* Thread names: the main thread and three others name themselves (as a
 * JVM's "GC Thread#0" or "pool-1-thread-1" do); every step each thread's
 * name is read back from /proc/self/task/TID/comm. After a restart each
 * thread must carry its own name, not the main thread's. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include "checkpoint_window.h"

static const char *names[] = {"GC Thread#0", "pool-1-thread-1", "worker\t\\x"};
static pthread_t threads[3];
static volatile int done;

static void *run(void *arg) {
    /* Named by the thread itself, as most runtimes do. */
    prctl(PR_SET_NAME, names[(long)arg]);
    while (!done)
        usleep(10000);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    prctl(PR_SET_NAME, "main-loop");
    for (long i = 0; i < 3; i++)
        pthread_create(&threads[i], NULL, run, (void *)i);
    usleep(100000);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        char self[16] = "", buf[16];
        prctl(PR_GET_NAME, self);
        printf("step %d: %s", step, self);
        for (int i = 0; i < 3; i++) {
            if (pthread_getname_np(threads[i], buf, sizeof buf) != 0)
                strcpy(buf, "?");
            printf(" | %s", buf);
        }
        printf("\n");
        usleep(50000);
    }
    done = 1;
    for (int i = 0; i < 3; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
