/* libsession: a tiny client library with a handle that holds a
 * connection to a server (a unix socket), the kind of state a
 * checkpoint cannot carry: the server is another program. After a
 * restart the handle must be reconnected; examples/session_plugin.rs
 * does it with `session_reconnect`, as a real library's reset call
 * (libpq's PQreset, a driver's reconnect) would.
 *
 *   cc -shared -fPIC -o libsession.so libsession.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct session {
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} session;

static int dial(const char *path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return -1;
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

session *session_open(const char *path) {
    int fd = dial(path);
    if (fd < 0)
        return NULL;
    session *s = calloc(1, sizeof *s);
    s->fd = fd;
    strcpy(s->path, path);
    return s;
}

/* Connect again (the old connection is dropped); 0 or -1. */
int session_reconnect(session *s) {
    int fd = dial(s->path);
    if (fd < 0)
        return -1;
    close(s->fd);
    s->fd = fd;
    return 0;
}

/* Send one request line, read one answer line into `out`; 0 or -1. */
int session_call(session *s, const char *req, char *out, size_t len) {
    char line[512];
    int n = snprintf(line, sizeof line, "%s\n", req);
    if (write(s->fd, line, n) != n)
        return -1;
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t r = read(s->fd, out + got, 1);
        if (r <= 0)
            return -1;
        if (out[got] == '\n')
            break;
        got++;
    }
    out[got] = 0;
    return 0;
}

int session_close(session *s) {
    int r = close(s->fd);
    free(s);
    return r;
}
