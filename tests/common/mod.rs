//! Shared helpers of the integration tests: temporary directories, compiling
//! the test programs, running them with and without `ckpt run`, talking to
//! the `ckpt` command with time limits, reading `ckpt inspect --json`, and a
//! collector of failed checks so one run reports every mismatch at once.
//!
//! Everything here is bounded in time: a misbehaving system under test makes
//! a test fail, never hang. Children are killed when their handle drops.

#![allow(dead_code)]

pub mod tree;

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fmt::{Debug, Display};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Time limit of one `ckpt checkpoint` (the issue asks for 20 s at most).
pub const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(20);
/// Time limit of short CLI commands (inspect, error cases).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a program may take to reach its ready marker.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a program may take to finish once told to.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Paths

/// The `ckpt` command under test.
pub fn ckpt_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ckpt"))
}

/// Where `cargo build --workspace` puts the preloaded shim (beside `ckpt`).
pub fn shim_path() -> PathBuf {
    ckpt_bin().parent().unwrap().join("libckpt_shim.so")
}

/// Build the preloaded shim and the restorer beside
/// `ckpt`: `cargo test` builds only what the tests link against, and a
/// cdylib is not among them, so a fresh clone would have no shim and an old
/// tree would test a stale one. Runs once per test binary; a no-op when the
/// tree is up to date.
pub fn require_shim() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "ckpt-shim", "-p", "ckpt-restorer"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if ckpt_bin().parent().and_then(|d| d.file_name()) == Some(OsStr::new("release")) {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .expect("cargo can be started to build the shim");
        assert!(status.success(), "building ckpt-shim failed");
    });
    let p = shim_path();
    assert!(
        p.exists(),
        "{} is missing after building ckpt-shim (is CARGO_TARGET_DIR the same?)",
        p.display()
    );
}

/// A pseudo-terminal of the test's own, unlocked: (master, slave path).
pub fn pty() -> (std::fs::File, PathBuf) {
    use std::os::fd::FromRawFd;
    // SAFETY: open of a constant path; ioctl/ptsname_r on the new master.
    unsafe {
        let m = libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(m >= 0, "no /dev/ptmx");
        let unlock: libc::c_int = 0;
        assert_eq!(libc::ioctl(m, libc::TIOCSPTLCK, &unlock), 0);
        let mut name = [0 as libc::c_char; 64];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_string_lossy()
            .into_owned();
        (std::fs::File::from_raw_fd(m), PathBuf::from(path))
    }
}

/// tests/programs/
pub fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("programs")
}

/// The real python3 interpreter (not a pyenv wrapper script), so the
/// process under test is python itself.
pub fn python3() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .stdin(Stdio::null())
            .output()
            .expect("python3 is on PATH");
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!s.is_empty(), "python3 did not tell its sys.executable");
        PathBuf::from(s)
    })
    .clone()
}

