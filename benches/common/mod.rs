//! What the benchmarks share: finding the built `ckpt`, compiling their C
//! programs, reading the programs' answers, medians.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    let mut dir = exe.parent().expect("bench dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

pub fn ckpt() -> PathBuf {
    let p = target_dir().join("ckpt");
    assert!(
        p.exists() && target_dir().join("ckpt-restorer").exists(),
        "build first: cargo build --release --workspace"
    );
    p
}

/// Compile `benches/programs/NAME.c` into `out`.
pub fn compile(name: &str, out: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("benches/programs/{name}.c"));
    let st = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(out)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(st.success(), "cc failed");
}

/// Read lines until one starts with `want`; returns it.
pub fn wait_line(out: &mut impl BufRead, want: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read program output");
        assert!(n > 0, "program ended before saying {want:?}");
        if line.starts_with(want) {
            return line;
        }
    }
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A program of `benches/programs` (it says "ready", then answers `r`:
/// forget the longest gap its loop saw, `s`: print "stall <us>") started
/// under `ckpt run` and checkpointed once.
#[allow(dead_code)]
pub struct Checkpointed {
    /// `ckpt run` (the program), its stdin closed: it ends at once if not
    /// killed first.
    pub child: Child,
    /// What `ckpt checkpoint` printed.
    pub image: PathBuf,
    /// `ckpt checkpoint` as the user waits for it.
    pub checkpoint_ms: f64,
    /// The longest gap the program's own loop saw meanwhile.
    pub stall_ms: f64,
}

#[allow(dead_code)]
pub fn run_and_checkpoint(prog: &Path, args: &[String], dir: &Path) -> Checkpointed {
    run_and_checkpoint_env(prog, args, dir, &[])
}

/// [`run_and_checkpoint`] with `env` added to the program's environment.
pub fn run_and_checkpoint_env(
    prog: &Path,
    args: &[String],
    dir: &Path,
    env: &[(&str, &str)],
) -> Checkpointed {
    let (child, mut out, mut input) = start_ready(prog, args, dir, &[], env);
    // Let the program settle into its loop, then forget its start-up.
    std::thread::sleep(Duration::from_millis(50));
    input.write_all(b"r").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let (image, checkpoint_ms) = checkpoint_timed(dir, child.id());
    // The stall as the program itself felt it: its longest loop gap.
    std::thread::sleep(Duration::from_millis(20));
    input.write_all(b"s").unwrap();
    let line = wait_line(&mut out, "stall ");
    let stall_ms = line["stall ".len()..].trim().parse::<f64>().unwrap() / 1e3;
    Checkpointed {
        child,
        image,
        checkpoint_ms,
        stall_ms,
    }
}

#[allow(dead_code)]
/// Whether a case holding `mib` MiB fits this machine: the program, its
/// writer's copy-on-write share and the page cache of its image need
/// about 3× in memory (MemAvailable) and 2× on the disk of `dir`.
/// `CKPT_BENCH_MAX_MIB` caps the sizes (default 4096).
pub fn fits(mib: u64, dir: &Path) -> bool {
    let cap = std::env::var("CKPT_BENCH_MAX_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(4096);
    let avail_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
        })
        .unwrap_or(0);
    let disk_mib = {
        let existing = dir
            .ancestors()
            .find(|d| d.exists())
            .unwrap_or(Path::new("/"));
        let c = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: statvfs into a zeroed struct, with a valid path.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0 {
            s.f_bavail as u64 * s.f_frsize as u64 / 1048576
        } else {
            0
        }
    };
    let ok = mib <= cap && avail_kib / 1024 >= 3 * mib && disk_mib >= 2 * mib;
    if !ok {
        println!("({mib} MiB skipped: CKPT_BENCH_MAX_MIB {cap}, {} MiB available, {disk_mib} MiB of disk)", avail_kib / 1024);
    }
    ok
}

/// `ckpt checkpoint PID --dir DIR`: the image it printed and its wall
/// time in ms, as the user waits for it.
#[allow(dead_code)]
pub fn checkpoint_timed(dir: &Path, pid: u32) -> (PathBuf, f64) {
    let t = Instant::now();
    let ck = Command::new(ckpt())
        .args(["checkpoint", "--dir"])
        .arg(dir)
        .arg(pid.to_string())
        .output()
        .expect("ckpt checkpoint");
    let ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(
        ck.status.success(),
        "{}",
        String::from_utf8_lossy(&ck.stderr)
    );
    (
        PathBuf::from(String::from_utf8_lossy(&ck.stdout).trim()),
        ms,
    )
}

/// `ckpt run RUN_ARGS --dir DIR -- PROG ARGS` (with `env` added), its
/// stdin and stdout piped, once the program said "ready".
#[allow(dead_code)]
pub fn start_ready<S: AsRef<std::ffi::OsStr>>(
    prog: &Path,
    args: &[S],
    dir: &Path,
    run_args: &[&str],
    env: &[(&str, &str)],
) -> (Child, BufReader<ChildStdout>, ChildStdin) {
    let mut child = Command::new(ckpt())
        .arg("run")
        .args(run_args)
        .arg("--dir")
        .arg(dir)
        .arg("--")
        .arg(prog)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ckpt run");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let input = child.stdin.take().unwrap();
    wait_line(&mut out, "ready");
    (child, out, input)
}

#[allow(dead_code)]
/// The reference for a checkpoint: write `bytes` bytes (incompressible)
/// into a new file in `dir` and fsync it.
pub fn write_fsync_ms(dir: &Path, bytes: usize) -> f64 {
    let path = dir.join("reference.bin");
    let chunk: Vec<u8> = (0..1usize << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let t = Instant::now();
    let mut f = std::fs::File::create(&path).expect("reference file");
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).expect("write reference");
        left -= n;
    }
    f.sync_all().expect("fsync reference");
    let ms = t.elapsed().as_secs_f64() * 1e3;
    drop(f);
    std::fs::remove_file(&path).ok();
    ms
}
