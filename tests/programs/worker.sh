#!/bin/bash
# A bash program for `ckpt run`: works, waits to be checkpointed, works on.
#
#   bash worker.sh CONTROL_DIR
#
# Writes marker CONTROL_DIR/ready (pid=...), loops (forking `sleep`, so
# checkpoints land in fork/exec/wait too) until CONTROL_DIR/go exists (60 s
# at most, then exit 97), then prints results that do not depend on timing.
set -u
ctl=$1

declare -A sq
for i in $(seq 1 200); do sq[$i]=$((i * i)); done
sum=0
for k in "${!sq[@]}"; do sum=$((sum + sq[$k])); done
echo "sum $sum"
printf '%s\n' pear apple fig | sort | tr '\n' ' '
echo

exec 7>"$ctl/bash_fd7.txt"
echo "line one" >&7
cd "$ctl" || exit 3
umask 022
mkfifo bash_fifo
exec 8<>bash_fifo

echo "pid=$$" >"$ctl/ready.tmp"
mv "$ctl/ready.tmp" "$ctl/ready"

n=0
while [ ! -e "$ctl/go" ]; do
    n=$((n + 1))
    if ((n % 2)); then
        sleep 0.02
    else
        read -r -t 0.02 -u 8 _ || true
    fi
    if ((SECONDS > 60)); then
        echo "timed out waiting for go" >&2
        exit 97
    fi
done

echo "line two" >&7
exec 7>&-
cat "$ctl/bash_fd7.txt"
[ "$PWD" = "$ctl" ] && here=yes || here=no
echo "cwd is the control dir: $here, umask $(umask)"
echo "after $((sum % 9973)) $(echo "$sum" | md5sum | cut -c1-8)"
echo done
