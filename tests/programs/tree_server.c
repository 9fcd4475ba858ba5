/* A server and its client, both in one job: the server binds a unix
 * stream socket to a path (argv[1]) or, with argv[2] = "abstract", to an
 * abstract name, listens, forks the client (which keeps the listening
 * socket open too), and accepts it. The client sends 16 numbered lines,
 * one every 30 ms; the server reads them slowly (bytes stay queued) and
 * echoes each to stdout with its own count, then reaps the client. A
 * second client connects after the first ends: the listening socket must
 * still listen after a restart. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static struct sockaddr_un addr;
static socklen_t addr_len;

static void client(int lines) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&addr, addr_len) != 0) {
        perror("connect");
        _exit(2);
    }
    for (int i = 0; i < lines; i++) {
        char b[32];
        int n = snprintf(b, sizeof b, "line %02d\n", i);
        if (write(s, b, n) != n)
            _exit(3);
        usleep(30000);
    }
    _exit(0);
}

static void serve(int l, int lines) {
    pid_t c = fork();
    if (c == 0)
        client(lines);
    int s = accept(l, NULL, NULL);
    FILE *in = fdopen(s, "r");
    char buf[64];
    int got = 0;
    while (fgets(buf, sizeof buf, in)) {
        printf("server %d: %s", ++got, buf);
        fflush(stdout);
        usleep(50000);
    }
    fclose(in);
    int st;
    waitpid(c, &st, 0);
    printf("client ended with %d after %d lines\n", WEXITSTATUS(st), got);
    fflush(stdout);
}

int main(int argc, char **argv) {
    addr.sun_family = AF_UNIX;
    int abstract = argc > 2 && strcmp(argv[2], "abstract") == 0;
    size_t n = strlen(argv[1]);
    if (abstract) {
        memcpy(addr.sun_path + 1, argv[1], n);
        addr_len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
    } else {
        unlink(argv[1]);
        memcpy(addr.sun_path, argv[1], n + 1);
        addr_len = sizeof addr;
    }
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(l, (struct sockaddr *)&addr, addr_len) != 0 || listen(l, 4) != 0) {
        perror("bind/listen");
        return 1;
    }
    serve(l, 16);
    serve(l, 3);
    return 0;
}
