//! Issue acceptance 1: a C program builds known kernel state (files, dups,
//! threads, POSIX timers, signal handlers, cwd, umask, a resource limit);
//! `ckpt checkpoint` + `ckpt inspect --json` must report every piece of it
//! with the right values, and the program's output must equal a run without
//! ckpt, byte for byte.

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

const SIGINT: i64 = 2;
const SIGUSR1: i64 = 10;
const SIGUSR2: i64 = 12;
const SIGPIPE: i64 = 13;
const SA_SIGINFO: u64 = 4;
const SA_RESTART: u64 = 0x1000_0000;
const O_ACCMODE: i64 = 3;
const O_RDONLY: i64 = 0;
const O_WRONLY: i64 = 1;
const O_RDWR: i64 = 2;
const O_APPEND: i64 = 0o2000;
const O_CLOEXEC: i64 = 0o2000000;
const CLOCK_REALTIME: i64 = 0;
const CLOCK_MONOTONIC: i64 = 1;
const RLIMIT_CORE: i64 = 4;

fn bit(sig: i64) -> u64 {
    1u64 << (sig - 1)
}

#[test]
fn inspect_reports_the_programs_state() {
    require_shim();
    let tmp = TempDir::new("state");
    let bin = compile_c("state.c", tmp.path());
    let ctl_plain = tmp.sub("plain");
    let ctl = tmp.sub("ckpt");
    let images = tmp.sub("images");

    // The reference run goes on beside the run under ckpt.
    let mut plain = Spawn::new(&bin, tmp.path())
        .arg(&ctl_plain)
        .plain("state (plain)");
    // The checks name ckpt's signal as 62 (SIGRTMAX-2): ckpt is told to
    // take that one (its default is another).
    let mut run = Spawn::new(&bin, tmp.path())
        .arg(&ctl)
        .env("CKPT_SIGNAL", "62")
        .under_ckpt(&images, "state (ckpt run)");

    wait_marker(&mut plain, &ctl_plain.join("ready"), READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    touch(&ctl_plain.join("go"));

    let kv =
        wait_marker(&mut run, &ctl.join("ready"), READY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let pid = kv_num(&kv, "pid") as i32;
    run.adopt(pid);

    let image =
        checkpoint(pid, Some(&images)).unwrap_or_else(|e| panic!("{e}\n{}", run.describe()));
    let json = inspect_json(&image).unwrap_or_else(|e| panic!("{e}"));
    // What the kernel says, read while the program still waits.
    let proc_now = program_fds(pid).unwrap_or_else(|e| panic!("{e}"));

    let mut c = Checks::new();
    // The program starts with 0, 1, 2 only (see Spawn): ckpt's own
    // descriptors must not take the lowest numbers.
    c.eq(
        "the program's first open got fd 3",
        kv_num(&kv, "fd_open"),
        3,
    );
    check_image_header(&mut c, &json, &image);
    check_process(&mut c, &json, &kv, &bin, &ctl, pid);
    check_fds(&mut c, &json, &kv, &ctl);
    c.eq(
        "fd numbers and paths in the image vs /proc/PID/fd (less ckpt's own)",
        image_fds(&json),
        proc_now,
    );
    check_threads(&mut c, &json, &kv, pid);
    check_timers(&mut c, &json, &kv);
    check_signals(&mut c, &json, &kv);
    c.check(
        image.starts_with(&images),
        format!(
            "image {} is not in --dir {}",
            image.display(),
            images.display()
        ),
    );

    // Let both finish and compare their output.
    touch(&ctl.join("go"));
    let st = run.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let pst = plain.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    c.check(
        pst.success(),
        format!("plain run failed: {}", plain.describe()),
    );
    c.check(st.success(), format!("run under ckpt failed ({st})"));
    let (a, b) = (run.stdout_bytes(), plain.stdout_bytes());
    c.check(
        a == b,
        format!(
            "stdout under ckpt differs from the plain run: {}",
            diff_summary(&a, &b)
        ),
    );
    c.check(!a.is_empty(), "the program printed nothing");
    let json_text = serde_json::to_string_pretty(&json).unwrap_or_default();
    c.finish(&format!(
        "{}\n--- plain stdout ---\n{}\n--- inspect --json ---\n{}",
        run.describe(),
        plain.stdout(),
        json_text
    ));
}

fn check_image_header(c: &mut Checks, j: &Value, image: &Path) {
    let size = std::fs::metadata(image).map(|m| m.len()).unwrap_or(0);
    c.num("image.file_bytes", at(j, "image.file_bytes"), size as i64);
    c.check(
        at(j, "image.format_version").as_u64().unwrap_or(0) >= 1,
        format!("image.format_version = {}", at(j, "image.format_version")),
    );
    c.check(
        at(j, "image.meta_bytes").as_u64().unwrap_or(0) > 0,
        "image.meta_bytes must be > 0",
    );
    c.check(
        at(j, "image.data_bytes").is_u64(),
        "image.data_bytes must be a number",
    );
    let p = at(j, "image.path").as_str().unwrap_or("");
    let same = std::fs::canonicalize(p).ok() == std::fs::canonicalize(image).ok();
    c.check(same, format!("image.path {p:?} is not {}", image.display()));
    c.check(
        at(j, "writer").as_str().is_some_and(|s| !s.is_empty()),
        "writer must be a non-empty string",
    );
    c.num("seq of the first checkpoint", at(j, "seq"), 1);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let created = at(j, "created_unix_ms").as_u64().unwrap_or(0);
    c.check(
        created <= now_ms && created + 120_000 >= now_ms,
        format!("created_unix_ms {created} is not within the last two minutes (now {now_ms})"),
    );
    c.check(at(j, "freeze_us").is_u64(), "freeze_us must be a number");
    c.check(at(j, "regions").is_array(), "regions must be an array");
    c.check(at(j, "itimers").is_array(), "itimers must be an array");
}

fn check_process(
    c: &mut Checks,
    j: &Value,
    kv: &HashMap<String, String>,
    bin: &Path,
    ctl: &Path,
    pid: i32,
) {
    c.num("process.pid", at(j, "process.pid"), pid as i64);
    c.str(
        "process.cwd",
        at(j, "process.cwd"),
        &ctl.join("work").to_string_lossy(),
    );
    c.str(
        "process.cwd (as the program's getcwd)",
        at(j, "process.cwd"),
        &kv["cwd"],
    );
    c.num("process.umask", at(j, "process.umask"), 0o027);
    c.str("process.exe", at(j, "process.exe"), &bin.to_string_lossy());
    c.str("process.comm", at(j, "process.comm"), "state");
    let cmdline: Vec<String> = arr(j, "process.cmdline")
        .iter()
        .map(|v| v.as_str().unwrap_or("?").to_string())
        .collect();
    c.eq(
        "process.cmdline",
        cmdline,
        vec![
            bin.to_string_lossy().into_owned(),
            ctl.to_string_lossy().into_owned(),
        ],
    );
    c.num("process.ckpt_signal", at(j, "process.ckpt_signal"), 62);
    let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.to_string()))
        .and_then(|r| {
            r.split_whitespace()
                .nth(1)
                .and_then(|x| x.parse::<i64>().ok())
        });
    if let Some(ppid) = ppid {
        c.num("process.ppid", at(j, "process.ppid"), ppid);
    }
    let core = arr(j, "process.rlimits")
        .into_iter()
        .find(|r| r["resource"].as_i64() == Some(RLIMIT_CORE));
    match core {
        None => c.fail("process.rlimits has no RLIMIT_CORE (resource 4)"),
        Some(r) => {
            c.num("RLIMIT_CORE soft", &r["soft"], 0);
            c.eq(
                "RLIMIT_CORE set_by_program",
                r["set_by_program"].as_bool(),
                Some(true),
            );
            c.check(
                r["name"]
                    .as_str()
                    .is_some_and(|n| n.to_ascii_uppercase().contains("CORE")),
                format!("RLIMIT_CORE name = {}", r["name"]),
            );
        }
    }
    let nofile = arr(j, "process.rlimits")
        .into_iter()
        .find(|r| r["resource"].as_i64() == Some(7));
    match (nofile, nofile_soft(pid)) {
        (Some(r), Ok(soft)) => {
            c.num("RLIMIT_NOFILE soft", &r["soft"], soft as i64);
            c.eq(
                "RLIMIT_NOFILE set_by_program",
                r["set_by_program"].as_bool(),
                Some(false),
            );
        }
        (None, _) => c.fail("process.rlimits has no RLIMIT_NOFILE (resource 7)"),
        (_, Err(e)) => c.fail(e),
    }
}

