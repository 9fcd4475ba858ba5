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
//! against the plain checkpoint, memory checkpointed per second (the
//! writer compresses on every CPU, but the C program here keeps one busy
//! with its own loop), and restart time against the plain restart.
//!
//! A second table gives each codec's own speed on one core, compressing
//! and decompressing the very pages of each plain image in the blocks the
//! writer made, as the writer and the restart do.
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
    /// The stored pages of a plain image, in its blocks.
    blocks: Vec<Vec<u8>>,
}

/// The image's own stored extents, as the blocks the writer made.
fn blocks_of(image: &Path) -> Vec<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let (_, meta) = ckpt::image::read_file(image).expect("image");
    let f = std::fs::File::open(image).expect("open image");
    meta.regions
        .iter()
        .flat_map(|r| &r.extents)
        .filter(|e| e.src == 0 && e.codec == 0)
        .map(|e| {
            let mut b = vec![0u8; e.len as usize];
            f.read_exact_at(&mut b, e.file_offset).expect("read extent");
            b
        })
        .collect()
}

/// One core compressing then decompressing `blocks` with `codec`:
/// (compress MiB/s, decompress MiB/s, compressed/plain).
fn codec_speed(blocks: &[Vec<u8>], codec: ckpt::image::Codec) -> (f64, f64, f64) {
    use ckpt::memory::compress;
    let mut c = compress::Compressor::new(codec).expect("compressor");
    let plain: usize = blocks.iter().map(|b| b.len()).sum();
    let t = Instant::now();
    let packed: Vec<Option<Vec<u8>>> = blocks
        .iter()
        .map(|b| c.compress(b).map(|z| z.to_vec()))
        .collect();
    let ct = t.elapsed().as_secs_f64();
    let stored: usize = packed
        .iter()
        .zip(blocks)
        .map(|(p, b)| p.as_ref().map_or(b.len(), |z| z.len()))
        .sum();
    let mut out = vec![0u8; compress::MAX_BLOCK as usize];
    let t = Instant::now();
    for (p, b) in packed.iter().zip(blocks) {
        if let Some(z) = p {
            compress::decompress(codec as u8, z, &mut out[..b.len()]).expect("decompress");
        }
    }
    let dt = t.elapsed().as_secs_f64();
    let mib = plain as f64 / 1048576.0;
    (
        mib / ct,
        mib / dt.max(1e-9),
        stored as f64 / plain.max(1) as f64,
    )
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
    let blocks = if codec == "none" {
        blocks_of(&image)
    } else {
        Vec::new()
    };
    let t = Instant::now();
    let mut r = Command::new(ckpt())
        .args(["restart", "--quiet"])
        .arg(&image)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
        blocks,
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
        "MiB/s",
        "restart ms",
        "rst/plain"
    );
    let mut speeds = Vec::new();
    for (name, prog, args) in &cases {
        if *name == "python heap" && mib > 512 {
            // Building a heap that large takes python minutes per round.
            println!("(python heap skipped above 512 MiB)");
            continue;
        }
        if !common::fits(mib as u64, &dir) {
            continue;
        }
        let mut plain = (0.0, 0.0, 0.0);
        for codec in ["none", "lz4", "zstd"] {
            let mut rounds: Vec<Round> = (0..ROUNDS)
                .map(|_| round(prog, args, &dir, codec))
                .collect();
            if codec == "none" {
                let blocks = std::mem::take(&mut rounds[0].blocks);
                for c in [ckpt::image::Codec::Lz4, ckpt::image::Codec::Zstd] {
                    speeds.push((name.to_string(), c.name(), codec_speed(&blocks, c)));
                }
            }
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
    println!("\none core, the plain images' pages in the writer's blocks (at most 1 MiB)");
    println!(
        "{:<12} {:<5} {:>14} {:>16} {:>8}",
        "memory", "codec", "compress MiB/s", "decompress MiB/s", "ratio"
    );
    for (name, codec, (c, d, ratio)) in speeds {
        println!("{name:<12} {codec:<5} {c:>14.0} {d:>16.0} {ratio:>7.3}x");
    }
    std::fs::remove_dir_all(&dir).ok();
}
