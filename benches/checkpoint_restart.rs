//! Checkpoint and restart speed and image size, against the raw limits
//! measured in the same run.
//!
//! A C program holds N MiB (pseudo-random, or all zero), then answers
//! bytes on stdin. For each case, ROUNDS times: start it under `ckpt run`,
//! checkpoint it (`-v` reports the pause), SIGKILL it, `ckpt restart` it
//! and time until the restarted copy answers. Medians are reported with:
//! - the pause as a fraction of the total checkpoint time (goal: the
//!   program is stopped only for a small part of it);
//! - restart time against reading the image file once (warm cache) — the
//!   raw limit of any restart that copies the data;
//! - image bytes against the memory held (zeros should cost nothing).
//!
//! Peers measured on this machine: DMTCP takes 0.42 s to checkpoint a tiny
//! process, writes 1 GiB for 1 GiB of zeros and restarts 1 GiB in 0.7 s.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    let mut dir = exe.parent().expect("bench dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

fn ckpt() -> PathBuf {
    let p = target_dir().join("ckpt");
    assert!(
        p.exists() && target_dir().join("ckpt-restorer").exists(),
        "build first: cargo build --release --workspace"
    );
    p
}

fn compile(out: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/programs/memory.c");
    let st = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(out)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(st.success(), "cc failed");
}

fn wait_line(out: &mut impl BufRead, want: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read program output");
        assert!(n > 0, "program ended before saying {want:?}");
        if line.starts_with(want) {
            return;
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Round {
    pause_ms: f64,
    checkpoint_ms: f64,
    restart_ms: f64,
    raw_read_ms: f64,
    image_bytes: f64,
}

fn round(prog: &Path, dir: &Path, mib: usize, mode: &str) -> Round {
    let mut child: Child = Command::new(ckpt())
        .args(["run", "--dir"])
        .arg(dir)
        .arg("--")
        .arg(prog)
        .args([&mib.to_string(), mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ckpt run");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_line(&mut out, "ready");
    let t = Instant::now();
    let ck = Command::new(ckpt())
        .args(["checkpoint", "-v", "--dir"])
        .arg(dir)
        .arg(child.id().to_string())
        .output()
        .expect("ckpt checkpoint");
    let checkpoint_ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(
        ck.status.success(),
        "{}",
        String::from_utf8_lossy(&ck.stderr)
    );
    let image = PathBuf::from(String::from_utf8_lossy(&ck.stdout).trim());
    // "..., frozen 23.721ms, total ..." or "frozen 859µs"
    let err = String::from_utf8_lossy(&ck.stderr);
    let frozen = err
        .split("frozen ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("0ms");
    let pause_ms = if let Some(us) = frozen.strip_suffix("µs") {
        us.parse::<f64>().unwrap_or(0.0) / 1e3
    } else if let Some(ms) = frozen.strip_suffix("ms") {
        ms.parse().unwrap_or(0.0)
    } else {
        frozen.trim_end_matches('s').parse::<f64>().unwrap_or(0.0) * 1e3
    };
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
    wait_line(&mut rout, "pong");
    let restart_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    while r.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    r.kill().ok();
    std::fs::remove_file(&image).ok();
    Round {
        pause_ms,
        checkpoint_ms,
        restart_ms,
        raw_read_ms,
        image_bytes,
    }
}

fn main() {
    let dir = std::env::temp_dir().join(format!("ckpt-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prog = dir.join("memory");
    compile(&prog);
    println!(
        "{:<18} {:>9} {:>11} {:>10} {:>11} {:>9} {:>13}",
        "case", "pause ms", "ckpt ms", "restart ms", "raw read ms", "restart/raw", "image/memory"
    );
    for (mib, mode) in [
        (1, "random"),
        (256, "random"),
        (1024, "zero"),
        (1024, "random"),
    ] {
        let rounds: Vec<Round> = (0..ROUNDS).map(|_| round(&prog, &dir, mib, mode)).collect();
        let m = |f: fn(&Round) -> f64| median(&mut rounds.iter().map(f).collect::<Vec<_>>());
        let (pause, ck, rs, raw, img) = (
            m(|r| r.pause_ms),
            m(|r| r.checkpoint_ms),
            m(|r| r.restart_ms),
            m(|r| r.raw_read_ms),
            m(|r| r.image_bytes),
        );
        println!(
            "{:<18} {:>9.2} {:>11.1} {:>10.1} {:>11.1} {:>10.2}x {:>12.4}x",
            format!("{mib} MiB {mode}"),
            pause,
            ck,
            rs,
            raw,
            rs / raw.max(0.001),
            img / (mib as f64 * 1048576.0)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
