#!/usr/bin/env bash
# Show the main job: a real C program runs under ckpt, is checkpointed
# while it works, and the image is inspected. (Restart arrives with the
# next milestone; until then the demo stops at the image.)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ckpt="$here/target/release/ckpt"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/counter.c" <<'C'
#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>
int main(void) {
    int log = open("counter.log", O_CREAT | O_WRONLY | O_APPEND, 0644);
    for (int i = 1; i <= 30; i++) {
        dprintf(log, "tick %d\n", i);
        printf("tick %d\n", i);
        fflush(stdout);
        usleep(100000);
    }
    return 0;
}
C
cc -O1 -o "$work/counter" "$work/counter.c"
cd "$work"
"$ckpt" run --dir "$work" -- ./counter > counter.out &
pid=$!
sleep 1
img=$("$ckpt" checkpoint -v "$pid")
echo "checkpointed $pid into $img"
"$ckpt" inspect "$img" | sed -n '1,12p;/^Descriptors/,/^$/p;/^Threads/,/^$/p'
wait "$pid"
echo "program finished normally: $(tail -1 counter.out)"
