//! The C API (include/ckpt.h): examples/c_api.c calls ckpt_checkpoint()
//! halfway. Without ckpt the weak symbol is null and it says so; under
//! `ckpt run` the call writes an image, and after SIGKILL and `ckpt
//! restart` the same call returns CKPT_RESTARTED and the program's output
//! is an uninterrupted run's.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{reference_output, Area};
use std::path::{Path, PathBuf};
use std::process::Command;

fn build(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = dir.join("c_api");
    let st = Command::new("cc")
        .args(["-O1", "-Wall", "-I"])
        .arg(root.join("include"))
        .arg("-o")
        .arg(&out)
        .arg(root.join("examples/c_api.c"))
        .status()
        .expect("cc");
    assert!(st.success(), "building examples/c_api.c failed");
    out
}

#[test]
fn c_program_checkpoints_itself_and_is_told_it_was_restarted() {
    let bin = common::TempDir::new("capi-bin");
    let prog = build(bin.path());
    let area = Area::new("capi");
    let want = reference_output(&area, &prog, &["40"]);
    let plain = std::fs::read_to_string(area.file("want.err")).unwrap();
    assert_eq!(plain, "no checkpoint: not running under ckpt\n");

    rs::self_checkpointed_cycle(&area, &prog, &["40"], &want);
    let err = area.file("err");
    assert_eq!(
        std::fs::read_to_string(&err).unwrap(),
        "on_restore hook: restored 1 time(s)\nrestarted from the checkpoint\n",
        "the on-restore hook, then what the call returned, after the restart"
    );
}
