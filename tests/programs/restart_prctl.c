/* prctl attributes across a restart: not dumpable, no_new_privs, child
 * subreaper, THP disabled, keep capabilities; and the personality (ADDR_NO_RANDOMIZE) and
 * the I/O priority (idle class). Prints "step N" every 10 steps (idling a
 * second after step 19, when the test checkpoints), then the values. */
#include <stdio.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int ok = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
             prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 &&
             prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0;
    ok = ok && personality(PER_LINUX | ADDR_NO_RANDOMIZE) != -1;
    ok = ok && syscall(SYS_ioprio_set, 1, 0, 3 << 13) == 0; /* IOPRIO_CLASS_IDLE */
    printf("set: %d\n", ok);
    for (int i = 0; i < 40; i++) {
        if (i % 10 == 9) printf("step %d\n", i);
        usleep(i == 19 ? 1000000 : 20000);
    }
    int reaper = -1;
    prctl(PR_GET_CHILD_SUBREAPER, &reaper, 0, 0, 0);
    printf("dumpable %d, no_new_privs %d, subreaper %d, thp_disable %d\n",
           prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), reaper,
           prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
    printf("keepcaps %d\n", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
    printf("personality %#x, ioprio %#lx\n", personality(0xffffffff), syscall(SYS_ioprio_get, 1, 0));
    return 0;
}
