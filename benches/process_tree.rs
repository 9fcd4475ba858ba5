//! A job of many processes (issue 7): how long `ckpt checkpoint` and
//! `ckpt restart` of the whole tree take as the user waits for them, per
//! process, against starting the same tree plainly (fork and pipes,
//! measured in the same run). Medians over ROUNDS.
//!
//! The program (`programs/tree.c`): a root with N-1 workers on pipes. The
//! stall is the longest gap the root's own loop saw during the checkpoint;
//! restart is timed until every worker of the restarted tree answered the
//! root.
//!
//! Then incremental checkpoints of a job: 4 processes holding 256 MiB of
//! random memory each (`CKPT_BENCH_TREE_MIB` for another size) are
//! checkpointed, change 1% (a word in every 100th page) and are
//! checkpointed again: the second checkpoint's time as the user waits
//! for it, the stall the root felt and the processes' own image bytes,
//! against the first (whole) checkpoint of the same round.

use std::io::{BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{
    checkpoint_timed, ckpt, compile, median, run_and_checkpoint, start_ready, wait_line,
    Checkpointed,
};

const ROUNDS: usize = 5;

struct Round {
    start_ms: f64,
    checkpoint_ms: f64,
    stall_ms: f64,
    restart_ms: f64,
}

fn round(prog: &Path, dir: &Path, n: usize) -> Round {
    // The reference: the same tree started plainly.
    let t = Instant::now();
    let mut plain = Command::new(prog)
        .arg(n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("plain run");
    let mut pout = BufReader::new(plain.stdout.take().unwrap());
    wait_line(&mut pout, "ready");
    let start_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(plain.stdin.take());
    plain.wait().ok();

    let Checkpointed {
        mut child,
        image,
        checkpoint_ms,
        stall_ms,
    } = run_and_checkpoint(prog, &[n.to_string()], dir);
    // SIGKILL the whole job.
    kill_tree(child.id() as i32);
    child.wait().ok();

    let t = Instant::now();
    let mut r = Command::new(ckpt())
        .arg("restart")
        .arg(&image)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ckpt restart");
    let mut stdin = r.stdin.take().unwrap();
    stdin.write_all(b"x").unwrap();
    let mut rout = BufReader::new(r.stdout.take().unwrap());
    let pong = wait_line(&mut rout, "pong");
    let restart_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(
        pong.trim(),
        format!("pong {}", n - 1),
        "every worker answers"
    );
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    while r.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    r.kill().ok();
    std::fs::remove_dir_all(&image).ok();
    Round {
        start_ms,
        checkpoint_ms,
        stall_ms,
        restart_ms,
    }
}

/// SIGKILL `pid` and its descendants (children first found, then killed).
fn kill_tree(pid: i32) {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                all.extend(
                    kids.split_whitespace()
                        .filter_map(|k| k.parse::<i32>().ok()),
                );
            }
        }
        i += 1;
    }
    for p in all {
        // SAFETY: kill with a pid and a signal.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

struct IncrRound {
    whole_ms: f64,
    incr_ms: f64,
    whole_stall_ms: f64,
    incr_stall_ms: f64,
    whole_bytes: f64,
    incr_bytes: f64,
}

/// Bytes of the processes' own images in a tree (`PID.img`, not the
/// earlier images linked beside them).
fn own_bytes(tree: &Path) -> f64 {
    std::fs::read_dir(tree)
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".img")
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|e| e.metadata().map(|m| m.len() as f64).unwrap_or(0.0))
        .sum()
}

/// Checkpoint the job `pid` (its root reading `input`, writing `out`):
/// its processes' own image bytes, the wall time and the root's stall.
fn timed(
    dir: &Path,
    pid: u32,
    out: &mut impl std::io::BufRead,
    input: &mut std::process::ChildStdin,
) -> (f64, f64, f64) {
    std::thread::sleep(Duration::from_millis(50));
    input.write_all(b"r").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let (tree, ms) = checkpoint_timed(dir, pid);
    std::thread::sleep(Duration::from_millis(20));
    input.write_all(b"s").unwrap();
    let line = wait_line(out, "stall ");
    let stall = line["stall ".len()..].trim().parse::<f64>().unwrap() / 1e3;
    (own_bytes(&tree), ms, stall)
}

