//! Files the program writes go back with it: after a checkpoint, more
//! work, SIGKILL and a restart, an O_APPEND log and a truncated-then-written
//! file are byte-identical to an uninterrupted run's (the killed run's
//! appends are cut away, and named); `--keep-files` leaves them (and the
//! log then holds those records twice); a file cut shorter than the
//! program's position is refused before anything starts.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{restart_cmd, run_cmd, start, start_until, Area, Out};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Run restart_written under ckpt in `area`, checkpoint it at step 20,
/// let it work 0.3 s more, kill it. Returns the image.
fn checkpointed_then_more_work(area: &Area, prog: &Path) -> PathBuf {
    let out = area.file("stdout");
    let mut kid = start_until(
        run_cmd(prog, &[] as &[&str], area.path(), &area.images),
        &out,
        &area.file("err"),
        "under ckpt",
        "step 20\n",
    );
    let pid = kid.pid();
    let image = common::checkpoint(pid, Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(300));
    kid.kill();
    image
}

fn reference(prog: &Path) -> (Vec<u8>, Vec<u8>) {
    let area = Area::new("written-ref");
    let st = rs::reference(
        rs::plain_cmd(prog, &[] as &[&str], area.path()),
        &area.file("stdout"),
        &area.file("err"),
        "plain",
    );
    rs::assert_success(st, "the uninterrupted run", "");
    (
        std::fs::read(area.file("written.log")).unwrap(),
        std::fs::read(area.file("written.out")).unwrap(),
    )
}

fn restart(area: &Area, image: &Path, extra: &[&str]) -> String {
    let rerr = area.file("restart.err");
    let mut r = start(
        restart_cmd(image, extra, area.path()),
        Out::Null,
        &rerr,
        "ckpt restart",
    );
    let st = r
        .wait(rs::RESTART_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    rs::assert_success(st, "restarted program", &r.describe());
    std::fs::read_to_string(&rerr).unwrap_or_default()
}

#[test]
fn append_log_and_written_file_are_cut_back_and_match_an_uninterrupted_run() {
    let bin = common::TempDir::new("written-bin");
    let prog = common::compile_c("restart_written.c", bin.path());
    let (want_log, want_out) = reference(&prog);

    let area = Area::new("written");
    let image = checkpointed_then_more_work(&area, &prog);
    let grown = std::fs::metadata(area.file("written.log")).unwrap().len();
    let said = restart(&area, &image, &[]);
    assert!(
        said.contains("written.log: cut back from") && said.contains(&format!("from {grown} to")),
        "the log cut back is not named: {said}"
    );
    rs::assert_same(
        &std::fs::read(area.file("written.log")).unwrap(),
        &want_log,
        "O_APPEND log",
    );
    rs::assert_same(
        &std::fs::read(area.file("written.out")).unwrap(),
        &want_out,
        "written file",
    );

    // --keep-files: the killed run's records stay, and come again.
    let area = Area::new("written-keep");
    let image = checkpointed_then_more_work(&area, &prog);
    let said = restart(&area, &image, &["--keep-files"]);
    assert!(
        said.contains("grew by"),
        "no word about the kept file: {said}"
    );
    let log = std::fs::read(area.file("written.log")).unwrap();
    assert!(log.len() > want_log.len(), "--keep-files cut the log");
}

#[test]
fn a_written_file_now_shorter_than_the_programs_position_is_refused() {
    let bin = common::TempDir::new("written-short-bin");
    let prog = common::compile_c("restart_written.c", bin.path());
    let area = Area::new("written-short");
    let image = checkpointed_then_more_work(&area, &prog);
    std::fs::write(area.file("written.out"), b"step 0\n").unwrap();
    let before_log = std::fs::read(area.file("written.log")).unwrap();
    let r = common::ckpt(area.path(), ["restart".as_ref(), image.as_os_str()]);
    assert!(!r.status.success(), "restart went ahead: {}", r.stderr);
    assert!(
        r.stderr.contains("written.out")
            && r.stderr.contains("shorter than the program's position"),
        "unclear refusal: {}",
        r.stderr
    );
    assert_eq!(
        std::fs::read(area.file("written.log")).unwrap(),
        before_log,
        "a refused restart touched another file"
    );
}
