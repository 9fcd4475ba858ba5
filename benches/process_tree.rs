//! A job of many processes (issue 7): how long `ckpt checkpoint` and
//! `ckpt restart` of the whole tree take as the user waits for them, per
//! process, against starting the same tree plainly (fork and pipes,
//! measured in the same run). Medians over ROUNDS.
//!
//! The program (`programs/tree.c`): a root with N-1 workers on pipes. The
//! stall is the longest gap the root's own loop saw during the checkpoint;
//! restart is timed until every worker of the restarted tree answered the
//! root.

use std::io::{BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{ckpt, compile, median, run_and_checkpoint, wait_line, Checkpointed};

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
    std::fs::remove_dir_all(&dir).ok();
}
