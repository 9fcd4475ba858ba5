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
    build_with_api("examples/c_api.c", dir)
}

/// Compile `src` (from the project's root) against include/ckpt.h (and
/// the test programs' headers) into `dir`.
fn build_with_api(src: &str, dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = dir.join(Path::new(src).file_stem().unwrap());
    let st = Command::new("cc")
        .args(["-O1", "-Wall", "-I"])
        .arg(root.join("include"))
        .arg("-I")
        .arg(root.join("tests/programs"))
        .arg("-o")
        .arg(&out)
        .arg(root.join(src))
        .status()
        .expect("cc");
    assert!(st.success(), "building {src} failed");
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

/// A program that chrooted and then checkpoints itself is refused, with
/// the reason, and goes on (the command's chroot check does not see this
/// path: the image would have opened its files from the root outside).
#[test]
fn a_chrooted_program_checkpointing_itself_is_refused() {
    if common::not_root("chroot") {
        return;
    }
    let area = Area::new("capi-chroot");
    let prog = build_with_api("tests/programs/api_chroot.c", area.path());
    let jail = area.sub("jail");
    let out = area.file("out");
    let mut kid = rs::start(
        rs::run_cmd(&prog, &[jail.as_os_str()], area.path(), &area.images),
        rs::Out::File(&out),
        &area.file("err"),
        "api_chroot under ckpt",
    );
    let st = kid
        .wait(std::time::Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let said = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(st.success(), "{said}");
    assert!(
        said.contains("returned -1:")
            && said.contains("changed its root directory (chroot)")
            && said.contains("goes on"),
        "{said}"
    );
}

/// The real interval timer, due a few milliseconds after the program
/// checkpoints itself, keeps its phase and its signal although the
/// restart outlasts that expiry (tests/programs/api_timer_due_in_restart.c).
/// Before, it was armed to fire at once and went on from there, out of
/// phase by however long the restart outlasted it.
#[test]
fn an_interval_timer_due_during_the_restart_keeps_its_phase() {
    let area = Area::new("capi-itimer");
    let prog = build_with_api("tests/programs/api_timer_due_in_restart.c", area.path());
    let want = reference_output(&area, &prog, &[] as &[&str]);
    rs::self_checkpointed_cycle(&area, &prog, &[] as &[&str], &want);
    let err = std::fs::read_to_string(area.file("err")).unwrap();
    assert!(err.starts_with("restarted\nphase error: "), "{err}");
}