fn check_fds(c: &mut Checks, j: &Value, kv: &HashMap<String, String>, ctl: &Path) {
    let work = ctl.join("work");
    let n = |k: &str| kv_num(kv, k);
    let flags = |e: &Value| e["flags"].as_i64().unwrap_or(-1);

    let want_path = |c: &mut Checks, fd: i64, e: &Value, p: &Path| {
        c.str(format!("fd {fd} path"), &e["path"], &p.to_string_lossy());
    };

    // open: O_RDWR, offset 37, shared with the F_DUPFD copy.
    let fd_open = n("fd_open");
    match fd_entry(j, fd_open) {
        None => c.fail(format!("fd {fd_open} (open) missing from the image")),
        Some(e) => {
            want_path(c, fd_open, e, &work.join("data_open.txt"));
            c.str(format!("fd {fd_open} kind"), &e["kind"], "file");
            c.str(format!("fd {fd_open} origin"), &e["origin"], "open");
            c.str(
                format!("fd {fd_open} opened_as"),
                &e["opened_as"],
                "data_open.txt",
            );
            c.num(format!("fd {fd_open} offset"), &e["offset"], 37);
            c.eq(
                format!("fd {fd_open} flags & O_ACCMODE"),
                flags(e) & O_ACCMODE,
                O_RDWR,
            );
            c.eq(format!("fd {fd_open} O_APPEND"), flags(e) & O_APPEND, 0);
            c.eq(
                format!("fd {fd_open} flags must not carry O_CLOEXEC"),
                flags(e) & O_CLOEXEC,
                0,
            );
            c.eq(
                format!("fd {fd_open} cloexec"),
                e["cloexec"].as_bool(),
                Some(false),
            );
            c.eq(
                format!("fd {fd_open} deleted"),
                e["deleted"].as_bool(),
                Some(false),
            );
            c.num(format!("fd {fd_open} size"), &e["size"], 100);
            c.eq(
                format!("fd {fd_open} mode"),
                e["mode"].as_u64(),
                Some(0o100640),
            );
            let open_flags = e["open_flags"].as_i64().unwrap_or(-1);
            c.check(
                open_flags >= 0
                    && open_flags & O_ACCMODE == O_RDWR
                    && open_flags & 0o100 != 0
                    && open_flags & 0o1000 != 0,
                format!(
                    "fd {fd_open} open_flags {} must be O_RDWR|O_CREAT|O_TRUNC as passed",
                    e["open_flags"]
                ),
            );
            c.check(
                e["dup_of"].is_null(),
                format!("fd {fd_open} dup_of must be null, is {}", e["dup_of"]),
            );
            // The lowest of a sharing group may name the other or nothing.
            c.check(
                e["shares_with"].is_null() || e["shares_with"].as_i64() == Some(n("fd_dupfd")),
                format!(
                    "fd {fd_open} shares_with {} must be null or the F_DUPFD copy",
                    e["shares_with"]
                ),
            );
            c.check(
                e["ino"].as_u64().unwrap_or(0) > 0,
                format!("fd {fd_open} ino must be set"),
            );
            c.check(
                e["mtime_ns"].as_i64().unwrap_or(0) > 0,
                format!("fd {fd_open} mtime_ns must be set"),
            );
            if let Ok(md) = std::fs::metadata(work.join("data_open.txt")) {
                use std::os::unix::fs::MetadataExt;
                c.num(format!("fd {fd_open} ino"), &e["ino"], md.ino() as i64);
                c.num(format!("fd {fd_open} dev"), &e["dev"], md.dev() as i64);
            }
        }
    }

    // The directory, O_CLOEXEC.
    let fd_dir = n("fd_dir");
    match fd_entry(j, fd_dir) {
        None => c.fail(format!("fd {fd_dir} (directory) missing from the image")),
        Some(e) => {
            want_path(c, fd_dir, e, &work.join("sub"));
            c.str(format!("fd {fd_dir} kind"), &e["kind"], "directory");
            c.str(format!("fd {fd_dir} origin"), &e["origin"], "open");
            c.eq(
                format!("fd {fd_dir} cloexec"),
                e["cloexec"].as_bool(),
                Some(true),
            );
            c.eq(
                format!("fd {fd_dir} flags & O_ACCMODE"),
                flags(e) & O_ACCMODE,
                O_RDONLY,
            );
        }
    }

    // openat: O_WRONLY|O_APPEND|O_CLOEXEC, 55 bytes written.
    let fd_openat = n("fd_openat");
    match fd_entry(j, fd_openat) {
        None => c.fail(format!("fd {fd_openat} (openat) missing from the image")),
        Some(e) => {
            want_path(c, fd_openat, e, &work.join("sub/data_openat.txt"));
            c.str(format!("fd {fd_openat} kind"), &e["kind"], "file");
            c.str(format!("fd {fd_openat} origin"), &e["origin"], "openat");
            c.str(
                format!("fd {fd_openat} opened_as"),
                &e["opened_as"],
                "data_openat.txt",
            );
            c.num(format!("fd {fd_openat} offset"), &e["offset"], 55);
            c.eq(
                format!("fd {fd_openat} flags & O_ACCMODE"),
                flags(e) & O_ACCMODE,
                O_WRONLY,
            );
            c.check(
                flags(e) & O_APPEND != 0,
                format!("fd {fd_openat} flags {:#o} must have O_APPEND", flags(e)),
            );
            c.eq(
                format!("fd {fd_openat} flags must not carry O_CLOEXEC"),
                flags(e) & O_CLOEXEC,
                0,
            );
            c.eq(
                format!("fd {fd_openat} cloexec"),
                e["cloexec"].as_bool(),
                Some(true),
            );
            c.eq(
                format!("fd {fd_openat} mode"),
                e["mode"].as_u64(),
                Some(0o100600),
            );
            c.num(format!("fd {fd_openat} size"), &e["size"], 55);
        }
    }

    // fopen "w+": O_RDWR, offset 7 after fflush + fseek.
    let fd_fopen = n("fd_fopen");
    match fd_entry(j, fd_fopen) {
        None => c.fail(format!("fd {fd_fopen} (fopen) missing from the image")),
        Some(e) => {
            want_path(c, fd_fopen, e, &work.join("data_fopen.txt"));
            c.str(format!("fd {fd_fopen} kind"), &e["kind"], "file");
            c.str(format!("fd {fd_fopen} origin"), &e["origin"], "fopen");
            c.num(format!("fd {fd_fopen} offset"), &e["offset"], 7);
            c.eq(
                format!("fd {fd_fopen} flags & O_ACCMODE"),
                flags(e) & O_ACCMODE,
                O_RDWR,
            );
            c.eq(
                format!("fd {fd_fopen} cloexec"),
                e["cloexec"].as_bool(),
                Some(false),
            );
            c.num(format!("fd {fd_fopen} size"), &e["size"], 20);
        }
    }

    // dup of the openat descriptor: shares offset and O_APPEND, not cloexec.
    let fd_dup = n("fd_dup");
    match fd_entry(j, fd_dup) {
        None => c.fail(format!("fd {fd_dup} (dup) missing from the image")),
        Some(e) => {
            want_path(c, fd_dup, e, &work.join("sub/data_openat.txt"));
            c.str(format!("fd {fd_dup} origin"), &e["origin"], "dup");
            c.num(format!("fd {fd_dup} dup_of"), &e["dup_of"], fd_openat);
            c.num(
                format!("fd {fd_dup} shares_with"),
                &e["shares_with"],
                fd_openat.min(fd_dup),
            );
            c.num(format!("fd {fd_dup} offset"), &e["offset"], 55);
            c.check(
                flags(e) & O_APPEND != 0,
                format!(
                    "fd {fd_dup} flags {:#o} must have O_APPEND (shared)",
                    flags(e)
                ),
            );
            c.eq(
                format!("fd {fd_dup} cloexec (dup clears it)"),
                e["cloexec"].as_bool(),
                Some(false),
            );
        }
    }

    // F_DUPFD copy of the open descriptor.
    let fd_dupfd = n("fd_dupfd");
    match fd_entry(j, fd_dupfd) {
        None => c.fail(format!("fd {fd_dupfd} (F_DUPFD) missing from the image")),
        Some(e) => {
            want_path(c, fd_dupfd, e, &work.join("data_open.txt"));
            c.str(format!("fd {fd_dupfd} origin"), &e["origin"], "fcntl_dupfd");
            c.num(format!("fd {fd_dupfd} dup_of"), &e["dup_of"], fd_open);
            c.num(
                format!("fd {fd_dupfd} shares_with"),
                &e["shares_with"],
                fd_open,
            );
            c.num(format!("fd {fd_dupfd} offset (shared)"), &e["offset"], 37);
            c.eq(
                format!("fd {fd_dupfd} flags & O_ACCMODE"),
                flags(e) & O_ACCMODE,
                O_RDWR,
            );
            c.eq(
                format!("fd {fd_dupfd} cloexec"),
                e["cloexec"].as_bool(),
                Some(false),
            );
        }
    }
    // The openat descriptor is the lowest of its group (with its dup).
    if let Some(e) = fd_entry(j, fd_openat) {
        c.check(
            e["shares_with"].is_null() || e["shares_with"].as_i64() == Some(fd_dup),
            format!(
                "fd {fd_openat} shares_with {} must be null or its dup {fd_dup}",
                e["shares_with"]
            ),
        );
    }
    // Descriptors that share nothing say so.
    for k in ["fd_dir", "fd_fopen", "fd_pipe_r", "fd_pipe_w"] {
        if let Some(e) = fd_entry(j, n(k)) {
            c.check(
                e["shares_with"].is_null(),
                format!(
                    "fd {} ({k}) shares nothing: shares_with {}",
                    n(k),
                    e["shares_with"]
                ),
            );
        }
    }

    // The pipe.
    let (pr, pw) = (n("fd_pipe_r"), n("fd_pipe_w"));
    for (fd, peer, acc) in [(pr, pw, O_RDONLY), (pw, pr, O_WRONLY)] {
        match fd_entry(j, fd) {
            None => c.fail(format!("fd {fd} (pipe) missing from the image")),
            Some(e) => {
                c.str(format!("fd {fd} kind"), &e["kind"], "pipe");
                c.str(format!("fd {fd} origin"), &e["origin"], "pipe");
                c.num(format!("fd {fd} pipe_peer"), &e["pipe_peer"], peer);
                c.eq(
                    format!("fd {fd} flags & O_ACCMODE"),
                    flags(e) & O_ACCMODE,
                    acc,
                );
                c.check(
                    e["path"].as_str().is_some_and(|p| p.starts_with("pipe:[")),
                    format!("fd {fd} path {} must be pipe:[ino]", e["path"]),
                );
            }
        }
    }

    // Standard descriptors came from the test: inherited.
    match fd_entry(j, 0) {
        None => c.fail("fd 0 missing from the image"),
        Some(e) => {
            c.str("fd 0 path", &e["path"], "/dev/null");
            c.str("fd 0 kind", &e["kind"], "char_device");
            c.str("fd 0 origin", &e["origin"], "inherited");
        }
    }
    match fd_entry(j, 1) {
        None => c.fail("fd 1 missing from the image"),
        Some(e) => {
            c.str(
                "fd 1 kind (stdout is a pipe to the test)",
                &e["kind"],
                "pipe",
            );
            c.str("fd 1 origin", &e["origin"], "inherited");
            c.check(
                e["pipe_peer"].is_null(),
                format!(
                    "fd 1's other end is not in the process: pipe_peer {}",
                    e["pipe_peer"]
                ),
            );
        }
    }
}

