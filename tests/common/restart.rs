//! Helpers of the restart tests (tests/restart.rs, tests/restart_errors.rs):
//! programs whose stdout is a file the test opened (`prog > out`), the
//! checkpoint → SIGKILL → `ckpt restart` cycle, and bounded waits.
//!
//! Included with `#[path = "common/restart.rs"] mod rs;` beside `mod common;`.

#![allow(dead_code)]

use crate::common::{self, require_shim, TempDir};
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Time limit of one `ckpt restart` run to the program's end.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(60);
/// Time limit of a plain reference run.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Kid {
    pub label: String,
    child: Child,
    status: Option<ExitStatus>,
    /// stderr file, shown in failure messages.
    pub err_path: Option<PathBuf>,
    /// stdout collected from a pipe, if it was piped.
    pub piped_out: Option<Arc<Mutex<Vec<u8>>>>,
    piped_done: Option<std::thread::JoinHandle<()>>,
    /// The program's hold directory ([`HOLD_ENV`]), if it was given one.
    hold: Option<PathBuf>,
}

impl Kid {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
            }
        }
        self.status
    }

    /// Let a program waiting at its checkpoint window ([`HOLD_ENV`]) go
    /// on: the test has taken the checkpoint it waited for, or no longer
    /// means to.
    pub fn release(&mut self) {
        if let Some(d) = self.hold.take() {
            let _ = std::fs::write(d.join("released"), b"");
        }
    }

    /// Wait at most `limit` for the exit; kill and fail after that.
    pub fn wait(&mut self, limit: Duration) -> Result<ExitStatus, String> {
        self.release();
        let t = Instant::now();
        loop {
            if let Some(s) = self.exited() {
                if let Some(h) = self.piped_done.take() {
                    // The pipe closes when every holder of its write end is
                    // gone; bounded anyway.
                    let t2 = Instant::now();
                    while !h.is_finished() && t2.elapsed() < Duration::from_secs(5) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    if h.is_finished() {
                        let _ = h.join();
                    }
                }
                return Ok(s);
            }
            if t.elapsed() > limit {
                self.kill();
                return Err(format!(
                    "{} did not exit within {limit:?} (killed)\n{}",
                    self.label,
                    self.describe()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL, reap, and make sure the pid is gone.
    pub fn kill(&mut self) {
        // Before the kill: the restarted program, resumed in its window,
        // finds the file and goes on.
        self.release();
        if self.exited().is_none() {
            let _ = self.child.kill();
            if let Ok(s) = self.child.wait() {
                self.status = Some(s);
            }
        }
    }

    /// What the program collected on its piped stdout so far.
    pub fn out_bytes(&self) -> Vec<u8> {
        self.piped_out
            .as_ref()
            .map(|b| b.lock().unwrap().clone())
            .unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        self.err_path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn describe(&self) -> String {
        format!(
            "[{}] pid={} status={:?}\n--- stderr ---\n{}",
            self.label,
            self.child.id(),
            self.status,
            tail(&self.stderr_text(), 3000)
        )
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn tail(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut i = s.len() - n;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    format!("...{}", &s[i..])
}

/// Where a child's stdout goes.
pub enum Out<'a> {
    /// A file the test creates (truncating): `prog > out`.
    File(&'a Path),
    /// A pipe the test reads in the background.
    Pipe,
    Null,
    /// An open file the test holds and writes too (one offset shared, as a
    /// script's `> log` is by every command it runs).
    Shared(&'a File),
}

/// Start `cmd` with stdin from /dev/null, stdout as `out`, stderr appended
/// to `err` (a file), every inherited descriptor above 2 closed at exec.
pub fn start(mut cmd: Command, out: Out, err: &Path, label: &str) -> Kid {
    let hold = cmd
        .get_envs()
        .find(|(k, _)| *k == HOLD_ENV)
        .and_then(|(_, v)| v.map(PathBuf::from));
    cmd.env_remove("LD_PRELOAD").stdin(Stdio::null());
    match out {
        Out::File(p) => {
            let f = File::create(p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
            cmd.stdout(Stdio::from(f));
        }
        Out::Pipe => {
            cmd.stdout(Stdio::piped());
        }
        Out::Null => {
            cmd.stdout(Stdio::null());
        }
        Out::Shared(f) => {
            cmd.stdout(Stdio::from(f.try_clone().expect("dup the shared file")));
        }
    }
    let ef = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(err)
        .unwrap_or_else(|e| panic!("open {}: {e}", err.display()));
    cmd.stderr(Stdio::from(ef));
    // SAFETY: only a raw syscall (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // CLOSE_RANGE_CLOEXEC = 4: whatever the test runner leaked closes.
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 4u32);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{label}: cannot start {cmd:?}: {e}"));
    let (piped_out, piped_done) = match child.stdout.take() {
        Some(mut r) => {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let b = buf.clone();
            let h = std::thread::spawn(move || {
                use std::io::Read;
                let mut chunk = [0u8; 8192];
                loop {
                    match r.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => b.lock().unwrap().extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
            });
            (Some(buf), Some(h))
        }
        None => (None, None),
    };
    Kid {
        label: label.to_string(),
        child,
        status: None,
        err_path: Some(err.to_path_buf()),
        piped_out,
        piped_done,
        hold,
    }
}

/// `PROG ARGS...` as a command run in `cwd`.
pub fn plain_cmd<S: AsRef<OsStr>>(prog: &Path, args: &[S], cwd: &Path) -> Command {
    let mut c = Command::new(prog);
    c.args(args).current_dir(cwd);
    c
}

/// The mode the restart tests run in: `CKPT_TEST_MODE`, words separated
/// by commas: `lz4` or `zstd` (every `ckpt run` of [`run_cmd`]
/// compresses its images), `eager` (every `ckpt restart` of
/// [`restart_cmd`] copies all memory in before the program runs). Unset:
/// plain images, lazy restarts. `tests/modes.sh` runs them in each.
pub fn test_mode(word: &str) -> bool {
    std::env::var("CKPT_TEST_MODE").is_ok_and(|m| m.split(',').any(|w| w.trim() == word))
}

/// `ckpt run` flags of the test mode (see [`test_mode`]).
fn run_mode_flags() -> Vec<&'static str> {
    ["lz4", "zstd"]
        .into_iter()
        .filter(|c| test_mode(c))
        .map(|c| {
            if c == "lz4" {
                "--compress=lz4"
            } else {
                "--compress=zstd"
            }
        })
        .collect()
}

/// `ckpt run --dir IMAGES -- PROG ARGS...` run in `cwd`.
pub fn run_cmd<S: AsRef<OsStr>>(prog: &Path, args: &[S], cwd: &Path, images: &Path) -> Command {
    require_shim();
    let mut c = Command::new(common::ckpt_bin());
    let mut hold = images.as_os_str().to_owned();
    hold.push("-hold");
    let _ = std::fs::remove_dir_all(&hold);
    std::fs::create_dir_all(&hold).unwrap_or_else(|e| panic!("{hold:?}: {e}"));
    c.env(HOLD_ENV, hold);
    // --keep 2: a second checkpoint takes the pages the program did not
    // write from the first, which stays a generation of its own (a test
    // may restart either).
    c.arg("run")
        .arg("--dir")
        .arg(images)
        .args(["--keep", "2"])
        .args(run_mode_flags())
        .arg("--")
        .arg(prog)
        .args(args)
        .current_dir(cwd);
    c
}

/// The checkpoint window of the C test programs (`checkpoint_window` in
/// tests/programs/ckpt_test.h): a program given this directory in its
/// environment (every program `run_cmd` starts) waits after printing
/// "step 19", 10 s at most, until `released` appears in it ([`Kid::kill`],
/// [`Kid::wait`], [`Kid::release`]). The checkpoint then lands where the
/// test means it to however busy the machine, never after the program
/// ended; the reference run, without it, does not wait and prints the same.
pub const HOLD_ENV: &str = "CKPT_TEST_HOLD";

/// `ckpt restart IMAGE [EXTRA...]` run in `cwd`.
pub fn restart_cmd(image: &Path, extra: &[&str], cwd: &Path) -> Command {
    let mut c = Command::new(common::ckpt_bin());
    c.arg("restart").arg(image).args(extra).current_dir(cwd);
    if test_mode("eager") && !extra.contains(&"--eager") {
        c.arg("--eager");
    }
    c
}

/// Run `cmd` to its end (bounded) with stdout into `out` (a file); the
/// reference run of a program.
pub fn reference(cmd: Command, out: &Path, err: &Path, label: &str) -> ExitStatus {
    let mut k = start(cmd, Out::File(out), err, label);
    k.wait(RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// Checkpoint `kid` into `images` twice, then SIGKILL it and wait until
/// it is gone. Returns the second image's path: an incremental one (it
/// takes the pages the program did not write in between from the first;
/// [`run_cmd`] keeps 2), so every test restarting through here restarts
/// from a chain.
pub fn checkpoint_and_kill(kid: &mut Kid, images: &Path) -> PathBuf {
    checkpoint_n_and_kill(kid, images, 2)
}

/// `checkpoint_and_kill` with `n` checkpoints (the last one's path).
pub fn checkpoint_n_and_kill(kid: &mut Kid, images: &Path, n: usize) -> PathBuf {
    let pid = kid.pid();
    let take = || {
        common::checkpoint(pid, Some(images))
            .unwrap_or_else(|e| panic!("{e}\n{}\n{}", kid.describe(), common::threads_report(pid)))
    };
    for _ in 1..n {
        take();
    }
    let img = take();
    if let Some(s) = kid.exited() {
        panic!(
            "{} exited ({s}) right after the checkpoint\n{}",
            kid.label,
            kid.describe()
        );
    }
    kid.kill();
    assert!(
        !common::alive(pid),
        "{} (pid {pid}) still exists after SIGKILL and reaping",
        kid.label
    );
    img
}

/// Wait (bounded) until `pred(contents of path)` holds; fail if `kid`
/// exits first.
pub fn wait_file<F: Fn(&[u8]) -> bool>(
    kid: &mut Kid,
    path: &Path,
    pred: F,
    limit: Duration,
) -> Result<(), String> {
    let t = Instant::now();
    loop {
        let data = std::fs::read(path).unwrap_or_default();
        if pred(&data) {
            return Ok(());
        }
        if let Some(s) = kid.exited() {
            return Err(format!(
                "{} exited ({s}) before {} was ready\n{}",
                kid.label,
                path.display(),
                kid.describe()
            ));
        }
        if t.elapsed() > limit {
            return Err(format!(
                "{}: {} not ready within {limit:?} (has {} bytes)\n{}",
                kid.label,
                path.display(),
                data.len(),
                kid.describe()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Start `cmd` with stdout into `out` and stderr into `err`, and wait
/// (30 s at most) until its output contains `marker`.
pub fn start_until(cmd: Command, out: &Path, err: &Path, label: &str, marker: &str) -> Kid {
    let mut kid = start(cmd, Out::File(out), err, label);
    wait_file(
        &mut kid,
        out,
        |d| String::from_utf8_lossy(d).contains(marker),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kid
}

/// A program of the phase protocol (markers `phase1`, `phase2` in `ctl`,
/// waiting for `go1`, `go2`): a checkpoint into `images` at each phase,
/// then SIGKILL (and `go2`, for a program left over). Returns the two
/// images.
pub fn checkpoint_at_phases(mut kid: Kid, ctl: &Path, images: &Path) -> (PathBuf, PathBuf) {
    wait_marker(&mut kid, &ctl.join("phase1")).unwrap_or_else(|e| panic!("{e}"));
    let first = common::checkpoint(kid.pid(), Some(images)).unwrap();
    common::touch(&ctl.join("go1"));
    wait_marker(&mut kid, &ctl.join("phase2")).unwrap_or_else(|e| panic!("{e}"));
    let second = common::checkpoint(kid.pid(), Some(images)).unwrap();
    kid.kill();
    common::touch(&ctl.join("go2"));
    (first, second)
}

/// Wait (bounded) for a marker file the program writes in its control dir.
pub fn wait_marker(kid: &mut Kid, path: &Path) -> Result<String, String> {
    wait_file(kid, path, |d| !d.is_empty(), common::READY_TIMEOUT)?;
    Ok(std::fs::read_to_string(path).unwrap_or_default())
}

/// Number of complete lines in `d`.
pub fn lines(d: &[u8]) -> usize {
    d.iter().filter(|&&b| b == b'\n').count()
}

/// Assert an exit status is a clean 0.
pub fn assert_success(st: ExitStatus, what: &str, ctx: &str) {
    assert!(
        st.success(),
        "{what} ended with {st} (code {:?}, signal {:?}), want exit 0\n{ctx}",
        st.code(),
        st.signal()
    );
}

/// Assert two outputs are byte-identical, with a short diff in the message.
pub fn assert_same(got: &[u8], want: &[u8], ctx: &str) {
    if got != want {
        panic!(
            "output after restart differs from the uninterrupted run ({} vs {} bytes): {}\n--- after restart (tail) ---\n{}\n--- uninterrupted (tail) ---\n{}\n{ctx}",
            got.len(),
            want.len(),
            common::diff_summary(got, want),
            tail(&String::from_utf8_lossy(got), 1500),
            tail(&String::from_utf8_lossy(want), 1500)
        );
    }
}

/// Pids of live processes whose /proc/PID/comm is `comm` (zombies ignored).
pub fn pids_named(comm: &str) -> Vec<i32> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if c.trim_end_matches('\n') != comm {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .unwrap_or("");
        if state != "Z" && state != "X" {
            v.push(pid);
        }
    }
    v
}

/// Compile tests/programs/`src` into `dir` under the name `name` (so each
/// test's process has a comm of its own).
pub fn compile_named(src: &str, dir: &Path, name: &str) -> PathBuf {
    let built = common::compile_c(src, &dir.join(format!("build-{name}")).tap_mkdir());
    let dst = dir.join(name);
    std::fs::copy(&built, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    dst
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}
impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

/// A test's working area: a temp dir with `images/`, and control dirs.
pub struct Area {
    pub tmp: TempDir,
    pub images: PathBuf,
}

impl Area {
    pub fn new(tag: &str) -> Area {
        let tmp = TempDir::new(tag);
        let images = tmp.sub("images");
        Area { tmp, images }
    }
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
    pub fn sub(&self, name: &str) -> PathBuf {
        self.tmp.sub(name)
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// Run `prog args` plainly in `area` to its end: its stdout (the
/// reference a restarted run must reproduce).
pub fn reference_output<S: AsRef<OsStr>>(area: &Area, prog: &Path, args: &[S]) -> Vec<u8> {
    let out = area.file("want.out");
    let st = reference(
        plain_cmd(prog, args, area.path()),
        &out,
        &area.file("want.err"),
        "plain",
    );
    assert_success(st, "the uninterrupted run", "");
    std::fs::read(&out).unwrap()
}

/// Run a `ckpt restart` command (`cmd`) to its end, then compare the
/// program's output file `out` with `want`. Returns the restart's stderr.
pub fn restart_and_compare(cmd: Command, out: &Path, want: &[u8], area: &Area) -> String {
    let rerr = area.file("restart.err");
    let mut r = start(cmd, Out::Null, &rerr, "ckpt restart");
    let st = r.wait(RESTART_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_success(st, "restarted program", &r.describe());
    assert_same(&std::fs::read(out).unwrap(), want, "stdout after restart");
    std::fs::read_to_string(&rerr).unwrap_or_default()
}

/// A program that checkpoints itself (and says "checkpoint written: PATH"
/// on stderr): run it under ckpt in `area` until it says so, SIGKILL it,
/// restart the image it named and compare its stdout with `want`. Returns
/// the restart's stderr; the program's stderr is in `area`'s "err".
pub fn self_checkpointed_cycle<S: AsRef<OsStr>>(
    area: &Area,
    prog: &Path,
    args: &[S],
    want: &[u8],
) -> String {
    let out = area.file("out");
    let err = area.file("err");
    let mut kid = start(
        run_cmd(prog, args, area.path(), &area.images),
        Out::File(&out),
        &err,
        "under ckpt",
    );
    wait_file(
        &mut kid,
        &err,
        |d| String::from_utf8_lossy(d).contains("checkpoint written: "),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    kid.kill();
    let text = std::fs::read_to_string(&err).unwrap();
    let image = PathBuf::from(text.trim().trim_start_matches("checkpoint written: "));
    assert!(
        image.is_file(),
        "the image the call reported is missing: {text}"
    );
    restart_and_compare(restart_cmd(&image, &[], area.path()), &out, want, area)
}

/// The image files (generations) in `dir`, sorted.
pub fn images(dir: &Path) -> Vec<String> {
    named(dir, ".img")
}

/// The names in `dir` ending in `suffix`, sorted.
pub fn named(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The bases in `dir` (whole images kept for the generations beside them).
pub fn bases(dir: &Path) -> Vec<String> {
    named(dir, ".base")
}

/// Wait until the image writers are done with `dir`: no writer of a
/// program of this test (its command line names the test's directory,
/// `dir`'s parent) is left, and the listing stays the same a while.
pub fn settled(dir: &Path) -> Vec<String> {
    let area = dir.parent().unwrap_or(dir).to_string_lossy().into_owned();
    let writing = || {
        pids_named("ckpt-writer").into_iter().any(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&area))
        })
    };
    let t0 = std::time::Instant::now();
    let mut names = images(dir);
    loop {
        std::thread::sleep(Duration::from_millis(400));
        let again = images(dir);
        if again == names && (!writing() || t0.elapsed() > Duration::from_secs(60)) {
            return names;
        }
        names = again;
    }
}

/// A C program of tests/programs compiled in a directory of its own, with
/// the output of an uninterrupted run of it, in a fresh [`Area`].
pub struct Compiled {
    pub area: Area,
    pub prog: PathBuf,
    /// What the uninterrupted run printed.
    pub want: Vec<u8>,
    /// Where the run under ckpt prints (`area`'s "out").
    pub out: PathBuf,
    /// Holds the compiled program until the test ends.
    _bin: TempDir,
}

impl Compiled {
    pub fn new<S: AsRef<OsStr>>(tag: &str, src: &str, args: &[S]) -> Compiled {
        let area = Area::new(tag);
        let bin = TempDir::new(&format!("{tag}-bin"));
        let prog = common::compile_c(src, bin.path());
        let want = reference_output(&area, &prog, args);
        let out = area.file("out");
        Compiled {
            area,
            prog,
            want,
            out,
            _bin: bin,
        }
    }

    /// The program running under `ckpt run` once its output holds `marker`.
    pub fn run_until<S: AsRef<OsStr>>(&self, args: &[S], marker: &str) -> Kid {
        start_until(
            run_cmd(&self.prog, args, self.area.path(), &self.area.images),
            &self.out,
            &self.area.file("err"),
            "under ckpt",
            marker,
        )
    }
}
