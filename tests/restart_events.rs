//! Kernel state that only exists in the process, across a restart: an epoll
//! instance (with the data words of what it watches), a timerfd, a
//! signalfd, a socket pair, a memfd and a deleted file, threads' CPU
//! affinity and nice values; and python's asyncio, which also needs its pid
//! to stay the same. Each program is
//! checkpointed mid-loop, killed, restarted, and must print exactly what
//! an uninterrupted run prints.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{
    assert_same, assert_success, checkpoint_and_kill, plain_cmd, reference, restart_cmd, run_cmd,
    start, wait_file, Area, Out, RESTART_TIMEOUT,
};
use std::path::Path;
use std::time::Duration;

/// Reference run, then checkpoint once `marker` is in the output, kill,
/// restart, and compare the whole output.
fn cycle(tag: &str, prog: &Path, args: &[&str], marker: &str) {
    let area = Area::new(tag);
    let want_out = area.file("want.out");
    let st = reference(
        plain_cmd(prog, args, area.path()),
        &want_out,
        &area.file("want.err"),
        "plain",
    );
    assert_success(st, "plain run", "");
    let want = std::fs::read(&want_out).unwrap();

    let out = area.file("out");
    let err = area.file("err");
    let mut kid = start(
        run_cmd(prog, args, area.path(), &area.images),
        Out::File(&out),
        &err,
        "under ckpt",
    );
    wait_file(
        &mut kid,
        &out,
        |d| String::from_utf8_lossy(d).contains(marker),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let image = checkpoint_and_kill(&mut kid, &area.images);

    let rerr = area.file("restart.err");
    let mut r = start(
        restart_cmd(&image, &[], area.path()),
        Out::Null,
        &rerr,
        "restart",
    );
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_success(st, "restarted program", &r.describe());
    assert_same(&std::fs::read(&out).unwrap(), &want, "stdout after restart");
    let warnings = std::fs::read_to_string(&rerr).unwrap_or_default();
    assert!(
        !warnings.contains("cannot be restored"),
        "a descriptor did not come back: {warnings}"
    );
}

#[test]
fn epoll_timerfd_signalfd_come_back() {
    let dir = common::TempDir::new("events-bin");
    let prog = common::compile_c("restart_events.c", dir.path());
    cycle("events", &prog, &[], "tick 10");
}

#[test]
fn python_asyncio_continues_with_its_pid() {
    let script = common::programs_dir().join("restart_asyncio.py");
    let script = script.to_string_lossy().into_owned();
    cycle("asyncio", &common::python3(), &[&script], "step 12 ");
}

#[test]
fn memfd_and_deleted_file_come_back_with_their_contents() {
    let dir = common::TempDir::new("unnamed-bin");
    let prog = common::compile_c("restart_unnamed.c", dir.path());
    cycle("unnamed", &prog, &[], "step 19");
}

#[test]
fn thread_affinity_and_nice_come_back() {
    let dir = common::TempDir::new("sched-bin");
    let prog = common::compile_c("restart_sched.c", dir.path());
    cycle("sched", &prog, &[], "step 19");
}

#[test]
fn thread_ids_pid_and_mutex_owners_are_kept() {
    let dir = common::TempDir::new("tids-bin");
    let prog = common::compile_c("restart_tids.c", dir.path());
    cycle("tids", &prog, &[], "step 19");
}

/// The crash-recovery flow: periodic checkpoints (`--interval`), SIGKILL
/// at an arbitrary moment, `ckpt restart DIR` takes the newest image.
#[test]
fn periodic_checkpoints_then_restart_of_the_directory() {
    let area = Area::new("periodic");
    let dir = common::TempDir::new("periodic-bin");
    let prog = common::compile_c("restart_counter.c", dir.path());
    let ctl = area.sub("ctl");
    let ctl = ctl.to_string_lossy().into_owned();
    // 150 lines, 20 ms apart: about 3 s.
    let args = [ctl.as_str(), "150", "20"];
    let want_out = area.file("want.out");
    let st = reference(
        plain_cmd(&prog, &args, area.path()),
        &want_out,
        &area.file("want.err"),
        "plain",
    );
    assert_success(st, "plain run", "");
    let want = std::fs::read(&want_out).unwrap();

    let out = area.file("out");
    let mut cmd = std::process::Command::new(common::ckpt_bin());
    cmd.arg("run")
        .arg("--dir")
        .arg(&area.images)
        .args(["--interval", "0.2", "--"])
        .arg(&prog)
        .args(args)
        .current_dir(area.path());
    let mut kid = start(
        cmd,
        Out::File(&out),
        &area.file("err"),
        "ckpt run --interval",
    );
    let has_image = || {
        std::fs::read_dir(&area.images)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".img"))
            })
            .unwrap_or(false)
    };
    wait_file(
        &mut kid,
        &out,
        |d| d.len() > want.len() / 2 && has_image(),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    let rerr = area.file("restart.err");
    let mut r = start(
        restart_cmd(&area.images, &[], area.path()),
        Out::Null,
        &rerr,
        "restart DIR",
    );
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_success(st, "restarted program", &r.describe());
    assert_same(&std::fs::read(&out).unwrap(), &want, "stdout after restart");
}
