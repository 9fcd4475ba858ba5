# lock_rename.sh: a state file updated the way git updates its index and
# refs: written to state.lock (made exclusively: an existing lock means
# another writer, and the step fails), then renamed over state. Every
# 10th step the state is packed (appended to packed, state removed), so
# the next rename replaces nothing; every 7th step files a and b swap
# names through a third; after step 29 it waits for a test's go (see
# below), and at step 30 the lock is held two seconds. Prints each step, then what each file
# holds.
set -o noclobber
echo left > a
echo right > b
for i in $(seq 1 83); do
    echo "state $i" > state.lock || { echo "step $i: state.lock is there"; exit 1; }
    # A while with the lock held (a test kills the job here).
    if [ $i = 30 ]; then echo "step 30: locked"; sleep 2; fi
    mv -f state.lock state
    if [ $((i % 10)) = 0 ]; then cat state >> packed; rm state; fi
    if [ $((i % 7)) = 0 ]; then mv a t; mv b a; mv t b; fi
    echo "step $i"
    # A test checkpoints here, before the lock of step 30, then makes
    # the file CKPT_TEST_GO names (30 s at most).
    if [ $i = 29 ] && [ -n "$CKPT_TEST_GO" ]; then
        n=0
        while [ ! -e "$CKPT_TEST_GO" ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n + 1)); done
    fi
    sleep 0.02
done
for f in state.lock t; do [ -e $f ] && echo "$f is there"; done
echo "state: $(cat state) a: $(cat a) b: $(cat b)"
