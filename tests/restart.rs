//! Real-process acceptance tests of `ckpt restart`: each program runs once
//! uninterrupted (the reference), then under `ckpt run`; it is checkpointed
//! mid-work, killed with SIGKILL, restarted from the image with
//! `ckpt restart`, and what it produced is compared with the reference,
//! byte for byte or through the program's own verdict.
//!
//! Programs write to a file the test opened as their stdout (`prog > out`)
//! so that the restarted program goes on writing at the right offset.

mod common;
#[path = "common/restart.rs"]
mod rs;

use common::{compile_c, touch, TempDir};
use rs::{
    assert_same, assert_success, checkpoint_and_kill, lines, plain_cmd, reference, restart_cmd,
    run_cmd, start, wait_file, wait_marker, Area, Out, RESTART_TIMEOUT,
};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Build a C program once per test (each test has its own temp dir).
fn build(area: &Area, src: &str) -> PathBuf {
    compile_c(src, &area.sub("bin"))
}

/// The whole cycle for a program printing to `> out`: reference run, run
/// under ckpt until `ready(out, ctl)` holds, checkpoint, kill, optionally
/// `between` (e.g. create the go file), restart, compare `out`.
struct Cycle<'a> {
    prog: &'a Path,
    /// Arguments after the control dir.
    args: Vec<String>,
    /// Returns true when the program is mid-work.
    ready: Box<dyn Fn(&Path, &Path) -> bool + 'a>,
    /// Run between the kill and the restart (the control dir is given).
    between: Box<dyn Fn(&Path) + 'a>,
    /// Also done before the reference run is let go (same control files).
    restarts: usize,
}

