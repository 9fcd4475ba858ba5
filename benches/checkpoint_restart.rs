//! Checkpoint and restart speed and image size, against the raw limits
//! measured in the same run.
//!
//! A C program holds N MiB (pseudo-random, or all zero), then works in a
//! loop that writes its memory and times its own iterations. For each
//! case, ROUNDS times: start it under `ckpt run`, checkpoint it (timed as
//! the user waits for `ckpt checkpoint`), ask the program for the longest
//! gap its loop saw (the stall it felt, not ckpt's own timer), SIGKILL
//! it, `ckpt restart` it and time until the restarted copy answers (lazy,
//! the default: memory arrives while it runs; and `--eager`: all of it
//! first). Medians are reported with:
//! - the stall against a memcpy of the same memory (measured here);
//! - the checkpoint against writing and fsyncing the image's bytes;
//! - the lazy restart against a memcpy of the memory (the goal:
//!   at most 0.5 for 1 GiB, flat in the size);
//! - the eager restart against reading the image file once (warm cache)
//!   — the raw limit of any restart that copies the data first;
//! - image bytes against the memory held (zeros should cost nothing).
//!
//! Peers measured on this machine: DMTCP takes 0.42 s to checkpoint a tiny
//! process, writes 1 GiB for 1 GiB of zeros and restarts 1 GiB in 0.7 s.

use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{ckpt, compile, median, run_and_checkpoint, wait_line, write_fsync_ms, Checkpointed};

const ROUNDS: usize = 5;

struct Round {
    stall_ms: f64,
    checkpoint_ms: f64,
    write_fsync_ms: f64,
    restart_ms: f64,
    eager_ms: f64,
    raw_read_ms: f64,
    image_bytes: f64,
}

/// The reference for a stall: memcpy of `mib` MiB (already touched).
fn memcpy_ms(mib: usize) -> f64 {
    let n = mib << 20;
    let src = vec![7u8; n];
    let mut dst = vec![1u8; n];
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        dst.copy_from_slice(&src);
        std::hint::black_box(&mut dst);
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    best
}

fn round(prog: &Path, dir: &Path, mib: usize, mode: &str) -> Round {
    let Checkpointed {
        mut child,
        image,
        checkpoint_ms,
        stall_ms,
    } = run_and_checkpoint(prog, &[mib.to_string(), mode.to_string()], dir);
    child.kill().ok();
    child.wait().ok();

    // The raw limit: read the image once through a small reused buffer.
    let t = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut f = std::fs::File::open(&image).expect("open image");
    let mut image_bytes = 0.0;
    loop {
        let n = f.read(&mut buf).expect("read image");
        if n == 0 {
            break;
        }
        image_bytes += n as f64;
    }
    let raw_read_ms = t.elapsed().as_secs_f64() * 1e3;

    let restart_ms = restart(&image, &[]);
    let eager_ms = restart(&image, &["--eager"]);
    std::fs::remove_file(&image).ok();
    let write_fsync_ms = write_fsync_ms(dir, image_bytes as usize);
    Round {
        stall_ms,
        checkpoint_ms,
        write_fsync_ms,
        restart_ms,
        eager_ms,
        raw_read_ms,
        image_bytes,
    }
}

/// Restart `image` (with `args`) and time until the program answers.
fn restart(image: &Path, args: &[&str]) -> f64 {
    let t = Instant::now();
    let mut r = Command::new(ckpt())
        .arg("restart")
        .args(args)
        .arg(image)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ckpt restart");
    let mut stdin = r.stdin.take().unwrap();
    stdin.write_all(b"x").unwrap();
    let mut rout = BufReader::new(r.stdout.take().unwrap());
    wait_line(&mut rout, "pong");
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

fn main() {
    let dir = std::env::temp_dir().join(format!("ckpt-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prog = dir.join("memory");
    compile("memory", &prog);
    println!(
        "{:<16} {:>9} {:>12} {:>9} {:>13} {:>10} {:>14} {:>9} {:>10} {:>12}",
        "case",
        "stall ms",
        "stall/memcpy",
        "ckpt ms",
        "ckpt/write+fsync",
        "restart ms",
        "restart/memcpy",
        "eager ms",
        "eager/read",
        "image/memory"
    );
    for (mib, mode) in [
        (1, "random"),
        (64, "random"),
        (256, "random"),
        (1024, "zero"),
        (1024, "random"),
        (4096, "random"),
    ] {
        if !common::fits(mib as u64, &dir) {
            continue;
        }
        let copy = memcpy_ms(mib);
        let rounds: Vec<Round> = (0..ROUNDS).map(|_| round(&prog, &dir, mib, mode)).collect();
        let m = |f: fn(&Round) -> f64| median(&mut rounds.iter().map(f).collect::<Vec<_>>());
        let (stall, ck, wf, rs, eager, raw, img) = (
            m(|r| r.stall_ms),
            m(|r| r.checkpoint_ms),
            m(|r| r.write_fsync_ms),
            m(|r| r.restart_ms),
            m(|r| r.eager_ms),
            m(|r| r.raw_read_ms),
            m(|r| r.image_bytes),
        );
        println!(
            "{:<16} {:>9.2} {:>11.2}x {:>9.1} {:>15.2}x {:>10.1} {:>13.2}x {:>9.1} {:>9.2}x {:>11.4}x",
            format!("{mib} MiB {mode}"),
            stall,
            stall / copy.max(0.001),
            ck,
            ck / wf.max(0.001),
            rs,
            rs / copy.max(0.001),
            eager,
            eager / raw.max(0.001),
            img / (mib as f64 * 1048576.0)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
