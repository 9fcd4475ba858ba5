/* prctl attributes across a restart: not dumpable, no_new_privs, child
 * subreaper, THP disabled, keep capabilities, memory-deny-write-execute;
 * the personality (ADDR_NO_RANDOMIZE), the I/O priority (idle class), the
 * OOM score adjustment and the core dump filter; a membarrier registration
 * (private expedited: its barrier fails with EPERM without it); KSM
 * merging of the whole process (PR_SET_MEMORY_MERGE, as root: reads the
 * same unset both times otherwise). Prints "step N" every 10 steps (idling a
 * second after step 19, when the test checkpoints), then the values. */
#include <stdio.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "checkpoint_window.h"

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    FILE *f = fopen("/proc/self/oom_score_adj", "w");
    int ok = f && fprintf(f, "500") > 0 && fclose(f) == 0;
    f = fopen("/proc/self/coredump_filter", "w");
    ok = ok && f && fprintf(f, "23") > 0 && fclose(f) == 0;
    /* PR_SET_MDWE, MDWE_REFUSE_EXEC_GAIN (kernels before 6.3 lack it:
     * then it reads -1 both times). */
    prctl(65, 1, 0, 0, 0);
    prctl(67, 1, 0, 0, 0); /* PR_SET_MEMORY_MERGE */
    ok = ok && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
             prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 &&
             prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0;
    ok = ok && personality(PER_LINUX | ADDR_NO_RANDOMIZE) != -1;
    ok = ok && syscall(SYS_ioprio_set, 1, 0, 3 << 13) == 0; /* IOPRIO_CLASS_IDLE */
    ok = ok && syscall(SYS_membarrier, 1 << 4, 0, 0) == 0; /* REGISTER_PRIVATE_EXPEDITED */
    printf("set: %d\n", ok);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        if (i % 10 == 9) printf("step %d\n", i);
        usleep(20000);
    }
    int reaper = -1;
    prctl(PR_GET_CHILD_SUBREAPER, &reaper, 0, 0, 0);
    printf("dumpable %d, no_new_privs %d, subreaper %d, thp_disable %d\n",
           prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), reaper,
           prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
    printf("keepcaps %d\n", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
    printf("personality %#x, ioprio %#lx\n", personality(0xffffffff), syscall(SYS_ioprio_get, 1, 0));
    printf("mdwe %d\n", prctl(66, 0, 0, 0, 0));
    printf("memory merge %d\n", prctl(68, 0, 0, 0, 0));
    printf("private expedited membarrier %ld\n", syscall(SYS_membarrier, 1 << 3, 0, 0));
    char buf[32] = "";
    f = fopen("/proc/self/oom_score_adj", "r");
    if (f && fgets(buf, sizeof buf, f))
        printf("oom_score_adj %s", buf);
    if (f)
        fclose(f);
    f = fopen("/proc/self/coredump_filter", "r");
    if (f && fgets(buf, sizeof buf, f))
        printf("coredump_filter %s", buf);
    if (f)
        fclose(f);
    return 0;
}
