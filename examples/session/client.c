/* A program using libsession: one session, one call per step; each
 * answer goes to stdout. Without the session plugin a restarted client
 * finds its connection gone ("session lost").
 *
 *   cc -o client client.c -L. -lsession -Wl,-rpath,'$ORIGIN' */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct session session;
session *session_open(const char *path);
int session_call(session *s, const char *req, char *out, size_t len);
int session_close(session *s);

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: client SOCKET STEPS\n");
        return 2;
    }
    session *s = session_open(argv[1]);
    if (!s) {
        perror("session_open");
        return 1;
    }
    int steps = atoi(argv[2]);
    for (int i = 0; i < steps; i++) {
        char req[64], answer[256];
        snprintf(req, sizeof req, "square %d", i);
        if (session_call(s, req, answer, sizeof answer) != 0) {
            fprintf(stderr, "session lost at step %d\n", i);
            return 1;
        }
        printf("step %d: %s\n", i, answer);
        fflush(stdout);
        usleep(20000);
    }
    session_close(s);
    return 0;
}
