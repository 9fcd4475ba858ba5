/* Urgent (out-of-band) bytes waiting to be read: on a TCP connection of
 * the program's own (fd 5: "abc", "!" urgent, "def") and on a unix stream
 * pair (fd 7: "xy", "Z" urgent, "w"). A restart has neither the byte nor
 * its mark; the checkpoint must say so (before: silence, and the restart
 * lost "def" or merged "Z" into the stream). Prints "step N". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int l = socket(AF_INET, SOCK_STREAM, 0); /* 3 */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
        getsockname(l, (struct sockaddr *)&a, &al))
        return 1;
    int c = socket(AF_INET, SOCK_STREAM, 0); /* 4 */
    if (connect(c, (struct sockaddr *)&a, sizeof a))
        return 1;
    int s = accept(l, NULL, NULL); /* 5 */
    int u[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, u)) /* 6, 7 */
        return 1;
    if (send(c, "abc", 3, 0) != 3 || send(c, "!", 1, MSG_OOB) != 1 || send(c, "def", 3, 0) != 3)
        return 1;
    /* (Unix sockets have out-of-band data since Linux 5.15.) */
    if (send(u[0], "xy", 2, 0) != 2 || send(u[0], "Z", 1, MSG_OOB) != 1 || send(u[0], "w", 1, 0) != 1)
        printf("no unix out-of-band data\n");
    for (int step = 0; step < 400; step++) {
        printf("step %d\n", step);
        struct timespec t = {0, 25000000};
        while (nanosleep(&t, &t) != 0) {
        }
    }
    return 0;
}
