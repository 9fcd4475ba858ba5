/* Gets a System V semaphore set (values 3 and 5), a message queue
 * holding two messages and a shared memory segment holding a greeting, works a while ("step N", one every 30 ms; the
 * test checkpoints it mid-way), then reads them back through the same ids
 * and prints what it finds (no ids on stdout: they go to the file named
 * by argv[1], so the test can remove objects a killed run left), removes
 * both and exits. After a restart they must be the same objects: same
 * ids, same values, the same messages in order, same mode. */
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>
#include "checkpoint_window.h"

struct msg {
    long type;
    char text[64];
};

int main(int argc, char **argv) {
    int sem = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
    int msg = msgget(IPC_PRIVATE, IPC_CREAT | 0640);
    if (sem < 0 || msg < 0) {
        perror("semget/msgget");
        return 1;
    }
    int shm = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    char *p = shmat(shm, NULL, 0);
    if (shm < 0 || p == (void *)-1) {
        perror("shmget/shmat");
        return 1;
    }
    strcpy(p + 5000, "hello from the segment");
    FILE *ids = fopen(argv[1], "a");
    fprintf(ids, "%d %d %d\n", sem, msg, shm);
    fclose(ids);
    unsigned short init[2] = {3, 5};
    semctl(sem, 0, SETALL, init);
    struct msg m1 = {7, "first message"}, m2 = {9, "second"};
    msgsnd(msg, &m1, strlen(m1.text) + 1, 0);
    msgsnd(msg, &m2, strlen(m2.text) + 1, 0);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        printf("step %d\n", i);
        fflush(stdout);
        usleep(30000);
    }
    unsigned short v[2] = {0, 0};
    int r = semctl(sem, 0, GETALL, v);
    printf("semaphores: %d %u %u\n", r, v[0], v[1]);
    struct sembuf op = {0, -3, IPC_NOWAIT};
    printf("take 3 of the first: %d\n", semop(sem, &op, 1));
    for (int i = 0; i < 3; i++) {
        struct msg m = {0, ""};
        ssize_t n = msgrcv(msg, &m, sizeof m.text, 0, IPC_NOWAIT);
        printf("message: %zd %ld %s\n", n, m.type, n > 0 ? m.text : "-");
    }
    struct msqid_ds ds;
    msgctl(msg, IPC_STAT, &ds);
    printf("queue mode %o\n", ds.msg_perm.mode & 0777);
    /* The mapping is the segment itself: a second attach sees a store
     * through the first, and the segment knows its size and users. */
    printf("segment: %s\n", p + 5000);
    char *q = shmat(shm, NULL, 0);
    strcpy(p + 100, "written through the first view");
    printf("second view: %s\n", q == (void *)-1 ? "(cannot attach)" : q + 100);
    struct shmid_ds sd;
    int st = shmctl(shm, IPC_STAT, &sd);
    printf("segment stat: %d size %zu attached %d\n", st, (size_t)sd.shm_segsz, (int)sd.shm_nattch);
    semctl(sem, 0, IPC_RMID);
    msgctl(msg, IPC_RMID, NULL);
    shmctl(shm, IPC_RMID, NULL);
    return 0;
}