impl<'a> Cycle<'a> {
    fn new(prog: &'a Path) -> Cycle<'a> {
        Cycle {
            prog,
            args: Vec::new(),
            ready: Box::new(|_, _| true),
            between: Box::new(|_| {}),
            restarts: 1,
        }
    }

    /// Returns (reference output, output after restart(s)).
    fn run(&self, area: &Area) -> (Vec<u8>, Vec<u8>) {
        // Reference: the same program, same control protocol, no ckpt.
        let ctl_ref = area.sub("ctl-ref");
        let out_ref = area.file("ref.out");
        let mut argv = vec![ctl_ref.to_string_lossy().into_owned()];
        argv.extend(self.args.iter().cloned());
        let mut k = start(
            plain_cmd(self.prog, &argv, area.path()),
            Out::File(&out_ref),
            &area.file("ref.err"),
            "reference",
        );
        wait_file(
            &mut k,
            &out_ref,
            |_| (self.ready)(&out_ref, &ctl_ref),
            common::READY_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..self.restarts {
            (self.between)(&ctl_ref);
        }
        let st = k.wait(rs::RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        assert_success(st, "the reference run", &k.describe());
        let want = std::fs::read(&out_ref).unwrap();

        // Under ckpt.
        let ctl = area.sub("ctl");
        let out = area.file("prog.out");
        let mut argv = vec![ctl.to_string_lossy().into_owned()];
        argv.extend(self.args.iter().cloned());
        let mut kid = start(
            run_cmd(self.prog, &argv, area.path(), &area.images),
            Out::File(&out),
            &area.file("prog.err"),
            "under ckpt run",
        );
        wait_file(
            &mut kid,
            &out,
            |_| (self.ready)(&out, &ctl),
            common::READY_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for round in 0..self.restarts {
            let img = checkpoint_and_kill(&mut kid, &area.images);
            (self.between)(&ctl);
            kid = start(
                restart_cmd(&img, &[], area.path()),
                Out::Null,
                &area.file(&format!("restart{round}.err")),
                &format!("ckpt restart #{round}"),
            );
            if round + 1 < self.restarts {
                // Let it get some work done before the next checkpoint.
                let before = std::fs::read(&out).unwrap_or_default().len();
                wait_file(
                    &mut kid,
                    &out,
                    |d| d.len() > before + 200,
                    common::READY_TIMEOUT,
                )
                .unwrap_or_else(|e| {
                    panic!(
                        "restarted program made no progress: {e}\nprogram stderr:\n{}",
                        read(&area.file("prog.err"))
                    )
                });
            }
        }
        let st = kid.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        let ctx = format!(
            "{}\nprogram stderr:\n{}",
            kid.describe(),
            rs::tail(&read(&area.file("prog.err")), 3000)
        );
        assert_success(st, "ckpt restart", &ctx);
        let got = std::fs::read(&out).unwrap();
        assert_same(&got, &want, &ctx);
        (want, got)
    }
}

fn read(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
}

fn has_lines(n: usize) -> impl Fn(&Path, &Path) -> bool {
    move |out: &Path, _: &Path| lines(&std::fs::read(out).unwrap_or_default()) >= n
}

fn has_marker(name: &'static str) -> impl Fn(&Path, &Path) -> bool {
    move |_: &Path, ctl: &Path| ctl.join(name).exists()
}

fn touch_go(ctl: &Path) {
    touch(&ctl.join("go"));
}

// ---------------------------------------------------------------------------
// 1. A C counter writing to `> out`.

#[test]
fn c_counter_to_file_is_byte_identical() {
    let area = Area::new("rcnt");
    let prog = build(&area, "restart_counter.c");
    let mut c = Cycle::new(&prog);
    c.args = vec!["150".into(), "10".into()];
    c.ready = Box::new(has_lines(40));
    let (want, _) = c.run(&area);
    assert!(String::from_utf8_lossy(&want).contains("done lines=150"));
}

// ---------------------------------------------------------------------------
// 8. Chain: checkpoint → kill → restart, three times over.

#[test]
fn chain_of_three_restarts_is_byte_identical() {
    let area = Area::new("rchain");
    let prog = build(&area, "restart_counter.c");
    let mut c = Cycle::new(&prog);
    c.args = vec!["300".into(), "8".into()];
    c.ready = Box::new(has_lines(30));
    c.restarts = 3;
    c.run(&area);
}

// ---------------------------------------------------------------------------
// Programs that stop at a `ready` marker and wait for `go`.

/// Run restart_stage (or another program following the ready/go protocol)
/// under ckpt with stdout to `out`, checkpoint it at `ready`, kill it,
/// create `go`, and start `ckpt restart` (stdout: `rout`).
fn staged_restart(area: &Area, prog: &Path, args: &[&str], rout: Out) -> rs::Kid {
    let ctl = area.sub("ctl");
    let mut argv = vec![ctl.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let mut kid = start(
        run_cmd(prog, &argv, area.path(), &area.images),
        Out::File(&area.file("prog.out")),
        &area.file("prog.err"),
        "under ckpt run",
    );
    wait_marker(&mut kid, &ctl.join("ready")).unwrap_or_else(|e| panic!("{e}"));
    let img = checkpoint_and_kill(&mut kid, &area.images);
    touch_go(&ctl);
    start(
        restart_cmd(&img, &[], area.path()),
        rout,
        &area.file("restart.err"),
        "ckpt restart",
    )
}

/// The uninterrupted run of a ready/go program: `go` exists from the start.
fn staged_reference(
    area: &Area,
    prog: &Path,
    args: &[&str],
) -> (std::process::ExitStatus, Vec<u8>) {
    let ctl = area.sub("ctl-ref");
    touch_go(&ctl);
    touch(&ctl.join("go2"));
    let mut argv = vec![ctl.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let out = area.file("ref.out");
    let st = reference(
        plain_cmd(prog, &argv, area.path()),
        &out,
        &area.file("ref.err"),
        "reference",
    );
    (st, std::fs::read(&out).unwrap())
}

fn program_stderr(area: &Area) -> String {
    format!(
        "program stderr:\n{}\nrestart stderr:\n{}",
        rs::tail(&read(&area.file("prog.err")), 3000),
        rs::tail(&read(&area.file("restart.err")), 3000)
    )
}

// ---------------------------------------------------------------------------
// 11. Exit status.

#[test]
fn exit_status_7_after_restart_is_restarts_status() {
    let area = Area::new("rexit");
    let prog = build(&area, "restart_stage.c");
    let (st_ref, want) = staged_reference(&area, &prog, &["exit7"]);
    assert_eq!(st_ref.code(), Some(7), "reference run");
    let mut r = staged_restart(&area, &prog, &["exit7"], Out::Null);
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        st.code(),
        Some(7),
        "ckpt restart must end with the program's exit status 7, got {st}\n{}",
        program_stderr(&area)
    );
    assert_same(
        &std::fs::read(area.file("prog.out")).unwrap(),
        &want,
        &program_stderr(&area),
    );
}

#[test]
fn killed_by_sigterm_after_restart_is_restarts_status() {
    let area = Area::new("rterm");
    let prog = build(&area, "restart_stage.c");
    let (st_ref, want) = staged_reference(&area, &prog, &["sigterm"]);
    assert_eq!(st_ref.signal(), Some(libc::SIGTERM), "reference run");
    let mut r = staged_restart(&area, &prog, &["sigterm"], Out::Null);
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        st.signal(),
        Some(libc::SIGTERM),
        "ckpt restart must report death by SIGTERM, got {st}\n{}",
        program_stderr(&area)
    );
    assert_same(
        &std::fs::read(area.file("prog.out")).unwrap(),
        &want,
        &program_stderr(&area),
    );
}

// ---------------------------------------------------------------------------
// 10. The restarted process is the program: its comm, and it can be
// checkpointed again.

#[test]
fn restarted_process_has_programs_comm_and_can_be_checkpointed() {
    let area = Area::new("rcomm");
    let prog = build(&area, "restart_stage.c");
    let (st_ref, want) = staged_reference(&area, &prog, &["comm"]);
    assert_success(st_ref, "the reference run", "");
    let comm = "restart_stage";
    let mut r = staged_restart(&area, &prog, &["comm"], Out::Null);
    let ctl = area.path().join("ctl");
    wait_marker(&mut r, &ctl.join("resumed"))
        .unwrap_or_else(|e| panic!("{e}\n{}", program_stderr(&area)));
    let pid = r.pid();
    let got_comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let resumed = read(&ctl.join("resumed"));
    let again = common::checkpoint(pid, Some(&area.images));
    touch(&ctl.join("go2"));
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let mut checks = common::Checks::new();
    checks.eq(
        "/proc/PID/comm of the restarted process",
        got_comm.trim_end(),
        comm,
    );
    checks.eq(
        "the program's getpid() after restart (marker) is the restart command's pid",
        resumed.trim().to_string(),
        format!("pid={pid}"),
    );
    checks.check(
        again.is_ok(),
        format!("checkpointing the restarted process again: {again:?}"),
    );
    checks.check(st.success(), format!("restart exit status {st}"));
    checks.eq(
        "output",
        String::from_utf8_lossy(&std::fs::read(area.file("prog.out")).unwrap()).into_owned(),
        String::from_utf8_lossy(&want).into_owned(),
    );
    checks.finish(&program_stderr(&area));
}

// ---------------------------------------------------------------------------
// stdout a pipe to the test: after restart the program's stdout is the
// restart command's own stdout.

#[test]
fn stdout_pipe_becomes_restart_commands_stdout() {
    let area = Area::new("rpipe");
    let prog = build(&area, "restart_stage.c");
    let (st_ref, want) = staged_reference(&area, &prog, &["pipe"]);
    assert_success(st_ref, "the reference run", "");

    let ctl = area.sub("ctl");
    let mut kid = start(
        run_cmd(
            &prog,
            &[ctl.to_str().unwrap(), "pipe"],
            area.path(),
            &area.images,
        ),
        Out::Pipe,
        &area.file("prog.err"),
        "under ckpt run",
    );
    wait_marker(&mut kid, &ctl.join("ready")).unwrap_or_else(|e| panic!("{e}"));
    let img = checkpoint_and_kill(&mut kid, &area.images);
    let _ = kid.wait(Duration::from_secs(5));
    let first = kid.out_bytes();
    touch_go(&ctl);
    let mut r = start(
        restart_cmd(&img, &[], area.path()),
        Out::Pipe,
        &area.file("restart.err"),
        "ckpt restart",
    );
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let ctx = program_stderr(&area);
    assert_success(st, "ckpt restart", &ctx);
    let mut got = first;
    got.extend_from_slice(&r.out_bytes());
    assert_same(&got, &want, &ctx);
}

// Keep the unused-import lint quiet while tests are added.
#[allow(dead_code)]
fn _unused(_: TempDir, _: Command) {}