fn check_threads(c: &mut Checks, j: &Value, kv: &HashMap<String, String>, pid: i32) {
    let threads = arr(j, "threads");
    let tid_a = kv_num(kv, "tid_a");
    let tid_b = kv_num(kv, "tid_b");

    let known: Vec<&&Value> = threads
        .iter()
        .filter(|t| matches!(t["origin"].as_str(), Some("main") | Some("pthread_create")))
        .collect();
    c.eq(
        "number of threads with origin main or pthread_create",
        known.len(),
        3,
    );
    let frozen = threads
        .iter()
        .filter(|t| t["state"].as_str() == Some("frozen"))
        .count();
    c.check(
        frozen >= 3,
        format!("at least 3 threads must be frozen, {frozen} are"),
    );
    // Besides them only ckpt's SIGEV_THREAD helper (which replaces
    // glibc's) or one short-lived notification thread may be listed.
    let others: Vec<&&Value> = threads
        .iter()
        .filter(|t| {
            !matches!(
                t["origin"].as_str(),
                Some("main") | Some("pthread_create") | Some("timer_helper")
            )
        })
        .collect();
    c.check(
        others.len() <= 2,
        format!("unexpected extra threads: {others:?}"),
    );
    for t in &others {
        c.str(
            format!("extra thread {} origin", t["tid"]),
            &t["origin"],
            "unknown",
        );
    }
    // Each thread's mask is what the kernel says (SigBlk), less the
    // checkpoint signal; a thread that blocks every signal shows them all.
    // The timer helper sits in sigtimedwait, which unblocks SIGTIMER in
    // SigBlk for as long as it waits.
    for t in threads
        .iter()
        .filter(|t| t["origin"].as_str() != Some("timer_helper"))
    {
        let tid = t["tid"].as_i64().unwrap_or(-1);
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap_or_default();
        let sigblk = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
        if let Some(k) = sigblk {
            c.eq(
                format!(
                    "thread {tid} ({}) sigmask vs /proc SigBlk less signal 62",
                    t["origin"]
                ),
                t["sigmask"].as_u64(),
                Some(k & !bit(62)),
            );
        }
    }
    // The image must agree with the kernel's task list (program threads).
    let tasks: Vec<i64> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for t in &threads {
        let tid = t["tid"].as_i64().unwrap_or(-1);
        c.check(
            tasks.contains(&tid),
            format!("thread tid {tid} in the image is not a task of the process ({tasks:?})"),
        );
    }
    let mut ids: Vec<i64> = threads.iter().filter_map(|t| t["id"].as_i64()).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    c.eq("logical thread ids are unique", ids.len(), n);

    match thread_by_tid(j, pid as i64) {
        None => c.fail("the main thread (tid = pid) is missing"),
        Some(t) => {
            c.num("main thread id", &t["id"], 1);
            c.str("main thread origin", &t["origin"], "main");
            c.str("main thread state", &t["state"], "frozen");
            c.str("main thread name", &t["name"], "state");
            c.eq(
                "main thread sigmask has no SIGINT",
                t["sigmask"].as_u64().map(|m| m & bit(SIGINT)),
                Some(0),
            );
        }
    }
    match thread_by_tid(j, tid_a) {
        None => c.fail(format!("thread A (tid {tid_a}) is missing")),
        Some(t) => {
            c.num("thread A logical id (first pthread_create)", &t["id"], 2);
            c.str("thread A origin", &t["origin"], "pthread_create");
            c.str("thread A state", &t["state"], "frozen");
            c.str("thread A name", &t["name"], "worker-a");
            c.eq("thread A detached", t["detached"].as_bool(), Some(true));
            c.num("thread A stack_size", &t["stack_size"], 256 * 1024);
            c.num("thread A guard_size", &t["guard_size"], 4096);
            c.num(
                "thread A start_routine",
                &t["start_routine"],
                kv_u64(kv, "fn_thread_a") as i64,
            );
            c.num("thread A arg", &t["arg"], 0);
            c.eq(
                "thread A sigmask has no SIGINT",
                t["sigmask"].as_u64().map(|m| m & bit(SIGINT)),
                Some(0),
            );
            c.check(
                t["altstack"].is_null(),
                format!("thread A altstack must be null, is {}", t["altstack"]),
            );
        }
    }
    match thread_by_tid(j, tid_b) {
        None => c.fail(format!("thread B (tid {tid_b}) is missing")),
        Some(t) => {
            c.num("thread B logical id (second pthread_create)", &t["id"], 3);
            c.str("thread B origin", &t["origin"], "pthread_create");
            c.str("thread B state", &t["state"], "frozen");
            c.str("thread B name", &t["name"], "worker-b");
            c.eq("thread B detached", t["detached"].as_bool(), Some(false));
            c.num("thread B stack_size", &t["stack_size"], 1024 * 1024);
            c.num(
                "thread B start_routine",
                &t["start_routine"],
                kv_u64(kv, "fn_thread_b") as i64,
            );
            c.eq(
                "thread B sigmask has SIGINT",
                t["sigmask"].as_u64().map(|m| m & bit(SIGINT)),
                Some(bit(SIGINT)),
            );
        }
    }
    for t in &threads {
        if t["state"].as_str() == Some("frozen") {
            c.eq(
                format!(
                    "thread {} sigmask must not show the checkpoint signal 62",
                    t["tid"]
                ),
                t["sigmask"].as_u64().map(|m| m & bit(62)),
                Some(0),
            );
        }
    }
}

