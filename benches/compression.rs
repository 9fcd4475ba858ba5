//! Compressed images (`ckpt run --compress=lz4|zstd`) against plain ones,
//! measured in the same run on realistic memory:
//! - "numeric": a C program's array of doubles (a smooth field, as a
//!   simulation holds it);
//! - "python heap": python3 holding dicts, lists of floats, strings and
//!   tuples;
//! - "random": incompressible bytes (the worst case: blocks are stored as
//!   they are, so only the attempt costs).
//!
//! For each, ROUNDS times per codec: start it under `ckpt run`, time
//! `ckpt checkpoint` as the user waits for it, SIGKILL, time `ckpt
//! restart` until the restarted copy answers. Medians are reported:
//! image size against the plain image (the ratio), checkpoint time
//! against the plain checkpoint, the writer's throughput (memory stored
//! per second of checkpoint, on one core: the writer compresses on its
//! own thread), and restart time against the plain restart.
//!
//! Sizes: `CKPT_BENCH_COMPRESS_MIB` (default 256).

use std::io::{BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{ckpt, compile, median, run_and_checkpoint_env, wait_line, Checkpointed};

const ROUNDS: usize = 3;

struct Round {
    checkpoint_ms: f64,
    restart_ms: f64,
    image_bytes: f64,
}

fn round(prog: &Path, args: &[String], dir: &Path, codec: &str) -> Round {
    let Checkpointed {
        mut child,
        image,
        checkpoint_ms,
        ..
    } = run_and_checkpoint_env(prog, args, dir, &[("CKPT_COMPRESS", codec)]);
    child.kill().ok();
    child.wait().ok();
    let image_bytes = std::fs::metadata(&image).expect("image").len() as f64;
    let t = Instant::now();
    let mut r = Command::new(ckpt())
        .args(["restart", "--quiet"])
        .arg(&image)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ckpt restart");
    let mut stdin = r.stdin.take().unwrap();
    stdin.write_all(b"x").unwrap();
    stdin.flush().unwrap();
    let mut rout = BufReader::new(r.stdout.take().unwrap());
    wait_line(&mut rout, "pong");
    let restart_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    while r.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    r.kill().ok();
    r.wait().ok();
    std::fs::remove_file(&image).ok();
    Round {
        checkpoint_ms,
        restart_ms,
        image_bytes,
    }
}

fn main() {
    let mib: usize = std::env::var("CKPT_BENCH_COMPRESS_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let dir = std::env::temp_dir().join(format!("ckpt-bench-z-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let memory = dir.join("memory");
    compile("memory", &memory);
    let heap = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/programs/heap.py");
    let python = Path::new("/usr/bin/env");
    let cases: Vec<(&str, &Path, Vec<String>)> = vec![
        ("numeric", &memory, vec![mib.to_string(), "numeric".into()]),
        (
            "python heap",
            python,
            vec![
                "python3".into(),
                heap.display().to_string(),
                mib.to_string(),
            ],
        ),
        ("random", &memory, vec![mib.to_string(), "random".into()]),
    ];
    println!("{mib} MiB each; medians of {ROUNDS}");
    println!(
        "{:<12} {:<5} {:>9} {:>8} {:>9} {:>10} {:>11} {:>11} {:>11}",
        "memory",
        "codec",
        "image MiB",
        "ratio",
        "ckpt ms",
        "ckpt/plain",
        "MiB/s/core",
        "restart ms",
        "rst/plain"
    );
    for (name, prog, args) in &cases {
        let mut plain = (0.0, 0.0, 0.0);
        for codec in ["none", "lz4", "zstd"] {
            let rounds: Vec<Round> = (0..ROUNDS)
                .map(|_| round(prog, args, &dir, codec))
                .collect();
            let m = |f: fn(&Round) -> f64| median(&mut rounds.iter().map(f).collect::<Vec<_>>());
            let (ck, rs, img) = (
                m(|r| r.checkpoint_ms),
                m(|r| r.restart_ms),
                m(|r| r.image_bytes),
            );
            if codec == "none" {
                plain = (ck, rs, img);
            }
            println!(
                "{:<12} {:<5} {:>9.1} {:>7.3}x {:>9.1} {:>9.2}x {:>11.0} {:>11.1} {:>10.2}x",
                name,
                codec,
                img / 1048576.0,
                img / plain.2.max(1.0),
                ck,
                ck / plain.0.max(0.001),
                plain.2 / 1048576.0 / (ck / 1e3),
                rs,
                rs / plain.1.max(0.001)
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
