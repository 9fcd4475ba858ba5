/* An epoll watch added through a descriptor closed since, whose number was
 * then reused by a pipe: the watch must still follow the eventfd (now only
 * at a dup'ed number), and the pipe at the old number must not be watched.
 * After step 30: what epoll_wait sees before anything, after a write to
 * the pipe, after a write to the eventfd. */
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    int ep = epoll_create1(0);
    int e = eventfd(0, 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1234};
    epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev);
    int kept = dup(e);
    close(e);
    int p[2];
    pipe(p);
    printf("pipe took the old number: %s\n", p[0] == e ? "yes" : "no");
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        if (step == 30) {
            struct epoll_event got;
            int n = epoll_wait(ep, &got, 1, 0);
            printf("before: %d\n", n);
            write(p[1], "x", 1);
            n = epoll_wait(ep, &got, 1, 0);
            printf("after a write to the pipe: %d\n", n);
            uint64_t one = 1;
            write(kept, &one, 8);
            n = epoll_wait(ep, &got, 1, 0);
            printf("after a write to the eventfd: %d data %#llx\n", n,
                   n > 0 ? (unsigned long long)got.data.u64 : 0ull);
        }
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