fn check_timers(c: &mut Checks, j: &Value, kv: &HashMap<String, String>) {
    let timers = arr(j, "timers");
    c.eq("number of timers", timers.len(), 3);
    let by_id = |id: u64| timers.iter().find(|t| t["timer_id"].as_u64() == Some(id));

    match by_id(kv_u64(kv, "timer_sig")) {
        None => c.fail(format!(
            "the SIGEV_SIGNAL timer (timer_id {}) is missing",
            kv["timer_sig"]
        )),
        Some(t) => {
            c.num("signal timer clock", &t["clock"], CLOCK_MONOTONIC);
            c.str("signal timer notify", &t["notify"], "signal");
            c.num("signal timer signo", &t["signo"], SIGUSR1);
            c.num("signal timer sigev_value", &t["sigev_value"], 111);
            c.num("signal timer interval_ns", &t["interval_ns"], 500_000_000);
            let rem = t["remaining_ns"].as_u64().unwrap_or(u64::MAX);
            c.check(
                rem > 0 && rem <= 500_000_000,
                format!("signal timer remaining_ns {rem} must be in (0, 500 ms]"),
            );
            c.check(
                t["target_thread"].is_null(),
                "signal timer target_thread must be null",
            );
        }
    }
    match by_id(kv_u64(kv, "timer_tid")) {
        None => c.fail(format!(
            "the SIGEV_THREAD_ID timer (timer_id {}) is missing",
            kv["timer_tid"]
        )),
        Some(t) => {
            c.num("thread-id timer clock", &t["clock"], CLOCK_REALTIME);
            c.str("thread-id timer notify", &t["notify"], "thread_id");
            c.num("thread-id timer signo", &t["signo"], SIGUSR2);
            c.num("thread-id timer sigev_value", &t["sigev_value"], 222);
            c.num(
                "thread-id timer interval_ns",
                &t["interval_ns"],
                2_000_000_000,
            );
            let rem = t["remaining_ns"].as_u64().unwrap_or(u64::MAX);
            c.check(
                rem > 0 && rem <= 2_000_000_000,
                format!("thread-id timer remaining_ns {rem} must be in (0, 2 s]"),
            );
            c.num(
                "thread-id timer target_thread (logical id of thread B)",
                &t["target_thread"],
                3,
            );
            c.num(
                "thread-id timer target_tid",
                &t["target_tid"],
                kv_num(kv, "tid_b"),
            );
        }
    }
    match by_id(kv_u64(kv, "timer_thr")) {
        None => c.fail(format!(
            "the SIGEV_THREAD timer (timer_id {}) is missing",
            kv["timer_thr"]
        )),
        Some(t) => {
            c.num("sigev_thread timer clock", &t["clock"], CLOCK_MONOTONIC);
            c.str("sigev_thread timer notify", &t["notify"], "thread");
            c.num(
                "sigev_thread timer function",
                &t["function"],
                kv_u64(kv, "fn_sigev") as i64,
            );
            c.num("sigev_thread timer sigev_value", &t["sigev_value"], 333);
            c.num(
                "sigev_thread timer interval_ns",
                &t["interval_ns"],
                600_000_000_000,
            );
            let rem = t["remaining_ns"].as_u64().unwrap_or(u64::MAX);
            c.check(
                rem > 500_000_000_000 && rem <= 600_000_000_000,
                format!("sigev_thread timer remaining_ns {rem} must be a little under 600 s"),
            );
        }
    }
}

