#!/usr/bin/env bash
# The restart tests again in the modes the plain `cargo test` does not run
# them in (see CKPT_TEST_MODE in tests/common/restart.rs): images
# compressed with zstd and restarted eagerly, then compressed with lz4
# and restarted lazily. Plain images restarted lazily are the default run;
# every restart through `checkpoint_and_kill` is from an incremental
# image (a chain), so each mode covers whole and incremental images.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=(--test restart --test restart_fds --test restart_events --test restart_memory
       --test restart_written --test process_trees --test incremental)
for mode in eager,zstd lz4; do
    echo "== restart tests with CKPT_TEST_MODE=$mode"
    CKPT_TEST_MODE=$mode cargo test -p ckpt-cli "${tests[@]}"
done
