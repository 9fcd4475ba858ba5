/* A preloadable library of the kind users stack with ckpt (path
 * remapping, fault injection): its open/open64/openat redirect
 * "virtual.txt" to "real.txt", and its dup/dup2/dup3 count the calls in
 * the file named by $REDIRECT_LOG (one line per call). Preloaded after
 * ckpt's shim, it must still see every call. Built with -shared -fPIC. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *map(const char *p) {
    return p && strcmp(p, "virtual.txt") == 0 ? "real.txt" : p;
}

static void note(const char *what) {
    const char *log = getenv("REDIRECT_LOG");
    if (!log) return;
    int (*real_open)(const char *, int, ...) = dlsym(RTLD_NEXT, "open");
    int fd = real_open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    write(fd, what, strlen(what));
    close(fd);
}

#define OPEN_LIKE(name)                                                  \
    int name(const char *p, int flags, ...) {                            \
        va_list ap;                                                      \
        va_start(ap, flags);                                             \
        unsigned mode = va_arg(ap, unsigned);                            \
        va_end(ap);                                                      \
        int (*real)(const char *, int, ...) = dlsym(RTLD_NEXT, #name);   \
        return real(map(p), flags, mode);                                \
    }
OPEN_LIKE(open)
OPEN_LIKE(open64)

int openat(int dir, const char *p, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    unsigned mode = va_arg(ap, unsigned);
    va_end(ap);
    int (*real)(int, const char *, int, ...) = dlsym(RTLD_NEXT, "openat");
    return real(dir, map(p), flags, mode);
}

int dup(int fd) {
    note("dup\n");
    return ((int (*)(int))dlsym(RTLD_NEXT, "dup"))(fd);
}

int dup2(int a, int b) {
    note("dup2\n");
    return ((int (*)(int, int))dlsym(RTLD_NEXT, "dup2"))(a, b);
}

int dup3(int a, int b, int f) {
    note("dup3\n");
    return ((int (*)(int, int, int))dlsym(RTLD_NEXT, "dup3"))(a, b, f);
}