fn check_signals(c: &mut Checks, j: &Value, kv: &HashMap<String, String>) {
    match signal_entry(j, SIGUSR2) {
        None => c.fail("SIGUSR2 missing from signals"),
        Some(s) => {
            c.str("SIGUSR2 name", &s["name"], "SIGUSR2");
            c.str("SIGUSR2 disposition", &s["disposition"], "handler");
            c.num(
                "SIGUSR2 handler",
                &s["handler"],
                kv_u64(kv, "fn_on_usr2") as i64,
            );
            let f = s["flags"].as_u64().unwrap_or(0);
            c.eq(
                "SIGUSR2 flags & (SA_SIGINFO|SA_RESTART)",
                f & (SA_SIGINFO | SA_RESTART),
                SA_SIGINFO | SA_RESTART,
            );
            c.eq(
                "SIGUSR2 mask has SIGINT",
                s["mask"].as_u64().map(|m| m & bit(SIGINT)),
                Some(bit(SIGINT)),
            );
        }
    }
    match signal_entry(j, SIGUSR1) {
        None => c.fail("SIGUSR1 missing from signals"),
        Some(s) => {
            c.str("SIGUSR1 disposition", &s["disposition"], "handler");
            c.num(
                "SIGUSR1 handler",
                &s["handler"],
                kv_u64(kv, "fn_on_usr1") as i64,
            );
            let f = s["flags"].as_u64().unwrap_or(0);
            c.eq("SIGUSR1 flags & SA_RESTART", f & SA_RESTART, SA_RESTART);
            c.eq("SIGUSR1 flags & SA_SIGINFO", f & SA_SIGINFO, 0);
        }
    }
    match signal_entry(j, SIGINT) {
        None => c.fail("SIGINT missing from signals"),
        Some(s) => {
            c.str("SIGINT disposition", &s["disposition"], "handler");
            c.num(
                "SIGINT handler",
                &s["handler"],
                kv_u64(kv, "fn_on_int") as i64,
            );
            // glibc's signal() has BSD semantics: SA_RESTART.
            c.eq(
                "SIGINT flags & SA_RESTART",
                s["flags"].as_u64().unwrap_or(0) & SA_RESTART,
                SA_RESTART,
            );
        }
    }
    match signal_entry(j, SIGPIPE) {
        None => c.fail("SIGPIPE missing from signals"),
        Some(s) => c.str("SIGPIPE disposition", &s["disposition"], "ignore"),
    }
    // Only the program's dispositions: the checkpoint signal is hidden.
    for s in arr(j, "signals") {
        let d = s["disposition"].as_str().unwrap_or("");
        c.check(
            matches!(d, "default" | "ignore" | "handler"),
            format!("signal {} has disposition {d:?}", s["signo"]),
        );
        if s["signo"].as_i64() == Some(62) {
            c.check(
                d == "default",
                format!("the checkpoint signal 62 must not show ckpt's handler: {s}"),
            );
        }
    }
}

