/* A System V segment (removed at once, as programs often do, so it lives
 * only while attached) shared by a parent and its child: each adds to a
 * counter in it 15 times (the child 1, the parent 100), the parent
 * printing a line each time; the total must be 1515 and the segment
 * still the one the id names. */
#include <stdio.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    volatile int *p = shmat(id, NULL, 0);
    if (id < 0 || p == (void *)-1) {
        perror("shm");
        return 1;
    }
    shmctl(id, IPC_RMID, NULL);
    p[0] = 0;
    pid_t c = fork();
    if (c == 0) {
        for (int i = 0; i < 15; i++) {
            usleep(40000);
            __sync_add_and_fetch(p, 1);
        }
        _exit(0);
    }
    for (int i = 0; i < 15; i++) {
        usleep(40000);
        __sync_add_and_fetch(p, 100);
        printf("tick %d\n", i);
        fflush(stdout);
    }
    int st;
    waitpid(c, &st, 0);
    struct shmid_ds ds;
    int r = shmctl(id, IPC_STAT, &ds);
    printf("total %d, segment stat %d, attached %d\n", p[0], r, (int)ds.shm_nattch);
    return 0;
}
