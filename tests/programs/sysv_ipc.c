/* Gets a System V semaphore set and a message queue (private keys), says
 * ready, waits for "go", removes both and exits. The image cannot hold
 * such objects (they are the kernel's): the checkpoint must say so. */
#include "ckpt_test.h"
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    int sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    int msg = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (sem < 0 || msg < 0) {
        perror("semget/msgget");
        return 1;
    }
    marker("ready", "pid=%d\nsem=%d\nmsg=%d\n", getpid(), sem, msg);
    wait_for("go", 60);
    semctl(sem, 0, IPC_RMID);
    msgctl(msg, IPC_RMID, NULL);
    return 0;
}
