/* An inotify instance with an event queued unread at the checkpoint (a
 * file made in the watched directory before the loop): the checkpoint
 * must say that a restart will not have it (events cannot be read
 * without taking them). Prints "step N" while it waits. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int in = inotify_init1(IN_NONBLOCK);
    if (in < 0 || inotify_add_watch(in, ".", IN_CREATE) < 0)
        return 1;
    int f = open("made-while-watched", O_CREAT | O_WRONLY, 0644);
    if (f < 0)
        return 1;
    close(f);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    return 0;
}
