//! Incremental checkpoints: after a whole checkpoint of N MiB of random
//! memory, the program changes 1% of it (a word in every 100th page) and
//! is checkpointed again. Printed, medians over ROUNDS, each against the
//! whole checkpoint measured in the same round:
//! - the second image's size and the time `ckpt checkpoint` took (as the
//!   user waits for it);
//! - that time against writing and fsyncing as many bytes into a new file
//!   beside the images, measured in the same round: the floor a
//!   checkpoint of that size cannot go under on this disk (an fsync has a
//!   fixed cost: 11 MiB took 25-37 ms here, more than 1% of a whole 1 GiB
//!   checkpoint);
//! - the stall the program's own loop felt during the second checkpoint;
//! - steady: three more checkpoints after 1% changed each, as periodic
//!   checkpoints take them with `--keep 1` (ckpt run's default;
//!   `CKPT_BENCH_KEEP=N` to take another), pruning included (the
//!   command answers before the writer prunes; its wall time is what
//!   the user waits for);
//! - restart from the newest image (a chain: it takes unchanged pages
//!   from earlier ones) until the program answers, against restart from
//!   the whole first image (kept as a base beside the newest ones):
//!   the median of RESTARTS alternating pairs per round.
//!
//! Run: `cargo build --release --workspace && cargo bench --bench incremental`
//! (sizes in MiB after `--` to run only those).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{checkpoint_timed, ckpt, compile, median, start_ready, wait_line, write_fsync_ms};

const ROUNDS: usize = 4;
/// Restarts from each image per round.
const RESTARTS: usize = 5;

struct Round {
    full_ms: f64,
    full_bytes: f64,
    incr_ms: f64,
    incr_bytes: f64,
    /// Writing and fsyncing `incr_bytes` into a new file.
    incr_floor_ms: f64,
    incr_stall_ms: f64,
    steady_ms: f64,
    restart_full_ms: f64,
    restart_chain_ms: f64,
}

fn say(input: &mut ChildStdin, what: &[u8]) {
    input.write_all(what).unwrap();
}

/// `ckpt restart IMAGE` until the restarted program answers.
fn restart_ms(image: &Path) -> f64 {
    let t = Instant::now();
    let mut r = Command::new(ckpt())
        .arg("restart")
        .arg(image)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ckpt restart");
    let mut stdin = r.stdin.take().unwrap();
    stdin.write_all(b"x").unwrap();
    let mut out = BufReader::new(r.stdout.take().unwrap());
    wait_line(&mut out, "pong");
    let ms = t.elapsed().as_secs_f64() * 1e3;
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    while r.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    r.kill().ok();
    r.wait().ok();
    ms
}

/// `ckpt run --keep` of the rounds: its default, or `CKPT_BENCH_KEEP`.
fn keep() -> String {
    std::env::var("CKPT_BENCH_KEEP").unwrap_or_else(|_| "1".into())
}

