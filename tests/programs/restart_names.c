/* restart_names: file names that are not UTF-8 (Latin-1 bytes, as an
 * older system writes them). The program works in a directory so named
 * (its cwd), keeps a file so named open at an offset and mapped shared,
 * and a memfd so named; and maps shared two more files, one with a
 * newline in its name (which /proc writes as the four characters \012)
 * and one named with those four characters; the restart must find the
 * very same names (read
 * lossily they would lead to other files, made anew). At the end it
 * prints each name's bytes (escaped), the file through the descriptor
 * and the mapping, and the offsets. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void show(const char *what, const char *s, ssize_t n) {
    printf("%s: ", what);
    for (ssize_t i = 0; i < n; i++)
        if (isprint((unsigned char)s[i]))
            putchar(s[i]);
        else
            printf("\\x%02x", (unsigned char)s[i]);
    putchar('\n');
}

/* The last component of what descriptor `fd` leads to. */
static void show_fd(const char *what, int fd) {
    char p[64], buf[4096];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, buf, sizeof buf);
    if (n < 0)
        n = 0;
    buf[n] = 0;
    char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    show(what, base, strlen(base));
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *dir = "r\xe9pertoire", *name = "caf\xe9\xff.txt";
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST) || chdir(dir) != 0)
        return 1;
    int f = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int mf = memfd_create("m\xe9moire", 0);
    if (f < 0 || mf < 0 || ftruncate(f, 4096) != 0)
        return 1;
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    if (m == MAP_FAILED)
        return 1;
    const char *odd[2] = {"new\nline.dat", "back\\012slash.dat"};
    char *om[2];
    for (int k = 0; k < 2; k++) {
        int o = open(odd[k], O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || ftruncate(o, 4096) != 0)
            return 1;
        om[k] = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
        close(o);
        if (om[k] == MAP_FAILED)
            return 1;
    }
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        m[i] = 'a' + i % 26;
        om[0][i] = 'A' + i % 26;
        om[1][i] = '0' + i % 10;
        if (write(mf, "x", 1) != 1 || lseek(f, i + 1, SEEK_SET) != i + 1)
            return 1;
        if (i % 10 == 9)
            printf("step %d\n", i);
        usleep(50000);
    }
    char cwd[4096], buf[64];
    if (!getcwd(cwd, sizeof cwd))
        return 1;
    char *base = strrchr(cwd, '/');
    show("cwd", base + 1, strlen(base + 1));
    show_fd("file", f);
    show_fd("memfd", mf);
    printf("file offset %ld, memfd offset %ld\n", (long)lseek(f, 0, SEEK_CUR),
           (long)lseek(mf, 0, SEEK_CUR));
    if (pread(f, buf, 40, 0) != 40)
        return 1;
    show("file holds", buf, 40);
    m[40] = '!';
    if (pread(f, buf, 41, 0) != 41)
        return 1;
    show("the mapping writes the file", buf, 41);
    struct stat st;
    printf("the name still leads to it: %d\n", stat(name, &st) == 0 && st.st_size == 4096);
    for (int k = 0; k < 2; k++) {
        om[k][40] = '!';
        int o = open(odd[k], O_RDONLY);
        if (o < 0 || pread(o, buf, 41, 0) != 41)
            return 1;
        close(o);
        show(k ? "the file named with \\012 holds" : "the file named with a newline holds", buf, 41);
    }
    return 0;
}
