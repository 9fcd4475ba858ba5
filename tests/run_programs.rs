//! Issue acceptance 2: real programs (python3, bash, a Rust binary) run
//! unchanged under `ckpt run`, can be checkpointed repeatedly, each
//! checkpoint gives an inspectable image, and their output equals an
//! uninterrupted run's. Also the basics of `ckpt run`: the pid and the exit
//! status are the program's, images go to the run's cwd by default, and
//! `--interval` checkpoints periodically.

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CHECKPOINTS: u64 = 5;

/// Run `prog ARGS... CTL` plain and under ckpt side by side, checkpoint the
/// latter `CHECKPOINTS` times while it waits, let both finish, compare.
fn checkpoint_repeatedly(tag: &str, prog: &Path, args: &[PathBuf], exe: &Path) {
    require_shim();
    let tmp = TempDir::new(tag);
    let ctl_plain = tmp.sub("plain");
    let ctl = tmp.sub("ckpt");
    let images = tmp.sub("images");

    let spawn = |ctl: &Path| {
        let mut s = Spawn::new(prog, tmp.path());
        for a in args {
            s = s.arg(a);
        }
        s.arg(ctl)
    };
    let mut plain = spawn(&ctl_plain).plain(&format!("{tag} (plain)"));
    let mut run = spawn(&ctl).under_ckpt(&images, &format!("{tag} (ckpt run)"));

    wait_marker(&mut plain, &ctl_plain.join("ready"), READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    touch(&ctl_plain.join("go"));

    let kv =
        wait_marker(&mut run, &ctl.join("ready"), READY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let pid = kv_num(&kv, "pid") as i32;
    run.adopt(pid);

    let mut c = Checks::new();
    for i in 1..=CHECKPOINTS {
        let image = match checkpoint(pid, Some(&images)) {
            Ok(p) => p,
            Err(e) => panic!("checkpoint {i} of {tag}: {e}\n{}", run.describe()),
        };
        // Taken while bash had a child (`sleep`): a tree image, which
        // holds the program's own image beside its child's.
        let image = if image.is_dir() {
            image.join(format!("{pid}.img"))
        } else {
            image
        };
        match inspect_json(&image) {
            Err(e) => c.fail(format!("checkpoint {i}: {e}")),
            Ok(j) => {
                c.num(
                    format!("checkpoint {i}: process.pid"),
                    at(&j, "process.pid"),
                    pid as i64,
                );
                c.num(format!("checkpoint {i}: seq"), at(&j, "seq"), i as i64);
                c.str(
                    format!("checkpoint {i}: process.exe"),
                    at(&j, "process.exe"),
                    &exe.to_string_lossy(),
                );
                c.check(
                    thread_by_tid(&j, pid as i64).is_some_and(|t| t["id"].as_i64() == Some(1)),
                    format!("checkpoint {i}: the main thread (tid {pid}, id 1) must be listed"),
                );
                c.check(
                    fd_entry(&j, 1).is_some(),
                    format!("checkpoint {i}: stdout (fd 1) must be listed"),
                );
                c.num(
                    format!("checkpoint {i}: image.file_bytes"),
                    at(&j, "image.file_bytes"),
                    std::fs::metadata(&image)
                        .map(|m| m.len() as i64)
                        .unwrap_or(-1),
                );
            }
        }
        c.check(
            run.exited().is_none(),
            format!("{tag} died after checkpoint {i}"),
        );
        if c.failed() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    touch(&ctl.join("go"));
    let st = run.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let pst = plain.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    c.check(
        pst.success(),
        format!("plain run failed: {}", plain.describe()),
    );
    c.check(st.success(), format!("run under ckpt exited with {st}"));
    let (a, b) = (run.stdout_bytes(), plain.stdout_bytes());
    c.check(
        a == b,
        format!(
            "stdout under ckpt differs from the plain run: {}",
            diff_summary(&a, &b)
        ),
    );
    c.check(
        String::from_utf8_lossy(&b).ends_with("done\n"),
        "the plain run must end with \"done\"",
    );
    c.finish(&format!(
        "{}\n--- plain stdout ---\n{}",
        run.describe(),
        plain.stdout()
    ));
}

#[test]
fn python3_checkpointed_repeatedly() {
    let py = python3();
    let exe = std::fs::canonicalize(&py).unwrap();
    checkpoint_repeatedly("py", &py, &[programs_dir().join("worker.py")], &exe);
}

#[test]
fn bash_checkpointed_repeatedly() {
    let bash = PathBuf::from("/bin/bash");
    let exe = std::fs::canonicalize(&bash).unwrap();
    checkpoint_repeatedly("sh", &bash, &[programs_dir().join("worker.sh")], &exe);
}

#[test]
fn rust_binary_checkpointed_repeatedly() {
    let tmp = TempDir::new("rsbin");
    let bin = compile_rust("worker.rs", tmp.path());
    checkpoint_repeatedly("rs", &bin, &[], &bin);
}

/// `ckpt run` execs the program: same pid, and its exit status (code or
/// signal) is the program's.
#[test]
fn pid_and_exit_status_are_the_programs() {
    require_shim();
    let tmp = TempDir::new("exit");
    let bin = compile_c("waiter.c", tmp.path());
    let images = tmp.sub("images");
    let mut c = Checks::new();

    for (mode, value) in [("exit", 7), ("signal", 15), ("exit", 0)] {
        let ctl = tmp.sub(&format!("{mode}{value}"));
        let mut run = Spawn::new(&bin, tmp.path())
            .arg(&ctl)
            .arg(mode)
            .arg(value.to_string())
            .under_ckpt(&images, &format!("waiter {mode} {value}"));
        let kv = wait_marker(&mut run, &ctl.join("ready"), READY_TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"));
        let pid = kv_num(&kv, "pid") as i32;
        run.adopt(pid);
        c.eq(
            format!("{mode} {value}: the program's pid is the pid of `ckpt run`"),
            pid,
            run.child_pid(),
        );
        c.eq(
            format!("{mode} {value}: the program's parent is the test (ckpt run execs)"),
            kv_num(&kv, "ppid") as u32,
            std::process::id(),
        );
        touch(&ctl.join("go"));
        let st = run.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        if mode == "exit" {
            c.eq(
                format!("exit status of `ckpt run` for a program exiting {value}"),
                st.code(),
                Some(value),
            );
        } else {
            c.eq(
                format!("`ckpt run` of a program killed by signal {value}"),
                st.signal(),
                Some(value),
            );
        }
        c.eq(
            format!("{mode} {value}: stdout"),
            run.stdout(),
            "waiting\nfinishing\n".to_string(),
        );
    }
    c.finish("");
}

/// Without --dir, images are written into the cwd of `ckpt run`.
#[test]
fn default_image_dir_is_the_cwd_of_run() {
    require_shim();
    let tmp = TempDir::new("cwd");
    let bin = compile_c("waiter.c", tmp.path());
    let ctl = tmp.sub("ctl");
    let cwd = tmp.sub("runcwd");
    let elsewhere = tmp.sub("elsewhere");
    let mut run = Spawn::new(&bin, &cwd)
        .arg(&ctl)
        .under_ckpt_with(&[], "waiter (no --dir)");
    let kv =
        wait_marker(&mut run, &ctl.join("ready"), READY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let pid = kv_num(&kv, "pid") as i32;
    run.adopt(pid);
    // Run `ckpt checkpoint` somewhere else: the run's cwd decides.
    let image =
        checkpoint_in(&elsewhere, pid, None).unwrap_or_else(|e| panic!("{e}\n{}", run.describe()));
    let image = std::fs::canonicalize(&image).unwrap();
    assert_eq!(
        image.parent(),
        Some(cwd.as_path()),
        "image {} must be in the cwd of `ckpt run` {}",
        image.display(),
        cwd.display()
    );
    inspect_json(&image).unwrap_or_else(|e| panic!("{e}"));
    touch(&ctl.join("go"));
    let st = run.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(st.success(), "{}", run.describe());
}

/// `ckpt run --interval 1` checkpoints by itself, again and again.
#[test]
fn interval_checkpoints_periodically() {
    require_shim();
    let tmp = TempDir::new("intv");
    let bin = compile_c("waiter.c", tmp.path());
    let ctl = tmp.sub("ctl");
    let images = tmp.sub("images");
    let mut run = Spawn::new(&bin, tmp.path()).arg(&ctl).under_ckpt_with(
        &[
            "--dir".as_ref(),
            images.as_os_str(),
            "--interval".as_ref(),
            "1".as_ref(),
        ],
        "waiter (--interval 1)",
    );
    let kv =
        wait_marker(&mut run, &ctl.join("ready"), READY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let pid = kv_num(&kv, "pid") as i32;
    run.adopt(pid);

    // Wait for images with seq >= 2 (periodic, not just once).
    let t = Instant::now();
    let mut max_seq = 0;
    let mut seen = Vec::new();
    while t.elapsed() < Duration::from_secs(15) && max_seq < 2 {
        std::thread::sleep(Duration::from_millis(250));
        for e in std::fs::read_dir(&images).unwrap().flatten() {
            let p = e.path();
            if p.to_string_lossy().contains(".tmp") || !p.is_file() {
                continue;
            }
            if let Ok(j) = inspect_json(&p) {
                let seq = at(&j, "seq").as_u64().unwrap_or(0);
                if at(&j, "process.pid").as_i64() == Some(pid as i64) {
                    max_seq = max_seq.max(seq);
                    seen.push((p.clone(), seq));
                }
            }
        }
        assert!(run.exited().is_none(), "program died: {}", run.describe());
    }
    touch(&ctl.join("go"));
    let st = run.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        max_seq >= 2,
        "with --interval 1, no second periodic checkpoint within 15 s (seen: {seen:?})\n{}",
        run.describe()
    );
    assert!(st.success(), "{}", run.describe());
}

/// A library the user preloads too (here: one that remaps a path and
/// counts dup calls) still sees every call under ckpt: the shim makes a
/// system call itself only where its original is the C library's own.
#[test]
fn another_preloaded_library_still_sees_every_call() {
    require_shim();
    let tmp = TempDir::new("stacked");
    let prog = compile_c("redirected.c", tmp.path());
    let lib = tmp.path().join("libredirect.so");
    let src = programs_dir().join("redirect_preload.c");
    let mut cc = std::process::Command::new("cc");
    cc.args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&lib)
        .arg(&src)
        .arg("-ldl");
    let r = run_cmd(&mut cc, Duration::from_secs(120)).unwrap_or_else(|e| panic!("cc: {e}"));
    assert!(r.status.success(), "cc redirect_preload.c: {}", r.stderr);
    std::fs::write(tmp.path().join("real.txt"), "the real file\n").unwrap();
    let lib = lib.to_string_lossy().into_owned();
    let run = |ckpt: bool, log: &str| {
        let log = tmp.path().join(log);
        let s = Spawn::new(&prog, tmp.path())
            .env("LD_PRELOAD", &lib)
            .env("REDIRECT_LOG", &log.to_string_lossy());
        let mut p = if ckpt {
            s.under_ckpt(&tmp.sub("images"), "redirected (ckpt run)")
        } else {
            s.plain("redirected (plain)")
        };
        let st = p.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        assert!(st.success(), "{}", p.describe());
        (
            p.stdout(),
            std::fs::read_to_string(&log).unwrap_or_default(),
        )
    };
    let (want, want_log) = run(false, "plain.log");
    assert!(
        want.contains("open: fd>=0 1, read 14: the real file"),
        "{want}"
    );
    assert_eq!(want_log, "dup\ndup2\ndup3\n");
    let (got, got_log) = run(true, "ckpt.log");
    assert_eq!(got, want, "stdout under ckpt");
    assert_eq!(
        got_log, want_log,
        "dup calls the preloaded library saw under ckpt"
    );
}
