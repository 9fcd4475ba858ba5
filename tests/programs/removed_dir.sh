#!/bin/bash
# A directory the job made and filled before the checkpoint, removed with
# its file after it (as `git gc --prune` removes loose objects and their
# directories): the restart makes both again, since they are the job's
# files as they were at the checkpoint, and the run goes on as an
# uninterrupted one does (it reads the file at step 25, then removes it).
mkdir -p sub && echo "object data" > sub/obj
for i in $(seq 0 39); do
    echo "step $i"
    if [ "$i" = 25 ]; then
        cat sub/obj
        rm -r sub
        echo removed
    fi
    sleep 0.05
done