fn round(prog: &Path, dir: &Path, mib: usize, warm_first: bool) -> Round {
    std::fs::remove_dir_all(dir).ok();
    std::fs::create_dir_all(dir).unwrap();
    let keep = keep();
    let (mut child, mut out, mut input) =
        start_ready(prog, &[mib.to_string()], dir, &["--keep", &keep], &[]);
    say(&mut input, b"q");
    let (full, full_ms) = checkpoint_timed(dir, child.id());
    say(&mut input, b"c");
    wait_line(&mut out, "changed");
    say(&mut input, b"r");
    std::thread::sleep(Duration::from_millis(20));
    let (incr, incr_ms) = checkpoint_timed(dir, child.id());
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len() as f64).unwrap_or(0.0);
    let (full_bytes, incr_bytes) = (size(&full), size(&incr));
    std::thread::sleep(Duration::from_millis(20));
    say(&mut input, b"s");
    let line = wait_line(&mut out, "stall ");
    let incr_stall_ms = line["stall ".len()..].trim().parse::<f64>().unwrap() / 1e3;
    let incr_floor_ms = write_fsync_ms(dir, incr_bytes as usize);
    let mut steady = Vec::new();
    let mut newest = incr.clone();
    for _ in 0..3 {
        say(&mut input, b"c");
        wait_line(&mut out, "changed");
        std::thread::sleep(Duration::from_millis(20));
        let (img, ms) = checkpoint_timed(dir, child.id());
        steady.push(ms);
        newest = img;
        // The next one comes once this writer pruned (periodic
        // checkpoints skip ticks while a writer runs).
        std::thread::sleep(Duration::from_millis(300));
    }
    child.kill().ok();
    child.wait().ok();
    // The first image, kept as a base (or still under its name).
    let full = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "base"))
        .unwrap_or(full);
    // Alternating which goes first: the first restart warms the page
    // cache for the file both read. A restart is ~25 ms on a busy
    // machine: several pairs, their medians.
    let (mut chain, mut whole) = (Vec::new(), Vec::new());
    for i in 0..RESTARTS {
        if warm_first == (i % 2 == 0) {
            whole.push(restart_ms(&full));
            chain.push(restart_ms(&newest));
        } else {
            chain.push(restart_ms(&newest));
            whole.push(restart_ms(&full));
        }
    }
    let (restart_chain_ms, restart_full_ms) = (median(&mut chain), median(&mut whole));
    let _ = out.read_line(&mut String::new());
    Round {
        full_ms,
        full_bytes,
        incr_ms,
        incr_bytes,
        incr_floor_ms,
        incr_stall_ms,
        steady_ms: median(&mut steady),
        restart_full_ms,
        restart_chain_ms,
    }
}

fn main() {
    let base = std::env::temp_dir().join(format!("ckpt-bench-incr-{}", std::process::id()));
    std::fs::create_dir_all(&base).unwrap();
    let prog = base.join("memory");
    compile("memory", &prog);
    let dir = base.join("images");
    println!(
        "{:<10} {:>9} {:>10} {:>11} {:>10} {:>12} {:>10} {:>9} {:>12} {:>10} {:>12} {:>12} {:>8}",
        "memory",
        "full ms",
        "full MiB",
        "incr ms",
        "incr/full",
        "incr/wr+sync",
        "incr MiB",
        "size %",
        "incr stall",
        "steady ms",
        "steady/full",
        "restart ch",
        "ch/full"
    );
    // Sizes in MiB may be named (`cargo bench --bench incremental -- 1024`).
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![64, 256, 1024, 4096];
    }
    for mib in sizes {
        if !common::fits(mib as u64, &dir) {
            continue;
        }
        let rounds: Vec<Round> = (0..ROUNDS)
            .map(|i| round(&prog, &dir, mib, i % 2 == 0))
            .collect();
        let m = |f: fn(&Round) -> f64| median(&mut rounds.iter().map(f).collect::<Vec<_>>());
        let mb = 1048576.0;
        println!(
            "{:<10} {:>9.1} {:>10.1} {:>11.1} {:>9.3}x {:>11.2}x {:>10.2} {:>8.2}% {:>9.2} ms {:>10.1} {:>11.3}x {:>9.1} ms {:>7.2}x",
            format!("{mib} MiB"),
            m(|r| r.full_ms),
            m(|r| r.full_bytes) / mb,
            m(|r| r.incr_ms),
            m(|r| r.incr_ms / r.full_ms),
            m(|r| r.incr_ms / r.incr_floor_ms),
            m(|r| r.incr_bytes) / mb,
            100.0 * m(|r| r.incr_bytes / r.full_bytes),
            m(|r| r.incr_stall_ms),
            m(|r| r.steady_ms),
            m(|r| r.steady_ms / r.full_ms),
            m(|r| r.restart_chain_ms),
            m(|r| r.restart_chain_ms / r.restart_full_ms),
        );
    }
    std::fs::remove_dir_all(&base).ok();
}
