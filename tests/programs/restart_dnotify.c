/* A directory watched with fcntl(F_NOTIFY) (dnotify), multishot, its
 * signal set with F_SETSIG: after the loop the program makes a file in
 * it and waits for the signal naming the directory's descriptor. A
 * restart must watch it again (the kernel shows the registration
 * nowhere: ckpt's fcntl wrapper records it). A second directory was
 * watched, then closed and its number reused for another directory: that
 * one must not be watched after a restart.
 * Prints "step N" while it waits. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint_window.h"

static volatile sig_atomic_t hits, other_hits;
static int watched = -1, reused = -1;

static void on_notify(int s, siginfo_t *si, void *ctx) {
    (void)s, (void)ctx;
    if (si->si_fd == watched)
        hits++;
    else if (si->si_fd == reused)
        other_hits++;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    mkdir("dn-watched", 0755);
    mkdir("dn-other", 0755);
    mkdir("dn-reused", 0755);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_notify;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN + 1, &sa, NULL);
    watched = open("dn-watched", O_RDONLY | O_DIRECTORY);
    int gone = open("dn-other", O_RDONLY | O_DIRECTORY);
    if (watched < 0 || gone < 0 || fcntl(watched, F_SETSIG, SIGRTMIN + 1) ||
        fcntl(watched, F_NOTIFY, DN_CREATE | DN_MULTISHOT) || fcntl(gone, F_SETSIG, SIGRTMIN + 1) ||
        fcntl(gone, F_NOTIFY, DN_CREATE | DN_MULTISHOT))
        return 1;
    close(gone);
    reused = open("dn-reused", O_RDONLY | O_DIRECTORY);
    fcntl(reused, F_SETSIG, SIGRTMIN + 1);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        usleep(40000);
    }
    int f = open("dn-watched/new", O_CREAT | O_WRONLY, 0644);
    int g = open("dn-reused/new", O_CREAT | O_WRONLY, 0644);
    close(f), close(g);
    for (int i = 0; i < 500 && !hits; i++)
        usleep(1000);
    usleep(20000);
    printf("signal for the watched directory: %d, for the other: %d\n", hits > 0, other_hits > 0);
    unlink("dn-watched/new"), unlink("dn-reused/new");
    return 0;
}
