//! Event-loop descriptors across a restart: an epoll instance (with the
//! data words of what it watches), a timerfd and a signalfd. The program
//! is checkpointed mid-loop, killed, restarted, and must print exactly
//! what an uninterrupted run prints.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{
    assert_same, assert_success, checkpoint_and_kill, plain_cmd, reference, restart_cmd, run_cmd,
    start, wait_file, Area, Out, RESTART_TIMEOUT,
};
use std::time::Duration;

#[test]
fn epoll_timerfd_signalfd_come_back() {
    let area = Area::new("events");
    let prog = common::compile_c("restart_events.c", &area.sub("bin"));
    let no_args: [&str; 0] = [];
    let want_out = area.file("want.out");
    let st = reference(
        plain_cmd(&prog, &no_args, area.path()),
        &want_out,
        &area.file("want.err"),
        "plain",
    );
    assert_success(st, "plain run", "");
    let want = std::fs::read(&want_out).unwrap();

    let out = area.file("out");
    let err = area.file("err");
    let mut kid = start(
        run_cmd(&prog, &no_args, area.path(), &area.images),
        Out::File(&out),
        &err,
        "under ckpt",
    );
    wait_file(
        &mut kid,
        &out,
        |d| String::from_utf8_lossy(d).contains("tick 10"),
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