// ---------------------------------------------------------------------------
// Temporary directories

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique directory under the system temp dir, removed on drop unless the
/// test failed (then it is kept and its path printed) or CKPT_TEST_KEEP is set.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// `tag` should be short: Unix socket paths inside it must stay < 108 bytes.
    pub fn new(tag: &str) -> TempDir {
        TempDir::new_in(&std::env::temp_dir(), tag)
    }

    /// As [`TempDir::new`], in `base` (such as /dev/shm, a tmpfs).
    pub fn new_in(base: &Path, tag: &str) -> TempDir {
        let n = TMP_COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = base.join(format!(
            "ckit-{tag}-{}-{n}-{:x}",
            std::process::id(),
            nanos & 0xffff
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        // The programs' paths are compared with what the kernel reports.
        let path = std::fs::canonicalize(&path).unwrap();
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A subdirectory, created.
    pub fn sub(&self, name: &str) -> PathBuf {
        let p = self.path.join(name);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("CKPT_TEST_KEEP").is_some() {
            eprintln!("(kept {})", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Compiling test programs

/// Compile tests/programs/`name` (a C file) into `out_dir`; returns the binary.
pub fn compile_c(name: &str, out_dir: &Path) -> PathBuf {
    let src = programs_dir().join(name);
    let out = out_dir.join(Path::new(name).file_stem().unwrap());
    let mut cmd = Command::new("cc");
    cmd.arg("-O1")
        .arg("-pthread")
        .arg("-Wall")
        .arg("-I")
        .arg(programs_dir())
        .arg("-o")
        .arg(&out)
        .arg(&src);
    let r =
        run_cmd(&mut cmd, Duration::from_secs(120)).unwrap_or_else(|e| panic!("cc {name}: {e}"));
    assert!(r.status.success(), "cc {name} failed:\n{}", r.stderr);
    out
}

/// Compile tests/programs/`name` (a Rust file) with rustc into `out_dir`.
pub fn compile_rust(name: &str, out_dir: &Path) -> PathBuf {
    let src = programs_dir().join(name);
    let out = out_dir.join(Path::new(name).file_stem().unwrap());
    let mut cmd = Command::new("rustc");
    cmd.args([
        "--edition",
        "2021",
        "-C",
        "opt-level=1",
        "-C",
        "debuginfo=0",
        "-o",
    ])
    .arg(&out)
    .arg(&src);
    let r =
        run_cmd(&mut cmd, Duration::from_secs(180)).unwrap_or_else(|e| panic!("rustc {name}: {e}"));
    assert!(r.status.success(), "rustc {name} failed:\n{}", r.stderr);
    out
}

// ---------------------------------------------------------------------------
// Running short commands with a time limit

/// A finished command.
#[derive(Debug)]
pub struct CmdOut {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl CmdOut {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    /// The non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    done: Arc<AtomicBool>,
}

fn collect<R: Read + Send + 'static>(mut r: R) -> Collector {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let (b, d) = (buf.clone(), done.clone());
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => b.lock().unwrap().extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        d.store(true, Ordering::SeqCst);
    });
    Collector { buf, done }
}

impl Collector {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
    fn bytes(&self) -> Vec<u8> {
        self.buf.lock().unwrap().clone()
    }
    /// Wait (bounded) until the writer side closed, i.e. all output is in.
    fn settle(&self, limit: Duration) {
        let t = Instant::now();
        while !self.done.load(Ordering::SeqCst) && t.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Run `cmd` (stdin from /dev/null) and collect its output; kill it after
/// `timeout` and return an error holding what it printed so far.
pub fn run_cmd(cmd: &mut Command, timeout: Duration) -> Result<CmdOut, String> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                out.settle(Duration::from_secs(2));
                err.settle(Duration::from_secs(2));
                return Ok(CmdOut {
                    status,
                    stdout: out.text(),
                    stderr: err.text(),
                    elapsed: start.elapsed(),
                });
            }
            Ok(None) => {}
            Err(e) => return Err(format!("wait for {cmd:?}: {e}")),
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{cmd:?} did not finish within {timeout:?} (killed)\nstdout: {}\nstderr: {}",
                out.text(),
                err.text()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `ckpt ARGS...` as a command (cwd = `cwd`).
pub fn ckpt_cmd<I, S>(cwd: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(ckpt_bin());
    c.current_dir(cwd).args(args);
    c
}

/// Run `ckpt ARGS...` with the CLI time limit.
pub fn ckpt<I, S>(cwd: &Path, args: I) -> CmdOut
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = ckpt_cmd(cwd, args);
    run_cmd(&mut c, CLI_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// `ckpt checkpoint PID [--dir DIR]`: on success the image path (absolute,
/// existing); on failure a message with the exit status and output.
pub fn checkpoint(pid: i32, dir: Option<&Path>) -> Result<PathBuf, String> {
    checkpoint_in(Path::new(env!("CARGO_MANIFEST_DIR")), pid, dir)
}

/// As [`checkpoint`], running the command in `cwd`.
pub fn checkpoint_in(cwd: &Path, pid: i32, dir: Option<&Path>) -> Result<PathBuf, String> {
    let mut c = ckpt_cmd(cwd, ["checkpoint".to_string(), pid.to_string()]);
    if let Some(d) = dir {
        c.arg("--dir").arg(d);
    }
    let r = run_cmd(&mut c, CHECKPOINT_TIMEOUT)?;
    if !r.status.success() {
        return Err(format!(
            "`ckpt checkpoint {pid}` failed ({}) after {:?}: stdout={:?} stderr={:?}",
            r.status, r.elapsed, r.stdout, r.stderr
        ));
    }
    let lines: Vec<&str> = r.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() != 1 {
        return Err(format!(
            "`ckpt checkpoint {pid}` must print exactly one line (the image path), printed {:?}",
            r.stdout
        ));
    }
    let mut p = PathBuf::from(lines[0].trim());
    if p.is_relative() {
        p = cwd.join(p);
    }
    // A job with several processes gives a tree image (a directory).
    if !p.is_file() && !p.join("manifest").is_file() {
        return Err(format!(
            "`ckpt checkpoint {pid}` printed {}, which is neither an image file nor a tree image",
            p.display()
        ));
    }
    Ok(p)
}

/// `ckpt inspect IMAGE --json`, parsed.
pub fn inspect_json(image: &Path) -> Result<Value, String> {
    let mut c = ckpt_cmd(
        Path::new("/"),
        ["inspect".as_ref(), image.as_os_str(), "--json".as_ref()],
    );
    let r = run_cmd(&mut c, CLI_TIMEOUT)?;
    if !r.status.success() {
        return Err(format!(
            "`ckpt inspect {} --json` failed ({}): {}",
            image.display(),
            r.status,
            r.stderr
        ));
    }
    serde_json::from_str(&r.stdout).map_err(|e| {
        let head: String = r.stdout.chars().take(400).collect();
        format!("`ckpt inspect --json` printed no JSON ({e}): {head}")
    })
}

// ---------------------------------------------------------------------------
// Long-running programs

/// A running program (under `ckpt run` or plain), its output collected in
/// the background. Dropping it kills it.
pub struct Proc {
    pub label: String,
    child: Child,
    out: Collector,
    err: Collector,
    status: Option<ExitStatus>,
    /// Other pids to kill with the child (e.g. the program's own pid as it
    /// reported it, should it differ from the child's).
    extra: Vec<i32>,
    pub started: Instant,
}

/// How to start a program.
pub struct Spawn<'a> {
    pub prog: &'a Path,
    pub args: Vec<String>,
    pub cwd: &'a Path,
    pub env: Vec<(String, String)>,
    /// Descriptors to hand down: (open descriptor of the test, number in the child).
    pub inherit: Vec<(i32, i32)>,
}

impl<'a> Spawn<'a> {
    pub fn new(prog: &'a Path, cwd: &'a Path) -> Spawn<'a> {
        Spawn {
            prog,
            args: Vec::new(),
            cwd,
            env: Vec::new(),
            inherit: Vec::new(),
        }
    }
    /// Give the child the test's descriptor `from` as descriptor `to`
    /// (without close-on-exec). `from` must stay open until the spawn.
    pub fn inherit_fd(mut self, from: i32, to: i32) -> Self {
        self.inherit.push((from, to));
        self
    }
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_string_lossy().into_owned());
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Start the program directly (the reference run).
    pub fn plain(&self, label: &str) -> Proc {
        let mut c = Command::new(self.prog);
        c.args(&self.args);
        self.finish(c, label)
    }

    /// Start it as `ckpt run --dir IMAGES -- PROG ARGS...`.
    pub fn under_ckpt(&self, images: &Path, label: &str) -> Proc {
        self.under_ckpt_with(&["--dir".as_ref(), images.as_os_str()], label)
    }

    /// Start it as `ckpt run OPTS -- PROG ARGS...`.
    pub fn under_ckpt_with(&self, opts: &[&OsStr], label: &str) -> Proc {
        require_shim();
        let mut c = Command::new(ckpt_bin());
        c.arg("run")
            .args(opts)
            .arg("--")
            .arg(self.prog)
            .args(&self.args);
        self.finish(c, label)
    }

    fn finish(&self, mut c: Command, label: &str) -> Proc {
        c.current_dir(self.cwd)
            .env_remove("LD_PRELOAD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        {
            let pairs = self.inherit.clone();
            // SAFETY: only raw syscalls (async-signal-safe) run between fork
            // and exec.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut c, move || {
                    // Whatever the test runner leaked (jobserver pipes, a
                    // shell's descriptors) closes at exec: the child starts
                    // with 0, 1, 2 and what `inherit` asks for, here and in
                    // CI alike. (CLOSE_RANGE_CLOEXEC = 4; errors ignored.)
                    libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 4u32);
                    for &(from, to) in &pairs {
                        if from == to {
                            if libc::fcntl(to, libc::F_SETFD, 0) < 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                        } else if libc::dup2(from, to) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: cannot start {c:?}: {e}"));
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        Proc {
            label: label.to_string(),
            child,
            out,
            err,
            status: None,
            extra: Vec::new(),
            started: Instant::now(),
        }
    }
}

impl Proc {
    /// The pid of the started command (for `ckpt run`, the program's).
    pub fn child_pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Also kill `pid` when this handle drops (the program's pid as it
    /// reported it).
    pub fn adopt(&mut self, pid: i32) {
        if pid > 0 && pid != self.child_pid() && !self.extra.contains(&pid) {
            self.extra.push(pid);
        }
    }

    /// The exit status, if it has exited (reaps it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
            }
        }
        self.status
    }

    pub fn stdout(&self) -> String {
        self.out.text()
    }
    pub fn stdout_bytes(&self) -> Vec<u8> {
        self.out.bytes()
    }
    pub fn stderr(&self) -> String {
        self.err.text()
    }

    /// Wait for the exit (at most `timeout`; then kill and fail).
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let t = Instant::now();
        loop {
            if let Some(s) = self.exited() {
                self.out.settle(Duration::from_secs(3));
                self.err.settle(Duration::from_secs(3));
                return Ok(s);
            }
            if t.elapsed() > timeout {
                self.kill();
                return Err(format!(
                    "{} did not exit within {timeout:?} (killed)\n{}",
                    self.label,
                    self.describe()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kill (SIGKILL) and reap.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            for &p in &self.extra {
                // SAFETY: plain kill(2) of a process this test started.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            let _ = self.child.kill();
            if let Ok(s) = self.child.wait() {
                self.status = Some(s);
            }
        }
    }

    /// Label, status and the output so far (for failure messages).
    pub fn describe(&self) -> String {
        let tail = |s: String| {
            let n = s.len();
            if n > 3000 {
                format!(
                    "...{}",
                    &s[s.char_indices()
                        .find(|(i, _)| *i >= n - 3000)
                        .map(|x| x.0)
                        .unwrap_or(0)..]
                )
            } else {
                s
            }
        };
        format!(
            "[{}] status={:?} elapsed={:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.label,
            self.status,
            self.started.elapsed(),
            tail(self.stdout()),
            tail(self.stderr())
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// Markers: files the programs write (atomically, by rename) to say where they
// are, holding `key=value` lines.

/// Parse `key=value` lines.
pub fn parse_kv(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Wait until `path` exists (bounded); fail early if the program exits.
pub fn wait_marker(
    p: &mut Proc,
    path: &Path,
    timeout: Duration,
) -> Result<HashMap<String, String>, String> {
    let t = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            return Ok(parse_kv(&s));
        }
        if let Some(st) = p.exited() {
            // One last look: it may have written the marker and exited.
            if let Ok(s) = std::fs::read_to_string(path) {
                return Ok(parse_kv(&s));
            }
            p.out.settle(Duration::from_secs(1));
            p.err.settle(Duration::from_secs(1));
            return Err(format!(
                "{} exited ({st}) before writing {}\n{}",
                p.label,
                path.display(),
                p.describe()
            ));
        }
        if t.elapsed() > timeout {
            return Err(format!(
                "{} did not write {} within {timeout:?}\n{}",
                p.label,
                path.display(),
                p.describe()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Create an (empty) file: the signal to a program polling for it.
pub fn touch(path: &Path) {
    std::fs::write(path, b"").unwrap_or_else(|e| panic!("touch {}: {e}", path.display()));
}

/// Integer value of a marker key.
pub fn kv_num(kv: &HashMap<String, String>, key: &str) -> i64 {
    let v = kv
        .get(key)
        .unwrap_or_else(|| panic!("marker has no {key}: {kv:?}"));
    v.parse::<i64>()
        .unwrap_or_else(|e| panic!("marker {key}={v}: {e}"))
}

/// Unsigned value of a marker key (addresses).
pub fn kv_u64(kv: &HashMap<String, String>, key: &str) -> u64 {
    let v = kv
        .get(key)
        .unwrap_or_else(|| panic!("marker has no {key}: {kv:?}"));
    v.parse::<u64>()
        .unwrap_or_else(|e| panic!("marker {key}={v}: {e}"))
}

// ---------------------------------------------------------------------------
// /proc

/// Open descriptors of `pid` and what they point at.
pub fn proc_fds(pid: i32) -> Result<BTreeMap<i32, String>, String> {
    let dir = format!("/proc/{pid}/fd");
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
        let e = e.map_err(|e| format!("{dir}: {e}"))?;
        let Ok(n) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // A descriptor may close between readdir and readlink.
        if let Ok(t) = std::fs::read_link(e.path()) {
            m.insert(n, t.to_string_lossy().into_owned());
        }
    }
    Ok(m)
}

/// The soft RLIMIT_NOFILE of `pid` from /proc/PID/limits.
pub fn nofile_soft(pid: i32) -> Result<u64, String> {
    let f = format!("/proc/{pid}/limits");
    let s = std::fs::read_to_string(&f).map_err(|e| format!("{f}: {e}"))?;
    for l in s.lines() {
        if let Some(rest) = l.strip_prefix("Max open files") {
            let soft = rest.split_whitespace().next().unwrap_or("");
            return soft
                .parse::<u64>()
                .map_err(|e| format!("{f}: soft limit {soft:?}: {e}"));
        }
    }
    Err(format!("{f}: no \"Max open files\" line"))
}

/// The program's descriptors as the image must list them: /proc/PID/fd less
/// the ones ckpt keeps for itself near the soft descriptor limit.
pub fn program_fds(pid: i32) -> Result<BTreeMap<i32, String>, String> {
    let soft = nofile_soft(pid)?;
    let mut m = proc_fds(pid)?;
    m.retain(|&fd, _| (fd as u64) + 16 < soft);
    Ok(m)
}

/// Does `pid` exist (zombies included)?
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

// ---------------------------------------------------------------------------
// JSON access

/// `v` at a dotted path ("process.umask"); `Value::Null` when missing.
pub fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    let mut cur = v;
    for seg in path.split('.') {
        cur = match cur.get(seg) {
            Some(x) => x,
            None => return &NULL,
        };
    }
    cur
}

/// The entries of an array at `path` (empty when missing).
pub fn arr<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    at(v, path)
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// The `fds` entry for descriptor `fd`.
pub fn fd_entry(v: &Value, fd: i64) -> Option<&Value> {
    arr(v, "fds")
        .into_iter()
        .find(|e| e["fd"].as_i64() == Some(fd))
}

/// Descriptor numbers and paths listed in the image.
pub fn image_fds(v: &Value) -> BTreeMap<i32, String> {
    arr(v, "fds")
        .into_iter()
        .filter_map(|e| {
            Some((
                e["fd"].as_i64()? as i32,
                e["path"].as_str().unwrap_or("").to_string(),
            ))
        })
        .collect()
}

/// The `threads` entry with kernel tid `tid`.
pub fn thread_by_tid(v: &Value, tid: i64) -> Option<&Value> {
    arr(v, "threads")
        .into_iter()
        .find(|e| e["tid"].as_i64() == Some(tid))
}

/// The `signals` entry for `signo`.
pub fn signal_entry(v: &Value, signo: i64) -> Option<&Value> {
    arr(v, "signals")
        .into_iter()
        .find(|e| e["signo"].as_i64() == Some(signo))
}

// ---------------------------------------------------------------------------
// Checks that all run and are reported together.

/// Collects failed expectations; [`Checks::finish`] panics listing them all.
#[derive(Default)]
pub struct Checks {
    fails: Vec<String>,
    passed: usize,
}

impl Checks {
    pub fn new() -> Checks {
        Checks::default()
    }

    pub fn check(&mut self, cond: bool, what: impl Display) {
        if cond {
            self.passed += 1;
        } else {
            self.fails.push(what.to_string());
        }
    }

    pub fn eq<T: PartialEq + Debug>(&mut self, what: impl Display, got: T, want: T) {
        if got == want {
            self.passed += 1;
        } else {
            self.fails
                .push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }

    /// A JSON value compared with an expected integer.
    pub fn num(&mut self, what: impl Display, got: &Value, want: i64) {
        if got.as_i64() == Some(want) || (want >= 0 && got.as_u64() == Some(want as u64)) {
            self.passed += 1;
        } else {
            self.fails.push(format!("{what}: got {got}, want {want}"));
        }
    }

    /// A JSON value compared with an expected string.
    pub fn str(&mut self, what: impl Display, got: &Value, want: &str) {
        if got.as_str() == Some(want) {
            self.passed += 1;
        } else {
            self.fails.push(format!("{what}: got {got}, want {want:?}"));
        }
    }

    pub fn fail(&mut self, what: impl Display) {
        self.fails.push(what.to_string());
    }

    pub fn failed(&self) -> bool {
        !self.fails.is_empty()
    }

    /// Panic listing every failure (with `context` appended), if any.
    pub fn finish(self, context: &str) {
        if !self.fails.is_empty() {
            let mut msg = format!(
                "{} of {} checks failed:\n",
                self.fails.len(),
                self.fails.len() + self.passed
            );
            for f in &self.fails {
                msg.push_str("  - ");
                msg.push_str(f);
                msg.push('\n');
            }
            if !context.is_empty() {
                msg.push_str(context);
            }
            panic!("{msg}");
        }
    }
}

/// A first difference of two outputs, for messages.
pub fn diff_summary(a: &[u8], b: &[u8]) -> String {
    let a = String::from_utf8_lossy(a);
    let b = String::from_utf8_lossy(b);
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i), lb.get(i));
        if x != y {
            return format!("first difference at line {}: {:?} vs {:?}", i + 1, x, y);
        }
    }
    if a != b {
        return "outputs differ in trailing bytes".into();
    }
    "identical".into()
}

/// Assert two program outputs are byte-for-byte equal.
pub fn assert_same_output(under_ckpt: &[u8], plain: &[u8], context: &str) {
    if under_ckpt != plain {
        panic!(
            "output under ckpt differs from the uninterrupted run: {}\n--- under ckpt ---\n{}\n--- plain ---\n{}\n{context}",
            diff_summary(under_ckpt, plain),
            String::from_utf8_lossy(under_ckpt),
            String::from_utf8_lossy(plain)
        );
    }
}

/// Each task of `pid`: state, wait channel, current syscall and signal
/// masks, from /proc (for failure messages about stuck checkpoints).
pub fn threads_report(pid: i32) -> String {
    let mut out = format!("threads of {pid}:\n");
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("{out}  (no /proc/{pid}/task)\n");
    };
    let mut tids: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_string_lossy().parse().ok())
        .collect();
    tids.sort();
    for tid in tids {
        let base = format!("/proc/{pid}/task/{tid}");
        let read = |f: &str| std::fs::read_to_string(format!("{base}/{f}")).unwrap_or_default();
        let status = read("status");
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        out.push_str(&format!(
            "  {tid} {:16} state={} wchan={} syscall={} SigBlk={} SigPnd={} ShdPnd={} SigCgt={}\n",
            read("comm").trim(),
            field("State:"),
            read("wchan").trim(),
            read("syscall")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            field("SigBlk:"),
            field("SigPnd:"),
            field("ShdPnd:"),
            field("SigCgt:"),
        ));
    }
    out
}

/// Build example `name` with the profile of `ckpt` (and the shim, which a
/// program using the crate loads from beside itself); returns the path of
/// `file` (the binary, or a cdylib's `lib….so`) in the examples directory.
#[allow(dead_code)]
pub fn build_example(name: &str, file: &str) -> PathBuf {
    require_shim();
    let dir = ckpt_bin().parent().unwrap().to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    assert!(
        cmd.status().expect("cargo runs").success(),
        "building example {name} failed"
    );
    dir.join("examples").join(file)
}

/// The earlier images `image` takes pages from (its metadata's deps), by
/// name.
pub fn image_deps(image: &Path) -> Vec<String> {
    let v = inspect_json(image).unwrap_or_else(|e| panic!("{e}"));
    arr(&v, "deps")
        .iter()
        .map(|d| d["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Not running as root: says the test needs root for `what` and is not
/// run (the caller returns).
pub fn not_root(what: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    let not = unsafe { libc::geteuid() } != 0;
    if not {
        eprintln!("needs root ({what}): not run");
    }
    not
}
