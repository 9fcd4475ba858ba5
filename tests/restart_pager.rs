//! The pager (`ckpt restart` filling anonymous memory through the
//! restorer's userfaultfd) on a real program: restart_pager.c has the
//! kernel read from stored pages and write into never-stored ones after
//! the restart, forks, and hashes every byte; the restarted run must
//! print exactly what an uninterrupted run prints. Each test also reads
//! the pager's test log (CKPT_TEST_PAGER_LOG) to see that the pager,
//! not the restorer's own copy, brought the memory back, and with which
//! kind of userfaultfd.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{checkpoint_and_kill, restart_and_compare, restart_cmd, run_cmd, start, Area, Out};
use std::time::Duration;

/// Run restart_pager.c plainly, then under ckpt (`run_env` on both),
/// checkpoint at "step 19", SIGKILL, restart with `restart_env` and
/// `extra` arguments, compare. Returns the pager's log.
fn cycle(
    tag: &str,
    run_env: &[(&str, &str)],
    restart_env: &[(&str, &str)],
    extra: &[&str],
) -> String {
    let area = Area::new(tag);
    std::fs::create_dir_all(&area.images).unwrap();
    let prog = common::compile_c("restart_pager.c", &area.sub("bin"));
    let want_out = area.file("want.out");
    let mut plain = rs::plain_cmd(&prog, &[] as &[&str], area.path());
    plain.envs(run_env.iter().copied());
    let st = rs::reference(plain, &want_out, &area.file("want.err"), "plain");
    rs::assert_success(st, "the uninterrupted run", "");
    let want = std::fs::read(&want_out).unwrap();
    let text = String::from_utf8_lossy(&want);
    assert!(
        text.contains("pipe copy same")
            && text.contains("cmdline read ok")
            && text.contains("child 0"),
        "the uninterrupted run:\n{text}"
    );
    let out = area.file("out");
    let mut run = run_cmd(&prog, &[] as &[&str], area.path(), &area.images);
    run.envs(run_env.iter().copied());
    let mut kid = start(run, Out::File(&out), &area.file("err"), "under ckpt");
    rs::wait_file(
        &mut kid,
        &out,
        |d| String::from_utf8_lossy(d).contains("step 19"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let image = checkpoint_and_kill(&mut kid, &area.images);
    if let Some((_, codec)) = run_env.iter().find(|(k, _)| *k == "CKPT_COMPRESS") {
        let shown = common::ckpt(area.path(), ["inspect".as_ref(), image.as_os_str()]);
        assert!(
            shown.stdout.contains(&format!("compressed ({codec})")),
            "the image is not compressed:\n{}",
            shown.stdout
        );
    }
    let log = area.file("pager.log");
    let mut cmd = restart_cmd(&image, extra, area.path());
    cmd.envs(restart_env.iter().copied())
        .env("CKPT_TEST_PAGER_LOG", &log);
    restart_and_compare(cmd, &out, &want, &area);
    std::fs::read_to_string(&log).unwrap_or_default()
}

/// Filled bytes named in a log line, which must say `uffd` and ok.
fn filled(log: &str, uffd: &str) -> u64 {
    let line = log
        .lines()
        .next()
        .unwrap_or_else(|| panic!("the pager did not serve: log {log:?}"));
    assert!(
        line.starts_with(&format!("uffd={uffd} ")) && line.ends_with(" ok"),
        "pager log: {log:?}"
    );
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("bytes="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A plain image: the pager fills the program's memory (a userfaultfd
/// from /dev/userfaultfd, kernel faults included), and the kernel reads
/// and writes it correctly afterwards.
#[test]
fn the_pager_fills_memory_the_kernel_then_uses() {
    let log = cycle("pager", &[], &[], &[]);
    assert!(filled(&log, "kernel") >= 24 << 20, "pager log: {log}");
}

/// Compressed images (lz4 and zstd): decompressed by the pager straight
/// into the program.
#[test]
fn the_pager_decompresses_into_the_program() {
    for codec in ["lz4", "zstd"] {
        let log = cycle(
            &format!("pager{codec}"),
            &[("CKPT_TEST_PAGER_SMOOTH", "1"), ("CKPT_COMPRESS", codec)],
            &[],
            &[],
        );
        assert!(
            filled(&log, "kernel") >= 24 << 20,
            "{codec}: pager log: {log}"
        );
    }
}

/// Without /dev/userfaultfd (simulated) the restorer makes its
/// userfaultfd with the syscall, user-mode faults only: still filled.
#[test]
fn without_dev_userfaultfd_the_syscall_serves() {
    let log = cycle(
        "pagernodev",
        &[],
        &[("CKPT_TEST_NO_DEV_USERFAULTFD", "1")],
        &[],
    );
    assert!(filled(&log, "user") >= 24 << 20, "pager log: {log}");
}

/// `--no-namespace`: the restart command becomes the restorer, which
/// copies the memory itself (no pager).
#[test]
fn no_namespace_restarts_without_the_pager() {
    let log = cycle(
        "pagernons",
        &[("CKPT_COMPRESS", "lz4")],
        &[],
        &["--no-namespace"],
    );
    assert!(log.is_empty(), "a pager served: {log}");
}
