//! Cost of interposed calls under the shim, as ratios against native,
//! measured in the same run: a C program times open+close (reading, and
//! appending: logged for the job), dup+close, fcntl(F_GETFL), an atomic
//! save (a new file renamed over another), mkdir+rmdir and a new file
//! removed (each logged for the job) and clock_gettime loops, once plainly and once with libckpt_shim.so
//! preloaded, alternating, ROUNDS times; medians are compared.
//!
//! Goal: <= 1.05x native (DMTCP measured 10.7x on open+close here).
//! The "(2 threads)" rows repeat the loops once a second thread exists:
//! open then goes through the C library (it is a cancellation point).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROUNDS: usize = 25;
const ITERS: &str = "100000";

fn shim() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    let mut dir = exe.parent().expect("bench dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let p = dir.join("libckpt_shim.so");
    assert!(
        p.exists(),
        "{} missing: build with `cargo build --release --workspace`",
        p.display()
    );
    p
}

fn compile(out: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/programs/syscalls.c");
    let st = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(out)
        .arg(&src)
        .arg("-lpthread")
        .status()
        .expect("cc");
    assert!(st.success(), "cc failed");
}

fn run(prog: &Path, file: &Path, preload: Option<&Path>) -> BTreeMap<String, f64> {
    let mut c = Command::new(prog);
    c.arg(ITERS).arg(file);
    if let Some(p) = preload {
        // As in a `ckpt run` job: files opened for writing are logged.
        let dir = file.parent().expect("bench dir");
        c.env("LD_PRELOAD", p)
            .env("CKPT_DIR", std::env::temp_dir())
            .env("CKPT_JOB", "1")
            .env("CKPT_RUNTIME_DIR", dir.join("run"));
    }
    let out = c.output().expect("run bench program");
    assert!(
        out.status.success(),
        "bench program failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, v) = l.rsplit_once(' ')?;
            Some((name.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let dir = std::env::temp_dir().join(format!("ckpt-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prog = dir.join("syscalls");
    compile(&prog);
    let file = dir.join("data");
    std::fs::write(&file, b"x").unwrap();
    let shim = shim();
    let mut native: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut shimmed: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for _ in 0..ROUNDS {
        for (k, v) in run(&prog, &file, None) {
            native.entry(k).or_default().push(v);
        }
        for (k, v) in run(&prog, &file, Some(&shim)) {
            shimmed.entry(k).or_default().push(v);
        }
    }
    println!("wrapper overhead, median of {ROUNDS} rounds ({ITERS} iterations each)");
    println!(
        "{:<26} {:>12} {:>12} {:>8}",
        "call", "native ns", "shim ns", "ratio"
    );
    for (k, n) in native.iter_mut() {
        let n = median(n);
        let s = median(shimmed.get_mut(k).unwrap());
        println!("{k:<26} {n:>12.1} {s:>12.1} {:>7.3}x", s / n);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
