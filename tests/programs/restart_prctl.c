/* prctl attributes across a restart: not dumpable, no_new_privs, child
 * subreaper, THP disabled. Prints "step N" every 10 steps (idling a second
 * after step 19, when the test checkpoints), then the four values. */
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int ok = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
             prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0;
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
    return 0;
}
