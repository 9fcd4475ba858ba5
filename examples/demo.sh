#!/usr/bin/env bash
# The main job: a real C program (threads, a log file, stdout to a file)
# runs under ckpt, is checkpointed while it works, killed with SIGKILL,
# restarted from the image, and its output is compared byte for byte
# with an uninterrupted run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ckpt="$here/target/release/ckpt"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/counter.c" <<'C'
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long sum;
static void *worker(void *arg) {
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&mu);
        sum = sum * 31 + (unsigned long)arg + i;
        pthread_mutex_unlock(&mu);
        usleep(10000);
    }
    return NULL;
}
int main(void) {
    int log = open("counter.log", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 1; i <= 30; i++) {
        dprintf(log, "tick %d\n", i);
        printf("tick %d\n", i);
        fflush(stdout);
        usleep(100000);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("threads agree: %s\n", sum ? "yes" : "no");
    return 0;
}
C
cc -O1 -pthread -o "$work/counter" "$work/counter.c"
cd "$work"
./counter > expected.out
rm counter.log
"$ckpt" run --dir "$work" -- ./counter > counter.out &
pid=$!
sleep 1
img=$("$ckpt" checkpoint -v "$pid")
echo "checkpointed $pid into $img"
"$ckpt" inspect "$img" | sed -n '1,12p;/^Threads/,/^$/p;/^Descriptors/,/^$/p;/^Memory/,/^$/p'
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
echo "killed $pid with SIGKILL after: $(tail -1 counter.out)"
"$ckpt" restart "$img"
echo "restarted program finished: $(tail -1 counter.out)"
cmp counter.out <(grep tick expected.out; tail -1 expected.out)
cmp counter.log <(grep tick expected.out)
echo "output and log are byte-identical to an uninterrupted run"