/// Descriptors the program got from its parent are listed as "inherited",
/// with their path, offset and flags.
#[test]
fn inherited_descriptors_are_listed_as_inherited() {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::io::AsRawFd;
    require_shim();
    let tmp = TempDir::new("inh");
    let bin = compile_c("waiter.c", tmp.path());
    let ctl = tmp.sub("ctl");
    let images = tmp.sub("images");
    let file_path = tmp.path().join("inherited.txt");
    std::fs::write(&file_path, b"0123456789").unwrap();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(&file_path)
        .unwrap();
    file.seek(SeekFrom::Start(4)).unwrap();
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let mut run = Spawn::new(&bin, tmp.path())
        .arg(&ctl)
        .inherit_fd(file.as_raw_fd(), 20)
        .inherit_fd(devnull.as_raw_fd(), 21)
        .under_ckpt(&images, "waiter with fds 20, 21 (ckpt run)");
    drop(devnull);
    let kv =
        wait_marker(&mut run, &ctl.join("ready"), READY_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let pid = kv_num(&kv, "pid") as i32;
    run.adopt(pid);
    let image =
        checkpoint(pid, Some(&images)).unwrap_or_else(|e| panic!("{e}\n{}", run.describe()));
    let j = inspect_json(&image).unwrap_or_else(|e| panic!("{e}"));
    let proc_now = program_fds(pid).unwrap_or_else(|e| panic!("{e}"));
    touch(&ctl.join("go"));
    let st = run.wait(EXIT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));

    let mut c = Checks::new();
    c.check(st.success(), format!("waiter exited with {st}"));
    c.eq(
        "fd numbers and paths in the image vs /proc/PID/fd (less ckpt's own)",
        image_fds(&j),
        proc_now,
    );
    match fd_entry(&j, 20) {
        None => c.fail("inherited fd 20 is missing"),
        Some(e) => {
            c.str("fd 20 origin", &e["origin"], "inherited");
            c.str("fd 20 path", &e["path"], &file_path.to_string_lossy());
            c.str("fd 20 kind", &e["kind"], "file");
            c.num("fd 20 offset", &e["offset"], 4);
            let fl = e["flags"].as_i64().unwrap_or(0);
            c.eq("fd 20 access mode", fl & O_ACCMODE, O_RDWR);
            c.check(
                fl & O_APPEND != 0,
                format!("fd 20 flags {fl:#o} must have O_APPEND"),
            );
            c.eq("fd 20 cloexec", e["cloexec"].as_bool(), Some(false));
            c.num("fd 20 size", &e["size"], 10);
        }
    }
    match fd_entry(&j, 21) {
        None => c.fail("inherited fd 21 is missing"),
        Some(e) => {
            c.str("fd 21 origin", &e["origin"], "inherited");
            c.str("fd 21 path", &e["path"], "/dev/null");
            c.str("fd 21 kind", &e["kind"], "char_device");
        }
    }
    // Every descriptor of this program that it did not open itself (it
    // opens nothing that stays open) came from its parent.
    for e in arr(&j, "fds") {
        if !matches!(e["fd"].as_i64(), Some(20) | Some(21)) {
            c.str(format!("fd {} origin", e["fd"]), &e["origin"], "inherited");
        }
    }
    c.finish(&format!(
        "{}\n{}",
        run.describe(),
        serde_json::to_string_pretty(&at(&j, "fds")).unwrap_or_default()
    ));
}
