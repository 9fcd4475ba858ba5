/* Calls that move data, blocked while the program is checkpointed: a
 * write of 300000 bytes to a pipe and a send of as many to a stream
 * socket (their readers start later), a recv with MSG_WAITALL of 300
 * bytes (1 there, 299 sent later), and a recv and an accept on sockets
 * with a receive timeout (the data and the connection come later). A
 * signal handler cuts the first three short and fails the last two with
 * EINTR (signal(7)); a checkpoint runs one on every thread, yet the
 * program must see none of it: each call returns all it asked for, as
 * without ckpt. The peers are threads that start 1.5 s after "step 19".
 * Before, the checkpoint alone gave 65536, 219264, 1 and two EINTRs. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

#define BIG 300000
static int pipe_fds[2], stream[2], waitall[2], timed[2], listener;
static char path[108];

static void nap(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&t, &t) != 0) {
    }
}

static long drain(int fd) {
    static char b[65536];
    long tot = 0;
    ssize_t n;
    while ((n = read(fd, b, sizeof b)) > 0)
        tot += n;
    return tot;
}

static void *peer(void *arg) {
    (void)arg;
    nap(1500);
    char z[299] = {0};
    write(waitall[1], z, sizeof z);
    write(timed[1], "x", 1);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, path);
    connect(c, (struct sockaddr *)&a, sizeof a);
    return NULL;
}

static void *pipe_writer(void *arg) {
    static char big[BIG];
    memset(big, 'p', sizeof big);
    *(ssize_t *)arg = write(pipe_fds[1], big, sizeof big);
    close(pipe_fds[1]);
    return NULL;
}

static void *stream_sender(void *arg) {
    static char big[BIG];
    memset(big, 's', sizeof big);
    *(ssize_t *)arg = send(stream[1], big, sizeof big, 0);
    shutdown(stream[1], SHUT_WR);
    return NULL;
}

static void *waitall_receiver(void *arg) {
    char b[300];
    *(ssize_t *)arg = recv(waitall[0], b, sizeof b, MSG_WAITALL);
    return NULL;
}

static void *timed_receiver(void *arg) {
    char b[4];
    ssize_t r = recv(timed[0], b, sizeof b, 0);
    *(int *)arg = r < 0 ? errno : 0;
    return NULL;
}

static void *timed_acceptor(void *arg) {
    int c = accept(listener, NULL, NULL);
    *(int *)arg = c < 0 ? errno : 0;
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct timeval tv = {20, 0};
    snprintf(path, sizeof path, "/tmp/ckpt-transfer-%d.sock", (int)getpid());
    unlink(path);
    if (pipe(pipe_fds) || socketpair(AF_UNIX, SOCK_STREAM, 0, stream) ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, waitall) || socketpair(AF_UNIX, SOCK_STREAM, 0, timed)) {
        perror("setup");
        return 1;
    }
    setsockopt(timed[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    listener = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, path);
    if (bind(listener, (struct sockaddr *)&a, sizeof a) || listen(listener, 1)) {
        perror("listen");
        return 1;
    }
    setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    write(waitall[1], "x", 1);
    for (int i = 0; i < 19; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        nap(20);
    }
    ssize_t wrote = 0, sent = 0, got = 0;
    int recv_err = -1, accept_err = -1;
    pthread_t t[6];
    pthread_create(&t[0], NULL, pipe_writer, &wrote);
    pthread_create(&t[1], NULL, stream_sender, &sent);
    pthread_create(&t[2], NULL, waitall_receiver, &got);
    pthread_create(&t[3], NULL, timed_receiver, &recv_err);
    pthread_create(&t[4], NULL, timed_acceptor, &accept_err);
    nap(200); /* all five blocked */
    printf("step 19\n");
    pthread_create(&t[5], NULL, peer, NULL);
    nap(1500);
    long piped = drain(pipe_fds[0]);
    long streamed = drain(stream[0]);
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    unlink(path);
    printf("pipe write returned %zd, reader got %ld\n", wrote, piped);
    printf("stream send returned %zd, reader got %ld\n", sent, streamed);
    printf("recv MSG_WAITALL returned %zd\n", got);
    printf("recv with a timeout: %s\n", recv_err ? strerror(recv_err) : "data");
    printf("accept with a timeout: %s\n", accept_err ? strerror(accept_err) : "connection");
    return 0;
}
