/* inotify across a restart: two instances; the first watches a directory
 * by a relative path and a file in it, with a gap in its watch numbers
 * (one watch added and removed first). Each step writes a new file and
 * appends to the log, then reads the events (IN_CLOSE_WRITE only, so a
 * step replayed after a restart gives the same events). After step 19 it
 * idles a second (the test checkpoints then). At the end it lists the
 * watch numbers the kernel has. Output must match an uninterrupted run. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include "checkpoint_window.h"

static void drain(int fd, const char *tag) {
    char buf[4096] __attribute__((aligned(8)));
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            printf("  %s wd=%d mask=%#x name=%s\n", tag, e->wd, e->mask, e->len ? e->name : "-");
            p += sizeof *e + e->len;
        }
    }
}

static void list_wds(int fd) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(path, "r");
    printf("fd %d watches:", fd);
    while (f && fgets(line, sizeof line, f)) {
        int wd;
        unsigned mask;
        if (sscanf(line, "inotify wd:%x %*s %*s mask:%x", &wd, &mask) == 2)
            printf(" wd %d mask %#x;", wd, mask);
    }
    printf("\n");
    if (f) fclose(f);
}

static void write_file(const char *path, const char *text, int append) {
    int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
    write(fd, text, strlen(text));
    close(fd);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    mkdir("watched", 0755);
    write_file("watched/log", "", 0);
    int a = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    int b = inotify_init();
    fcntl(b, F_SETFL, O_NONBLOCK);
    int gap = inotify_add_watch(a, ".", IN_CLOSE_WRITE);
    int dir = inotify_add_watch(a, "watched", IN_CLOSE_WRITE);
    inotify_rm_watch(a, gap);
    drain(a, "a"); /* the IN_IGNORED of the removed watch */
    int log = inotify_add_watch(a, "watched/log", IN_CLOSE_WRITE);
    int other = inotify_add_watch(b, "watched/log", IN_CLOSE_WRITE);
    printf("watches: dir %d log %d other %d\n", dir, log, other);
    for (int i = 0; i < 40; i++) {
        checkpoint_window(i);
        char name[64], line[64];
        snprintf(name, sizeof name, "watched/f%d", i);
        snprintf(line, sizeof line, "step %d\n", i);
        write_file(name, line, 0);
        write_file("watched/log", line, 1);
        printf("step %d\n", i);
        drain(a, "a");
        drain(b, "b");
        usleep(30000);
    }
    list_wds(a);
    list_wds(b);
    return 0;
}
