//! Issue acceptance 5: the CLI's error paths. Each must exit 1 with one line
//! on stderr and never panic: `ckpt checkpoint` of a missing process, of a
//! process not under ckpt, of another user's process; `ckpt inspect` of a
//! missing, empty, garbage, truncated or bit-flipped image.

mod common;

use common::*;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `ckpt checkpoint PID --dir IMAGES`, run in `cwd`, whatever it ends with.
fn checkpoint_into(cwd: &Path, pid: i64, images: &Path) -> CmdOut {
    let args = [
        "checkpoint".to_string(),
        pid.to_string(),
        "--dir".to_string(),
        images.to_string_lossy().into_owned(),
    ];
    run_cmd(&mut ckpt_cmd(cwd, args), CLI_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// Exit status 1, exactly one line on stderr containing `needle` (if any),
/// nothing on stdout, no panic.
fn assert_clean_error(what: &str, r: &CmdOut, needle: Option<&str>) {
    let ctx = format!(
        "{what}: status={} stdout={:?} stderr={:?}",
        r.status, r.stdout, r.stderr
    );
    assert!(
        !r.stderr.contains("panicked") && !r.stdout.contains("panicked"),
        "{ctx}: it panicked"
    );
    assert_eq!(r.code(), Some(1), "{ctx}: exit status must be 1");
    assert_eq!(
        r.stderr_lines().len(),
        1,
        "{ctx}: stderr must be exactly one line"
    );
    assert!(
        r.stdout.trim().is_empty(),
        "{ctx}: nothing may be printed on stdout"
    );
    if let Some(n) = needle {
        assert!(
            r.stderr.to_lowercase().contains(&n.to_lowercase()),
            "{ctx}: the message must say {n:?}"
        );
    }
}

/// Every way of asking for help shows it and exits 0, `ckpt help --help`
/// too (clap took the flag for a subcommand's name and failed).
#[test]
fn every_way_of_asking_for_help_shows_it() {
    let cwd = TempDir::new("help");
    for args in [
        &["--help"][..],
        &["help"],
        &["help", "--help"],
        &["help", "-h"],
        &["help", "restart"],
        &["restart", "--help"],
    ] {
        let r = ckpt(cwd.path(), args.iter().copied());
        assert_eq!(r.code(), Some(0), "ckpt {args:?}: {r:?}");
        assert!(r.stdout.contains("Usage: ckpt"), "ckpt {args:?}: {r:?}");
        assert!(r.stderr.is_empty(), "ckpt {args:?}: {r:?}");
    }
}

#[test]
fn checkpoint_of_a_missing_process() {
    let cwd = TempDir::new("nopid");
    // Far above any pid_max.
    let r = ckpt(cwd.path(), ["checkpoint", "999999999"]);
    assert_clean_error("ckpt checkpoint 999999999", &r, Some("no such process"));

    // A pid in range that just ended.
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().unwrap();
    if !alive(pid as i32) {
        let r = ckpt(cwd.path(), ["checkpoint".to_string(), pid.to_string()]);
        assert_clean_error(
            &format!("ckpt checkpoint {pid} (exited)"),
            &r,
            Some("no such process"),
        );
    }
}

/// A process that ended but is not reaped yet (a zombie keeps its pid):
/// the checkpoint says it ended, not that it is not under ckpt.
#[test]
fn checkpoint_of_a_job_that_ended_unreaped_says_so() {
    require_shim();
    let cwd = TempDir::new("zombie");
    let mut child = ckpt_cmd(cwd.path(), ["run", "--", "true"])
        .spawn()
        .expect("spawn ckpt run true");
    let pid = child.id() as i32;
    let until = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_default()
        .rsplit_once(") ")
        .is_some_and(|(_, r)| r.starts_with('Z'))
    {
        assert!(Instant::now() < until, "ckpt run true never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = ckpt(cwd.path(), ["checkpoint".to_string(), pid.to_string()]);
    let _ = child.wait();
    assert_clean_error(
        &format!("ckpt checkpoint {pid} (a zombie)"),
        &r,
        Some("has ended"),
    );
}

#[test]
fn checkpoint_of_a_process_not_under_ckpt() {
    let cwd = TempDir::new("notck");
    let mut sleeper = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let pid = sleeper.id();
    let r = run_cmd(
        &mut ckpt_cmd(cwd.path(), ["checkpoint".to_string(), pid.to_string()]),
        CLI_TIMEOUT,
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let r = r.unwrap_or_else(|e| panic!("{e}"));
    assert_clean_error(
        &format!("ckpt checkpoint {pid} (plain sleep)"),
        &r,
        Some("not running under ckpt"),
    );
}

/// A program with a POSIX timer ckpt did not see made (a raw system
/// call): the checkpoint is refused with one clear line, no image is
/// written, and the program goes on as if nothing happened.
#[test]
fn checkpoint_of_a_program_with_an_unrecorded_timer_is_refused() {
    require_shim();
    let tmp = TempDir::new("rawtimer");
    let bin = compile_c("raw_timer.c", tmp.path());
    let images = tmp.sub("images");
    let mut p = Spawn::new(&bin, tmp.path()).under_ckpt(&images, "raw_timer");
    let until = Instant::now() + Duration::from_secs(20);
    while !p.stdout().contains("ready") {
        assert!(Instant::now() < until, "never ready: {}", p.describe());
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = checkpoint_into(tmp.path(), p.child_pid() as i64, &images);
    assert_clean_error(
        "checkpoint with a raw timer",
        &r,
        Some("timers were not recorded"),
    );
    let images_written = std::fs::read_dir(&images).map_or(0, |d| d.count());
    assert_eq!(images_written, 0, "no image may be left");
    let st = p.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(st.success(), "{}", p.describe());
    assert_eq!(p.stdout(), "ready\nticked: 1\n", "{}", p.describe());
}

/// `refused_state.c WHAT` under ckpt: its checkpoint is refused in one
/// line saying `needle`, leaves no image, and the program goes on intact.
fn refused_state(what: &str, needle: &str) {
    require_shim();
    let tmp = TempDir::new(&format!("refused-{what}"));
    let bin = compile_c("refused_state.c", tmp.path());
    let images = tmp.sub("images");
    let mut p = Spawn::new(&bin, tmp.path())
        .arg(what)
        .under_ckpt(&images, what);
    let until = Instant::now() + Duration::from_secs(20);
    while !p.stdout().contains("ready") {
        if p.stdout().contains("unsupported") {
            eprintln!("{}: nothing to check here", p.stdout().trim());
            return;
        }
        assert!(Instant::now() < until, "never ready: {}", p.describe());
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = checkpoint_into(tmp.path(), p.child_pid() as i64, &images);
    assert_clean_error(&format!("checkpoint of {what}"), &r, Some(needle));
    let images_written = std::fs::read_dir(&images).map_or(0, |d| d.count());
    assert_eq!(images_written, 0, "no image may be left");
    let st = p.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(st.success(), "{}", p.describe());
    assert_eq!(p.stdout(), "ready\nintact\n", "{}", p.describe());
}

/// memfd_secret memory: the image writer cannot read it (the kernel keeps
/// it from every other process) and an image would hold the secret in
/// plain text. Before, the checkpoint stored it silently and the restart
/// died of SIGBUS.
#[test]
fn checkpoint_of_a_program_holding_secret_memory_is_refused() {
    refused_state("secret", "memfd_secret");
}

/// A program that made a mount namespace of its own: its paths name
/// other files outside it. Before, the restart wrote what the program had
/// written to its own tmpfs over the host's file of that path.
#[test]
fn checkpoint_of_a_program_in_a_mount_namespace_of_its_own_is_refused() {
    refused_state("mountns", "mount namespace of its own");
}

/// A thread with syscall user dispatch on (prctl, and syscall(SYS_prctl)):
/// ckpt can neither stop it safely (while its selector says "block" its
/// own system calls there would be trapped) nor turn it on again after a
/// restart. Before, it came back off, silently (sweep D1-11).
#[test]
fn checkpoint_of_a_program_with_syscall_user_dispatch_is_refused() {
    refused_state("dispatch", "syscall user dispatch");
    refused_state("dispatch-raw", "syscall user dispatch");
}

/// What a restart could not bring back — a pipe to a process outside the
/// job — is told when the checkpoint is taken, on stderr; stdout stays the
/// image path alone. A child is part of the job (a tree image).
#[test]
fn checkpoint_warns_about_what_a_restart_cannot_bring_back() {
    require_shim();
    let tmp = TempDir::new("losses");
    let bin = compile_c("waiter.c", tmp.path());
    let ctl = tmp.sub("ctl");
    let images = tmp.sub("images");
    let mut p = [0i32; 2];
    // SAFETY: pipe into a local array.
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
    // The waiter, exec'd by a shell that left it a child (`sleep 3`).
    let script = format!("sleep 3 & exec {} {}", bin.display(), ctl.display());
    let sh = std::path::PathBuf::from("/bin/sh");
    let mut run = Spawn::new(&sh, tmp.path())
        .arg("-c")
        .arg(&script)
        .inherit_fd(p[1], 7)
        .under_ckpt(&images, "waiter with a pipe");
    // SAFETY: closing our copy of the write end after the spawn; the read
    // end stays open here until after the checkpoint, so the program's
    // end leads to another process (a pipe whose reader is gone would
    // come back exactly, as one giving EPIPE).
    unsafe {
        libc::close(p[1]);
    }
    let kv =
        wait_marker(&mut run, &ctl.join("ready"), READY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let pid = kv_num(&kv, "pid");
    let r = checkpoint_into(tmp.path(), pid as i64, &images);
    // SAFETY: closing our read end, now that the checkpoint is taken.
    unsafe {
        libc::close(p[0]);
    }
    touch(&ctl.join("go"));
    let _ = run.wait(EXIT_TIMEOUT);
    assert!(r.status.success(), "{r:?}");
    assert_eq!(r.stdout.lines().count(), 1, "stdout: {:?}", r.stdout);
    assert!(
        r.stderr.contains("descriptor 7 (pipe:") && r.stderr.contains("cannot come back"),
        "stderr: {:?}",
        r.stderr
    );
    // The child is part of the job: the image is a tree that holds it.
    let tree = std::path::PathBuf::from(r.stdout.trim());
    let manifest = std::fs::read(tree.join("manifest")).unwrap_or_default();
    assert!(
        manifest.windows(5).any(|w| w == b"sleep"),
        "{} holds no sleep process; stderr: {:?}",
        tree.display(),
        r.stderr
    );
}

/// Another user's process: as root, ask as `nobody` about a root process
/// that runs under ckpt; as another user, ask about pid 1.
#[test]
fn checkpoint_of_another_users_process() {
    // SAFETY: getuid never fails.
    let uid = unsafe { libc::getuid() };
    let tmp = TempDir::new("perm");
    if uid != 0 {
        let r = ckpt(tmp.path(), ["checkpoint", "1"]);
        assert_clean_error(
            "ckpt checkpoint 1 (as a non-root user)",
            &r,
            Some("permission denied"),
        );
        return;
    }
    require_shim();
    let bin = compile_c("waiter.c", tmp.path());
    let ctl = tmp.sub("ctl");
    let images = tmp.sub("images");
    let mut run = Spawn::new(&bin, tmp.path())
        .arg(&ctl)
        .under_ckpt(&images, "waiter (root, ckpt run)");
    let kv =
        wait_marker(&mut run, &ctl.join("ready"), READY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let pid = kv_num(&kv, "pid") as i32;
    run.adopt(pid);
    let mut cmd = ckpt_cmd(Path::new("/"), ["checkpoint".to_string(), pid.to_string()]);
    cmd.uid(65534).gid(65534).env_remove("CKPT_RUNTIME_DIR");
    let r = run_cmd(&mut cmd, CLI_TIMEOUT);
    touch(&ctl.join("go"));
    let _ = run.wait(EXIT_TIMEOUT);
    match r {
        Err(e) if e.contains("cannot start") => {
            eprintln!("skipped: `nobody` cannot run {}: {e}", ckpt_bin().display());
        }
        Err(e) => panic!("{e}"),
        Ok(r) => assert_clean_error(
            &format!("ckpt checkpoint {pid} (a root process, asked as nobody)"),
            &r,
            Some("permission denied"),
        ),
    }
}

#[test]
fn checkpoint_with_a_bad_pid_argument_does_not_panic() {
    let cwd = TempDir::new("badarg");
    for arg in ["notapid", "-5", "0", ""] {
        let r = ckpt(cwd.path(), ["checkpoint", arg]);
        let ctx = format!("ckpt checkpoint {arg:?}: {r:?}");
        assert!(!r.stderr.contains("panicked"), "{ctx}");
        assert!(
            r.code().is_some_and(|c| c != 0),
            "{ctx}: must fail with an exit status"
        );
        assert!(!r.stderr.trim().is_empty(), "{ctx}: must say why");
    }
}

#[test]
fn inspect_of_missing_empty_and_garbage_files() {
    let tmp = TempDir::new("insp");
    let missing = tmp.path().join("no-such.img");
    let empty = tmp.path().join("empty.img");
    std::fs::write(&empty, b"").unwrap();
    let garbage = tmp.path().join("garbage.img");
    let mut g = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..8192 {
        x = x.wrapping_mul(1103515245).wrapping_add(12345);
        g.push((x >> 16) as u8);
    }
    std::fs::write(&garbage, &g).unwrap();
    let text = tmp.path().join("text.img");
    std::fs::write(&text, "this is not an image\n").unwrap();

    for (name, p) in [
        ("missing", &missing),
        ("empty", &empty),
        ("garbage", &garbage),
        ("text", &text),
    ] {
        for json in [false, true] {
            let r = inspect(p, json);
            assert_clean_error(&format!("ckpt inspect {name} (json={json})"), &r, None);
        }
    }
    // A directory is not an image either.
    let r = inspect(tmp.path(), true);
    assert_clean_error("ckpt inspect DIRECTORY", &r, None);
}

/// A valid image made with the image module (independent of the shim).
#[test]
fn inspect_refuses_every_damaged_copy_of_a_synthetic_image() {
    let tmp = TempDir::new("syn");
    let meta = ckpt::image::Meta {
        writer: "integration-test".into(),
        seq: 4,
        process: ckpt::image::Process {
            pid: 4242,
            cwd: "/somewhere".into(),
            umask: 0o22,
            ckpt_signal: 62,
            ..Default::default()
        },
        ..Default::default()
    };
    let bytes = ckpt::image::build(&meta).expect("build a synthetic image");
    let good = tmp.path().join("good.img");
    std::fs::write(&good, &bytes).unwrap();
    let r = inspect(&good, true);
    assert_eq!(
        r.code(),
        Some(0),
        "inspect of a valid synthetic image: {r:?}"
    );
    let j: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("inspect --json: {e}: {}", r.stdout));
    assert_eq!(at(&j, "process.pid").as_i64(), Some(4242), "{j}");
    assert_eq!(at(&j, "seq").as_u64(), Some(4), "{j}");
    assert_eq!(at(&j, "process.umask").as_u64(), Some(0o22), "{j}");
    assert_eq!(at(&j, "writer").as_str(), Some("integration-test"), "{j}");
    assert_eq!(
        at(&j, "image.file_bytes").as_u64(),
        Some(bytes.len() as u64),
        "{j}"
    );
    assert_eq!(
        at(&j, "image.format_version").as_u64(),
        Some(ckpt::image::FORMAT_VERSION as u64),
        "{j}"
    );
    damaged_copies_are_refused(
        &tmp,
        &good,
        &bytes,
        at(&j, "image.meta_bytes").as_u64().unwrap_or(0),
    );
}

/// A real image written by a process under ckpt.
#[test]
fn inspect_refuses_every_damaged_copy_of_a_real_image() {
    require_shim();
    let tmp = TempDir::new("real");
    let bin = compile_c("waiter.c", tmp.path());
    let ctl = tmp.sub("ctl");
    let images = tmp.sub("images");
    let mut run = Spawn::new(&bin, tmp.path())
        .arg(&ctl)
        .under_ckpt(&images, "waiter (ckpt run)");
    let kv =
        wait_marker(&mut run, &ctl.join("ready"), READY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let pid = kv_num(&kv, "pid") as i32;
    run.adopt(pid);
    let image =
        checkpoint(pid, Some(&images)).unwrap_or_else(|e| panic!("{e}\n{}", run.describe()));
    touch(&ctl.join("go"));
    let st = run.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(st.success(), "{}", run.describe());

    let bytes = std::fs::read(&image).unwrap();
    let r = inspect(&image, false);
    assert_eq!(r.code(), Some(0), "inspect (text) of a good image: {r:?}");
    assert!(
        !r.stdout.trim().is_empty(),
        "inspect (text) printed nothing"
    );
    let j = inspect_json(&image).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(at(&j, "process.pid").as_i64(), Some(pid as i64));
    damaged_copies_are_refused(
        &tmp,
        &image,
        &bytes,
        at(&j, "image.meta_bytes").as_u64().unwrap_or(0),
    );
}

fn inspect(p: &Path, json: bool) -> CmdOut {
    let mut args = vec!["inspect".as_ref(), p.as_os_str()];
    if json {
        args.push("--json".as_ref());
    }
    let mut c = ckpt_cmd(Path::new("/"), args);
    let t = Instant::now();
    let r = run_cmd(&mut c, CLI_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(t.elapsed() < Duration::from_secs(15));
    r
}

/// Truncations and bit flips of `bytes` (a good image, `meta_len` bytes of
/// metadata where its header says) are each refused cleanly.
fn damaged_copies_are_refused(tmp: &TempDir, good: &Path, bytes: &[u8], meta_len: u64) {
    let header = ckpt::image::HEADER_LEN;
    let n = bytes.len();
    assert!(n > header, "{} is only {n} bytes", good.display());
    let mut variants: Vec<(String, Vec<u8>)> = vec![
        ("first 10 bytes".into(), bytes[..10].to_vec()),
        (
            "header only, minus one byte".into(),
            bytes[..header - 1].to_vec(),
        ),
        ("header only".into(), bytes[..header].to_vec()),
        ("half".into(), bytes[..n / 2].to_vec()),
        ("all but the last byte".into(), bytes[..n - 1].to_vec()),
    ];
    let mut flip = |name: &str, off: usize| {
        if off < n {
            let mut v = bytes.to_vec();
            v[off] ^= 0x10;
            variants.push((format!("bit flipped at {off} ({name})"), v));
        }
    };
    flip("magic", 0);
    flip("version", 8);
    flip("header field", 30);
    flip("header checksum", 84);
    if meta_len > 0 {
        let m = meta_len as usize;
        let at = ckpt::image::Header::decode(bytes)
            .expect("a good image decodes")
            .meta_offset as usize;
        flip("first metadata byte", at);
        flip("middle of the metadata", at + m / 2);
        flip("last metadata byte", at + m - 1);
    } else {
        flip("just past the header", header);
        flip("middle", n / 2);
    }
    let mut failures = Vec::new();
    for (i, (name, v)) in variants.iter().enumerate() {
        let p: PathBuf = tmp.path().join(format!("damaged-{i}.img"));
        std::fs::write(&p, v).unwrap();
        for json in [false, true] {
            let r = inspect(&p, json);
            let ok = r.code() == Some(1)
                && r.stderr_lines().len() == 1
                && !r.stderr.contains("panicked")
                && r.stdout.trim().is_empty();
            if !ok {
                failures.push(format!(
                    "{name} (json={json}): status={} stderr={:?} stdout={:?}",
                    r.status,
                    r.stderr,
                    r.stdout.chars().take(200).collect::<String>()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "damaged copies of {} were not refused with exit 1 and one line:\n  {}",
        good.display(),
        failures.join("\n  ")
    );
}
