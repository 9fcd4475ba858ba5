//! The programmatic API on a real process: the example
//! `examples/self_checkpoint.rs` calls `ckpt::checkpoint()` halfway; under
//! `ckpt run` the call writes an image, the program is killed, and after
//! `ckpt restart` the same call returns again, as `Restarted`, and the
//! program finishes with the output of an uninterrupted run.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{reference_output, Area};
use std::path::PathBuf;
use std::process::Command;

/// The example binary, built with the same profile as `ckpt`.
fn example() -> PathBuf {
    let dir = common::ckpt_bin().parent().unwrap().to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", "self_checkpoint"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    assert!(
        cmd.status().expect("cargo runs").success(),
        "building the example failed"
    );
    dir.join("examples").join("self_checkpoint")
}

#[test]
fn checkpoint_call_returns_restarted_after_restart() {
    let area = Area::new("api");
    let prog = example();
    let args = ["40"];
    let want = reference_output(&area, &prog, &args);
    let plain_err = std::fs::read_to_string(area.file("want.err")).unwrap();
    assert!(
        plain_err.contains("no checkpoint: not running under ckpt"),
        "{plain_err}"
    );

    let said = rs::self_checkpointed_cycle(&area, &prog, &args, &want);
    let err = area.file("err");
    // The program's stderr (a file opened for appending) goes back to what
    // it was at the checkpoint: the killed process's "checkpoint written"
    // line came after it and is cut away (and the cut named); the restarted
    // process's return of the call follows.
    assert!(
        said.contains("cut back from"),
        "the cut is not named: {said}"
    );
    let after = std::fs::read_to_string(&err).unwrap();
    assert_eq!(
        after, "restarted from the checkpoint\n",
        "stderr: {after:?}"
    );
}
