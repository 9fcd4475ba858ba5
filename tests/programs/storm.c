/* A descriptor storm to checkpoint under.
 *
 *   storm CONTROL_DIR
 *
 * 8 threads open/openat/dup/fcntl(F_DUPFD_CLOEXEC)/close as fast as they
 * can, each keeping up to 4 descriptors open at any time, on files
 * CONTROL_DIR/storm/tN_sM and /dev/null. Marker "ready" (pid, and the
 * descriptors it started with: initial=a,b,c) once they run.
 * When control file "stop" appears the threads stop (keeping their last
 * descriptors open) and marker "stopped" lists the operations done and the
 * descriptors held (fds=a,b,c). Then it waits for control file "go" and
 * exits 0 printing "storm ok".
 */
#include "ckpt_test.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>

#define NTHREADS 8
#define SLOTS 4

static atomic_int stop_flag;
static atomic_long total_ops;
static atomic_long failures;
static int final_fds[NTHREADS][SLOTS];

static void *storm(void *arg) {
    int id = (int)(long)arg;
    int fds[SLOTS] = {-1, -1, -1, -1};
    unsigned r = 2654435761u * (unsigned)(id + 1);
    char path[4096];
    long ops = 0;
    while (!atomic_load_explicit(&stop_flag, memory_order_relaxed)) {
        r = r * 1103515245u + 12345u;
        int slot = (int)((r >> 16) % SLOTS);
        if (fds[slot] >= 0) {
            if (close(fds[slot]) != 0)
                atomic_fetch_add(&failures, 1);
            fds[slot] = -1;
        }
        int other = (slot + 1 + (int)((r >> 8) % (SLOTS - 1))) % SLOTS;
        switch ((r >> 4) % 5) {
        case 0:
            snprintf(path, sizeof path, "%s/storm/t%d_s%d", g_ctl, id, slot);
            fds[slot] = open(path, O_RDWR | O_CREAT, 0644);
            break;
        case 1:
            fds[slot] = openat(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
            break;
        case 2:
            fds[slot] = fds[other] >= 0 ? dup(fds[other]) : open("/dev/null", O_WRONLY);
            break;
        case 3:
            fds[slot] = fds[other] >= 0 ? fcntl(fds[other], F_DUPFD_CLOEXEC, 0) : open("/dev/null", O_RDWR);
            break;
        default:
            snprintf(path, sizeof path, "%s/storm/t%d_s%d", g_ctl, id, slot);
            fds[slot] = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
            if (fds[slot] >= 0 && write(fds[slot], "x", 1) != 1)
                atomic_fetch_add(&failures, 1);
            break;
        }
        if (fds[slot] < 0)
            atomic_fetch_add(&failures, 1);
        if (++ops % 64 == 0)
            atomic_fetch_add(&total_ops, 64);
    }
    atomic_fetch_add(&total_ops, ops % 64);
    memcpy(final_fds[id], fds, sizeof fds);
    return NULL;
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    char dir[4096];
    ctl_path(dir, sizeof dir, "storm");
    CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST);

    /* The descriptors it starts with (inherited, and ckpt's own). */
    char initial[8192];
    size_t ilen = 0;
    initial[0] = 0;
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
            continue;
        ilen += (size_t)snprintf(initial + ilen, sizeof initial - ilen, "%s%s", ilen ? "," : "", de->d_name);
    }
    closedir(d);

    pthread_t th[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&th[i], NULL, storm, (void *)i) == 0);
    marker("ready", "pid=%d\ninitial=%s\n", (int)getpid(), initial);

    wait_for("stop", 300);
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_join(th[i], NULL) == 0);

    char list[8192];
    size_t len = 0;
    list[0] = 0;
    for (int i = 0; i < NTHREADS; i++)
        for (int s = 0; s < SLOTS; s++)
            if (final_fds[i][s] >= 0)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", len ? "," : "", final_fds[i][s]);
    marker("stopped", "pid=%d\nops=%ld\nfailures=%ld\nfds=%s\n", (int)getpid(), atomic_load(&total_ops),
           atomic_load(&failures), list);

    wait_for("go", 120);
    printf("storm ok\n");
    return 0;
}
