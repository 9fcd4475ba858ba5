/* System V semaphore undo values (SEM_UNDO) across a restart. The child
 * takes a lock (semaphore 0: 1 -> 0) and adds 3 to a counter (semaphore
 * 1: 1 -> 4), both with SEM_UNDO, then works and exits without giving
 * either back: the kernel undoes both at its exit. The parent, once the
 * child is gone, finds the lock free (1) and the counter back at 1. The
 * test checkpoints while the child holds the lock. */
#include <stdio.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int id = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
    unsigned short one[2] = {1, 1};
    if (id < 0 || semctl(id, 0, SETALL, one) < 0) {
        perror("sem");
        return 1;
    }
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        struct sembuf take[2] = {{0, -1, SEM_UNDO}, {1, 3, SEM_UNDO}};
        if (semop(id, take, 2) < 0) perror("child semop");
        write(p[1], "t", 1);
        for (int i = 0; i < 15; i++) usleep(40000);
        _exit(0);
    }
    char t;
    read(p[0], &t, 1);
    printf("child holds: lock %d counter %d\n", semctl(id, 0, GETVAL), semctl(id, 1, GETVAL));
    for (int i = 0; i < 20; i++) {
        usleep(40000);
        printf("tick %d\n", i);
        fflush(stdout);
    }
    int st;
    waitpid(c, &st, 0);
    printf("child gone: lock %d counter %d\n", semctl(id, 0, GETVAL), semctl(id, 1, GETVAL));
    semctl(id, 0, IPC_RMID);
    return 0;
}
