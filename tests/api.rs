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

/// The example binary, built with the same profile as `ckpt`.
fn example() -> PathBuf {
    build_example("self_checkpoint")
}

fn build_example(name: &str) -> PathBuf {
    common::build_example(name, name)
}

#[test]
fn checkpoint_call_returns_restarted_after_restart() {
    let area = Area::new("api");
    let prog = example();
    let args = ["40"];
    let want = reference_output(&area, &prog, &args);
    let plain_err = std::fs::read_to_string(area.file("want.err")).unwrap();
    // Started normally, the call loads ckpt itself and checkpoints too.
    assert!(plain_err.contains("checkpoint written: "), "{plain_err}");

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

/// `examples/resumable.rs` started normally (no `ckpt run`): the crate
/// loads ckpt on its first call. Returns the program's stdout reference,
/// and the run killed after two of its own checkpoints.
fn killed_after_two_checkpoints(area: &Area, prog: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let want = reference_output(area, prog, args);
    let plain_err = std::fs::read_to_string(area.file("want.err")).unwrap();
    assert!(
        plain_err.contains("hooks ran: before 4 after 4"),
        "hooks around the program's own 4 checkpoints: {plain_err}"
    );
    std::fs::create_dir_all(&area.images).unwrap();
    let err = area.file("err");
    let mut kid = rs::start(
        rs::plain_cmd(prog, args, area.path()),
        rs::Out::File(&area.file("out")),
        &err,
        "started normally",
    );
    rs::wait_file(
        &mut kid,
        &err,
        |d| {
            String::from_utf8_lossy(d)
                .matches("checkpoint written: ")
                .count()
                >= 2
        },
        std::time::Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    want
}

#[test]
fn a_program_started_normally_checkpoints_itself_and_comes_back() {
    let area = Area::new("api-alone");
    let prog = build_example("resumable");
    let images = area.images.to_str().unwrap().to_string();
    let args = ["40", images.as_str()];
    let want = killed_after_two_checkpoints(&area, &prog, &args);
    rs::restart_and_compare(
        rs::restart_cmd(&area.images, &["--latest"], area.path()),
        &area.file("out"),
        &want,
        &area,
    );
    let err = std::fs::read_to_string(area.file("err")).unwrap();
    assert!(
        err.contains(
            "restored (1 time(s)): reconnecting\nrestarted from the checkpoint (restored 1)\n"
        ),
        "the on-restore hook ran before the call returned Restarted: {err}"
    );
    assert!(
        err.contains("hooks ran: before 4 after 3"),
        "the restored run's after-hook did not run for the checkpoint it came back from: {err}"
    );
}

#[test]
fn the_start_up_helper_resumes_a_killed_run_when_run_again() {
    let area = Area::new("api-resume");
    let prog = build_example("resumable");
    let images = area.images.to_str().unwrap().to_string();
    let args = ["40", images.as_str()];
    let want = killed_after_two_checkpoints(&area, &prog, &args);
    // Simply run again: ckpt::resume() restarts the newest image, whose
    // stdout is the first run's file.
    let mut again = rs::start(
        rs::plain_cmd(&prog, &args, area.path()),
        rs::Out::Null,
        &area.file("again.err"),
        "run again",
    );
    let st = again
        .wait(std::time::Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    rs::assert_success(st, "the resumed run", &again.describe());
    rs::assert_same(
        &std::fs::read(area.file("out")).unwrap(),
        &want,
        "stdout of the resumed run",
    );
    let err = std::fs::read_to_string(area.file("err")).unwrap();
    assert!(
        err.contains("restarted from the checkpoint (restored 1)"),
        "{err}"
    );
    // Finished: its images are gone, so a third run starts afresh.
    let left: Vec<_> = std::fs::read_dir(&area.images).unwrap().collect();
    assert!(
        left.is_empty(),
        "images left after a finished run: {left:?}"
    );
}

#[test]
fn hooks_run_around_a_checkpoint_asked_from_outside() {
    let area = Area::new("api-hooks");
    let prog = build_example("resumable");
    let images = area.images.to_str().unwrap().to_string();
    std::fs::create_dir_all(&area.images).unwrap();
    let args = ["40", images.as_str()];
    let err = area.file("err");
    let mut kid = rs::start(
        rs::plain_cmd(&prog, &args, area.path()),
        rs::Out::Null,
        &err,
        "started normally",
    );
    rs::wait_file(
        &mut kid,
        &err,
        |d| String::from_utf8_lossy(d).contains("checkpoint written: "),
        std::time::Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // `ckpt checkpoint PID` of a program that is not under `ckpt run`.
    common::checkpoint(kid.pid(), Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
    let st = kid
        .wait(std::time::Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    rs::assert_success(st, "the program", &kid.describe());
    let text = std::fs::read_to_string(&err).unwrap();
    assert!(
        text.contains("hooks ran: before 5 after 5"),
        "4 checkpoints of its own and one from outside, each with its hooks: {text}"
    );
}

/// The shim loaded into a running program (what the crate does when not
/// under `ckpt run`), with state made before it: what no wrapper recorded
/// and the kernel cannot tell (a POSIX timer) is refused out loud; the
/// rest comes back from what the kernel tells.
#[test]
fn state_made_before_the_shim_was_loaded_comes_back_or_is_refused() {
    common::require_shim();
    let area = Area::new("api-late");
    std::fs::create_dir_all(&area.images).unwrap();
    let prog = rs::compile_named("api_loaded_late.c", area.path(), "api_loaded_late");
    let shim = common::shim_path();
    let args = [shim.as_os_str(), area.images.as_os_str()];
    let out = area.file("out");
    let err = area.file("err");
    let mut kid = rs::start(
        rs::plain_cmd(&prog, &args, area.path()),
        rs::Out::File(&out),
        &err,
        "late",
    );
    rs::wait_file(
        &mut kid,
        &err,
        |d| d.ends_with(b"\n"),
        std::time::Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let said = std::fs::read_to_string(&err).unwrap();
    let image = PathBuf::from(
        said.trim()
            .strip_prefix("checkpoint written: ")
            .unwrap_or_else(|| panic!("{said}")),
    );
    kid.kill();
    let want = "with an unrecorded timer: refused\nthreads run: 1\nhandler: 1\npipe: bytes in a pipe\nfile offset: 100\n";
    rs::restart_and_compare(
        rs::restart_cmd(&image, &[], area.path()),
        &out,
        want.as_bytes(),
        &area,
    );
}

/// `examples/periodic.rs`: periodic checkpoints started by the program
/// itself (no `ckpt run`), keeping 2; a checkpoint without waiting whose
/// image `wait_for_image` sees in place. Killed mid-way, restarted from
/// the newest of exactly 2 images, its output equals an uninterrupted run's.
#[test]
fn periodic_checkpoints_started_by_the_program_keep_two_and_restart() {
    let area = Area::new("api-periodic");
    let prog = build_example("periodic");
    let images = area.images.to_str().unwrap().to_string();
    let args = ["150", images.as_str()];
    let want = reference_output(&area, &prog, &args);
    let plain_err = std::fs::read_to_string(area.file("want.err")).unwrap();
    assert!(
        plain_err.contains("first image in place: true"),
        "{plain_err}"
    );
    let out = area.file("out");
    let mut kid = rs::start(
        rs::plain_cmd(&prog, &args, area.path()),
        rs::Out::File(&out),
        &area.file("err"),
        "periodic",
    );
    // Well past a few ticks of 100 ms (about 1 s of steps).
    rs::wait_file(
        &mut kid,
        &out,
        |d| rs::lines(d) >= 40,
        std::time::Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(std::time::Duration::from_millis(150));
    kid.kill();
    // The newest 2, and the earlier images those take unchanged pages
    // from (incremental), nothing else.
    let mut names: Vec<String> = std::fs::read_dir(&area.images)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".img"))
        .collect();
    names.sort();
    let listed = common::ckpt(
        area.path(),
        ["list".as_ref(), "--json".as_ref(), area.images.as_os_str()],
    );
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let newest = &rows[rows.len().saturating_sub(2)..];
    let mut kept: Vec<String> = Vec::new();
    for r in newest {
        let p = r["path"].as_str().unwrap();
        kept.push(
            std::path::Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
        for d in r["needs"].as_array().unwrap() {
            kept.push(d.as_str().unwrap().to_string());
        }
    }
    kept.sort();
    kept.dedup();
    assert!(rows.len() >= 2, "{}", listed.stdout);
    // `.compress(Some(Codec::Lz4))`: the periodic images hold lz4 blocks.
    let newest_path = std::path::Path::new(rows[rows.len() - 1]["path"].as_str().unwrap());
    let v = common::inspect_json(newest_path).unwrap_or_else(|e| panic!("{e}"));
    let blocks = common::arr(&v, "regions")
        .iter()
        .flat_map(|r| r["extents"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["codec"].as_u64() == Some(1))
        .count();
    assert!(blocks > 0, "no lz4 block in {}", newest_path.display());
    assert_eq!(names, kept, "keep(2): the newest 2 and what they need");
    rs::restart_and_compare(
        rs::restart_cmd(&area.images, &["--latest"], area.path()),
        &out,
        &want,
        &area,
    );
}
