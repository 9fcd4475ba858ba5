/* restart_files CTL MODE: descriptor state set up before the checkpoint
 * holds after restart. Files live in CTL. MODE:
 *   dup     dup()/dup2()/F_DUPFD copies of one open file share its offset;
 *   append  an O_APPEND descriptor appends (also after another writer
 *           grew the file: the test appends "external" before `go`);
 *   mmap    a MAP_SHARED mapping of a file stays shared with it both ways;
 *   pipe    an in-process pipe holding unread data gives it back.
 * Marker `ready` then waits for `go`; prints results and a verdict. */
#include "ckpt_test.h"
#include <sys/mman.h>

static int ok = 1;

static void expect(int cond, const char *what) {
    printf("%s: %s\n", what, cond ? "ok" : "WRONG");
    if (!cond)
        ok = 0;
}

static void wr(int fd, const char *s) { CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s)); }

static void dump(const char *name) {
    char p[4096], buf[8192];
    ctl_path(p, sizeof p, name);
    int fd = open(p, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    CHECK(n >= 0);
    close(fd);
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == 0)
            buf[i] = '.';
    buf[n] = 0;
    printf("%s holds %zd bytes: [%s]\n", name, n, buf);
}

int main(int argc, char **argv) {
    ctl_init(argc, argv);
    const char *mode = argc > 2 ? argv[2] : "dup";
    char path[4096];
    if (strcmp(mode, "dup") == 0) {
        ctl_path(path, sizeof path, "dup.txt");
        int a = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        CHECK(a >= 0);
        wr(a, "0123456789");
        int b = dup(a);
        int c = fcntl(a, F_DUPFD, 40);
        CHECK(dup2(a, 50) == 50);
        int d = 50;
        CHECK(lseek(a, 4, SEEK_SET) == 4);
        marker("ready", "pid=%d\n", (int)getpid());
        wait_for("go", 30);
        expect(lseek(b, 0, SEEK_CUR) == 4, "dup offset is 4 after restart");
        wr(a, "A");
        expect(lseek(b, 0, SEEK_CUR) == 5, "write through fd a moves dup b");
        wr(b, "B");
        expect(lseek(c, 0, SEEK_CUR) == 6, "write through b moves F_DUPFD copy c");
        wr(c, "C");
        wr(d, "D");
        expect(lseek(a, 0, SEEK_CUR) == 8, "all four share one offset (8)");
        int e = open(path, O_RDONLY);
        expect(lseek(e, 0, SEEK_CUR) == 0, "a separate open has its own offset");
        close(e);
        expect(fcntl(c, F_GETFD) == 0 && fcntl(a, F_GETFL) & O_RDWR, "flags kept");
        dump("dup.txt");
    } else if (strcmp(mode, "append") == 0) {
        ctl_path(path, sizeof path, "append.txt");
        int a = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
        CHECK(a >= 0);
        wr(a, "one\n");
        int w = open(path, O_WRONLY);
        CHECK(w >= 0);
        marker("ready", "pid=%d\n", (int)getpid());
        wait_for("go", 30);
        expect((fcntl(a, F_GETFL) & O_APPEND) != 0, "O_APPEND kept");
        expect((fcntl(w, F_GETFL) & O_APPEND) == 0, "plain descriptor has no O_APPEND");
        wr(a, "two\n");
        CHECK(lseek(a, 0, SEEK_SET) == 0);
        wr(a, "three\n"); /* O_APPEND: still at the end */
        wr(w, "ONE");     /* plain writer at offset 0 overwrites "one" */
        dump("append.txt");
    } else if (strcmp(mode, "mmap") == 0) {
        ctl_path(path, sizeof path, "shared.bin");
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        CHECK(fd >= 0);
        CHECK(ftruncate(fd, 8192) == 0);
        char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        CHECK(m != MAP_FAILED);
        memcpy(m, "before-checkpoint", 17);
        marker("ready", "pid=%d\n", (int)getpid());
        wait_for("go", 30);
        char buf[64] = {0};
        expect(memcmp(m, "before-checkpoint", 17) == 0, "mapping holds what was written before");
        memcpy(m + 4096, "after-restart", 13);
        CHECK(pread(fd, buf, 13, 4096) == 13);
        expect(memcmp(buf, "after-restart", 13) == 0, "write through the mapping seen by read()");
        CHECK(pwrite(fd, "by-write", 8, 100) == 8);
        expect(memcmp(m + 100, "by-write", 8) == 0, "write() seen through the mapping");
        CHECK(munmap(m, 8192) == 0);
        close(fd);
        int fd2 = open(path, O_RDONLY);
        CHECK(fd2 >= 0);
        memset(buf, 0, sizeof buf);
        CHECK(pread(fd2, buf, 17, 0) == 17);
        expect(memcmp(buf, "before-checkpoint", 17) == 0, "file holds the pre-checkpoint write");
        close(fd2);
    } else if (strcmp(mode, "pipe") == 0) {
        int p[2];
        CHECK(pipe(p) == 0);
        char chunk[100];
        for (int i = 0; i < 30; i++) {
            snprintf(chunk, sizeof chunk, "unread line %02d of the pipe\n", i);
            wr(p[1], chunk);
        }
        marker("ready", "pid=%d\n", (int)getpid());
        wait_for("go", 30);
        CHECK(fcntl(p[0], F_SETFL, O_NONBLOCK) == 0);
        char buf[8192];
        ssize_t n = read(p[0], buf, sizeof buf);
        printf("read %zd bytes from the pipe after restart\n", n);
        if (n > 0)
            fwrite(buf, 1, (size_t)n, stdout);
        expect(n == 30 * 27, "all unread bytes came back");
        wr(p[1], "written after restart\n");
        n = read(p[0], buf, sizeof buf);
        expect(n == 22 && memcmp(buf, "written after restart\n", 22) == 0,
               "the pipe still works both ways");
        n = read(p[0], buf, sizeof buf);
        expect(n < 0 && errno == EAGAIN, "nothing more in the pipe");
    }
    printf("verdict: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
