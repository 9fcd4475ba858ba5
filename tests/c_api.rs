//! The C API (include/ckpt.h): examples/c_api.c calls ckpt_checkpoint()
//! halfway. Without ckpt the weak symbol is null and it says so; under
//! `ckpt run` the call writes an image, and after SIGKILL and `ckpt
//! restart` the same call returns CKPT_RESTARTED and the program's output
//! is an uninterrupted run's.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{
    reference_output, restart_and_compare, restart_cmd, run_cmd, start, wait_file, Area, Out,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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

    let out = area.file("out");
    let err = area.file("err");
    let mut kid = start(
        run_cmd(&prog, &["40"], area.path(), &area.images),
        Out::File(&out),
        &err,
        "under ckpt",
    );
    wait_file(
        &mut kid,
        &err,
        |d| String::from_utf8_lossy(d).contains("checkpoint written: "),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    let text = std::fs::read_to_string(&err).unwrap();
    let image = PathBuf::from(text.trim().trim_start_matches("checkpoint written: "));
    assert!(image.is_file(), "the reported image is missing: {text}");
    restart_and_compare(restart_cmd(&image, &[], area.path()), &out, &want, &area);
    assert_eq!(
        std::fs::read_to_string(&err).unwrap(),
        "restarted from the checkpoint\n",
        "what the call returned after the restart"
    );
}
