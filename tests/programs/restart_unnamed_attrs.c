/* A memfd (sealable, mode 0642, owner 1:1, sealed against shrinking and
 * growing) and an unlinked file (mode 0604, owner 2:2), both with data;
 * after step 30 prints each one's mode, owner, seals and first bytes.
 * With them an O_TMPFILE (linkable) and an O_TMPFILE|O_EXCL (never
 * linkable): at step 30 each of the three unnamed files is offered a
 * name with linkat, which only the plain O_TMPFILE may take.
 * (Changing the owner needs root: unprivileged, the program says so the
 * same way in every run.) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void try_link(const char *what, int fd) {
    char proc[64], name[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    snprintf(name, sizeof name, "/tmp/ckpt-attrs-link-%d", getpid());
    int r = linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW);
    printf("%s link %s\n", what, r == 0 ? "made" : "refused");
    if (r == 0)
        unlink(name);
}

static void show(const char *what, int fd) {
    struct stat st;
    fstat(fd, &st);
    char buf[16] = {0};
    pread(fd, buf, 5, 0);
    printf("%s mode %o owner %u:%u seals %#x data %s\n", what, st.st_mode & 07777, st.st_uid,
           st.st_gid, fcntl(fd, F_GET_SEALS), buf);
}

int main(void) {
    int m = memfd_create("attrs", MFD_ALLOW_SEALING);
    write(m, "memfd", 5);
    fchmod(m, 0642);
    printf("memfd chown %s\n", fchown(m, 1, 1) == 0 ? "done" : "refused");
    fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    char path[] = "/tmp/ckpt-attrs-XXXXXX";
    int u = mkstemp(path);
    write(u, "unlnk", 5);
    unlink(path);
    fchmod(u, 0604);
    printf("file chown %s\n", fchown(u, 2, 2) == 0 ? "done" : "refused");
    int t = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    write(t, "tmpfl", 5);
    int x = open("/tmp", O_TMPFILE | O_WRONLY | O_EXCL, 0600);
    write(x, "excls", 5);
    fflush(stdout);
    for (int step = 0; step < 40; step++) {
        checkpoint_window(step);
        printf("step %d\n", step);
        if (step == 30) {
            show("memfd", m);
            show("unlinked", u);
            show("tmpfile", t);
            try_link("unlinked", u);
            try_link("tmpfile", t);
            try_link("tmpfile-excl", x);
        }
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