fn incremental_round(prog: &Path, dir: &Path, n: usize, mib: usize) -> IncrRound {
    std::fs::remove_dir_all(dir).ok();
    std::fs::create_dir_all(dir).unwrap();
    let (mut child, mut out, mut input) =
        start_ready(prog, &[n.to_string(), mib.to_string()], dir, &[], &[]);
    let pid = child.id();
    let (whole_bytes, whole_ms, whole_stall_ms) = timed(dir, pid, &mut out, &mut input);
    input.write_all(b"c").unwrap();
    wait_line(&mut out, "changed");
    let (incr_bytes, incr_ms, incr_stall_ms) = timed(dir, pid, &mut out, &mut input);
    drop(input);
    kill_tree(child.id() as i32);
    child.wait().ok();
    IncrRound {
        whole_ms,
        incr_ms,
        whole_stall_ms,
        incr_stall_ms,
        whole_bytes,
        incr_bytes,
    }
}

fn main() {
    let dir = std::env::temp_dir().join(format!("ckpt-bench-tree-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prog = dir.join("tree");
    compile("tree", &prog);
    println!(
        "{:<14} {:>9} {:>9} {:>12} {:>10} {:>12} {:>9} {:>12}",
        "processes",
        "start ms",
        "ckpt ms",
        "ckpt/start",
        "restart ms",
        "restart/start",
        "stall ms",
        "ms/process"
    );
    for n in [2usize, 16, 64] {
        let rounds: Vec<Round> = (0..ROUNDS).map(|_| round(&prog, &dir, n)).collect();
        let m = |f: fn(&Round) -> f64| median(&mut rounds.iter().map(f).collect::<Vec<_>>());
        let (start, ck, rs, stall) = (
            m(|r| r.start_ms),
            m(|r| r.checkpoint_ms),
            m(|r| r.restart_ms),
            m(|r| r.stall_ms),
        );
        println!(
            "{:<14} {:>9.1} {:>9.1} {:>11.1}x {:>10.1} {:>12.1}x {:>9.1} {:>12.2}",
            n,
            start,
            ck,
            ck / start.max(0.001),
            rs,
            rs / start.max(0.001),
            stall,
            (ck + rs) / n as f64
        );
    }
    let mib: usize = std::env::var("CKPT_BENCH_TREE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let n = 4;
    let images = dir.join("incremental");
    if common::fits((n * mib) as u64, &dir) {
        println!(
            "\n{:<22} {:>9} {:>9} {:>10} {:>11} {:>11} {:>10} {:>10} {:>11}",
            "incremental job",
            "whole ms",
            "incr ms",
            "incr/whole",
            "whole stall",
            "incr stall",
            "whole MiB",
            "incr MiB",
            "size ratio"
        );
        let rounds: Vec<IncrRound> = (0..ROUNDS)
            .map(|_| incremental_round(&prog, &images, n, mib))
            .collect();
        let m = |f: fn(&IncrRound) -> f64| median(&mut rounds.iter().map(f).collect::<Vec<_>>());
        let (w, i) = (m(|r| r.whole_ms), m(|r| r.incr_ms));
        let (wb, ib) = (m(|r| r.whole_bytes), m(|r| r.incr_bytes));
        println!(
            "{:<22} {:>9.1} {:>9.1} {:>9.3}x {:>11.1} {:>11.1} {:>10.1} {:>10.1} {:>10.2}%",
            format!("{n} x {mib} MiB, 1% changed"),
            w,
            i,
            i / w,
            m(|r| r.whole_stall_ms),
            m(|r| r.incr_stall_ms),
            wb / 1048576.0,
            ib / 1048576.0,
            100.0 * ib / wb
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
