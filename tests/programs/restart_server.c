/* A TCP server on 127.0.0.1 (port chosen by the kernel, written to
 * CTL/port): for each connection it reads one line and answers
 * "reply N to LINE" (N counts connections), then closes. It ends after
 * the line "quit". A restart must bring the listening socket back at the
 * same port, with the count where it was. */
#include "ckpt_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(ls >= 0);
    /* As servers do: its closed connections linger in TIME_WAIT on the
     * port, and a new listener there needs this. */
    int one = 1;
    CHECK(setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(ls, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(ls, 16) == 0);
    socklen_t len = sizeof a;
    CHECK(getsockname(ls, (struct sockaddr *)&a, &len) == 0);
    marker("port", "port=%d\n", ntohs(a.sin_port));
    for (int n = 1;; n++) {
        int c = accept(ls, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR)
                continue;
            printf("accept failed: %s\n", strerror(errno));
            return 1;
        }
        char line[256];
        ssize_t got = 0;
        while (got < (ssize_t)sizeof line - 1) {
            ssize_t r = read(c, line + got, 1);
            if (r <= 0 || line[got] == '\n')
                break;
            got += r;
        }
        line[got] = 0;
        char out[320];
        int k = snprintf(out, sizeof out, "reply %d to %s\n", n, line);
        if (write(c, out, k) != k)
            printf("short reply\n");
        close(c);
        printf("served %d: %s\n", n, line);
        fflush(stdout);
        if (strcmp(line, "quit") == 0)
            return 0;
    }
}
