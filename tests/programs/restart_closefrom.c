/* glibc's closefrom(), as OpenSSH, sudo and daemons call it at start:
 * descriptors from 4 up are closed (ckpt's own are not the program's),
 * 3 stays. Before, closefrom closed ckpt's control socket too, and every
 * checkpoint said the program was not run under ckpt. Prints "step N",
 * then which descriptors are open. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int a = open("/dev/null", O_RDONLY), b = open("/dev/zero", O_RDONLY);
    printf("opened %d %d\n", a, b);
    closefrom(4);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        struct timespec t = {0, 25000000};
        while (nanosleep(&t, &t) != 0) {
        }
    }
    printf("3 open %d, 4 open %d\n", fcntl(3, F_GETFD) >= 0, fcntl(4, F_GETFD) >= 0);
    return 0;
}
