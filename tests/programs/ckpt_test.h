/* Helpers shared by the C test programs.
 *
 * Every program takes a control directory as argv[1]. It tells the test
 * where it is by writing marker files there (atomically: write NAME.tmp,
 * rename to NAME) holding key=value lines, and waits for the test by polling
 * for files the test creates. Every wait is bounded, so a program never
 * outlives a test that died: it exits with status 97 instead.
 *
 * What goes to stdout must be deterministic (no pids, addresses, times):
 * the tests compare it byte for byte with a run without ckpt. Addresses,
 * pids and timings go to marker files or stderr.
 */
#ifndef CKPT_TEST_H
#define CKPT_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <stdint.h>

#include "checkpoint_window.h"

static const char *g_ctl __attribute__((unused)) = ".";

/* A pseudo-random sequence (xorshift64), the same in every run. */
static uint64_t g_rand = 88172645463325252ull;
static __attribute__((unused)) uint64_t next_rand(void) {
    g_rand ^= g_rand << 13;
    g_rand ^= g_rand >> 7;
    g_rand ^= g_rand << 17;
    return g_rand;
}

/* FNV-1a of n bytes: what programs print to compare their memory. */
static __attribute__((unused)) uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static __attribute__((unused)) void ctl_init(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CONTROL_DIR ...\n", argv[0]);
        exit(2);
    }
    g_ctl = argv[1];
}

static __attribute__((unused)) void ctl_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", g_ctl, name);
}

static __attribute__((unused)) long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static __attribute__((unused)) pid_t gettid_(void) {
    return (pid_t)syscall(SYS_gettid);
}

/* Write marker NAME in the control dir with printf-formatted content. */
static __attribute__((unused)) void marker(const char *name, const char *fmt, ...) {
    char tmp[4096], dst[4096], body[16384];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= (int)sizeof body) {
        fprintf(stderr, "marker %s: content too long\n", name);
        exit(96);
    }
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", g_ctl, name);
    ctl_path(dst, sizeof dst, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("marker open");
        exit(96);
    }
    const char *p = body;
    while (len > 0) {
        ssize_t w = write(fd, p, (size_t)len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror("marker write");
            exit(96);
        }
        p += w;
        len -= (int)w;
    }
    close(fd);
    if (rename(tmp, dst) != 0) {
        perror("marker rename");
        exit(96);
    }
}

static __attribute__((unused)) int ctl_exists(const char *name) {
    char p[4096];
    ctl_path(p, sizeof p, name);
    return access(p, F_OK) == 0;
}

/* Sleep about `ms` milliseconds, whatever signals arrive. */
static __attribute__((unused)) void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Wait (polling) until the test creates control file NAME; exit 97 after
 * `timeout_s` seconds. */
static __attribute__((unused)) void wait_for(const char *name, int timeout_s) {
    long long deadline = now_ns() + (long long)timeout_s * 1000000000LL;
    while (!ctl_exists(name)) {
        if (now_ns() > deadline) {
            fprintf(stderr, "timed out waiting for %s/%s\n", g_ctl, name);
            exit(97);
        }
        nap_ms(10);
    }
}

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s (errno %d %s)\n", __FILE__, \
                    __LINE__, #cond, errno, strerror(errno));                    \
            exit(95);                                                            \
        }                                                                        \
    } while (0)

#endif
