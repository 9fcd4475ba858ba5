//! The programmatic API: a program (Rust, linking this crate) checkpoints
//! itself, registers hooks, and resumes itself at start-up.
//!
//! The work is done by ckpt's interceptor, `libckpt_shim.so`. Under
//! `ckpt run` it is preloaded and has recorded every call that made
//! kernel state since the program started. A program started normally
//! loads it on its first call here (found beside the program, beside the
//! `ckpt` command on `PATH`, or at `$CKPT_SHIM`); what existed before is
//! then taken from the kernel at each checkpoint (descriptors and their
//! offsets, pipes and their bytes, sockets, timerfds, eventfds, epoll
//! sets, signal handlers and masks, threads, memory). What it cannot see
//! that way is refused out loud at checkpoint, never lost silently: POSIX
//! timers (`timer_create`) made before it was loaded, for one. Children
//! forked by such a program do not run ckpt (a checkpoint of a job with
//! children is refused, naming them): use `ckpt run` for process trees.
//!
//! ```
//! # ckpt::doctest_setup();
//! # let images = std::env::temp_dir().join(format!("ckpt-doc-{}", std::process::id()));
//! // Resume from the newest image in `images` if there is one ...
//! ckpt::resume(&images).expect("restart failed");
//! // ... else start afresh, checkpointing now and then.
//! let mut state = 0u64;
//! for step in 0..1_000_000u64 {
//!     state = state.wrapping_mul(31).wrapping_add(step);
//!     if step % 100_000 == 0 {
//!         match ckpt::Checkpointer::new().dir(&images).take() {
//!             Ok(ckpt::Checkpoint::Written(path)) => eprintln!("saved {}", path.display()),
//!             Ok(ckpt::Checkpoint::Restarted) => eprintln!("back from a restart"),
//!             Err(e) => panic!("no checkpoint: {e}"),
//!         }
//!     }
//! }
//! println!("{state}");
//! ckpt::forget(&images).ok(); // done: the next run starts afresh
//! ```
//!
//! The examples here run as doc tests, each a real checkpoint of the test
//! process (against the interceptor the workspace built).

use std::ffi::{c_char, c_int, c_void, CString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The symbol the shim exports for [`checkpoint`].
pub const SHIM_ENTRY: &std::ffi::CStr = c"ckpt_shim_checkpoint";

/// Signature of [`SHIM_ENTRY`]: `dir` may be null (the run's directory).
/// Returns 0 with the image path in `out`, 1 when the process was
/// restarted from that checkpoint, -1 with an error message in `out`.
pub type ShimEntry =
    unsafe extern "C" fn(dir: *const c_char, out: *mut c_char, out_len: usize) -> c_int;

type HookEntry = unsafe extern "C" fn(Option<extern "C" fn(*mut c_void)>, *mut c_void) -> c_int;

/// What a checkpoint call returns to: the same call returns twice when the
/// image is restarted — once when the image was written, and again, in
/// the restarted process, from that checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    /// The image was written to this path; the program goes on.
    Written(PathBuf),
    /// This process was restarted from the image the call wrote.
    Restarted,
}

impl Checkpoint {
    /// Whether this process was just restored from the checkpoint (rather
    /// than having taken it).
    pub fn restored(&self) -> bool {
        matches!(self, Checkpoint::Restarted)
    }
}

/// Why a checkpoint (or a hook, or a resume) did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// ckpt's interceptor could not be found or loaded (why, in a line).
    Unavailable(String),
    /// The checkpoint failed; the program goes on unchanged.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unavailable(m) => write!(f, "ckpt is not available: {m}"),
            Error::Failed(m) => write!(f, "checkpoint failed: {m}"),
        }
    }
}

impl std::error::Error for Error {}

fn symbol(name: &std::ffi::CStr) -> *mut c_void {
    // SAFETY: dlsym with a valid NUL-terminated name.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

/// Whether ckpt's interceptor is in this process (preloaded by
/// `ckpt run`, or loaded by an earlier call of this API).
pub fn is_active() -> bool {
    !symbol(SHIM_ENTRY).is_null()
}

/// Make ckpt available in this process: nothing under `ckpt run`; else
/// load its interceptor (`$CKPT_SHIM`, or `libckpt_shim.so` beside this
/// program or beside the `ckpt` command on `PATH`). Every other call of
/// this API does it first; call it early to have threads and descriptors
/// made from then on known from the start.
pub fn load() -> Result<(), Error> {
    if is_active() {
        return Ok(());
    }
    let path = crate::companions::find_for_program(crate::companions::SHIM_NAME, "CKPT_SHIM")
        .map_err(Error::Unavailable)?;
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Unavailable("the interceptor's path contains NUL".into()))?;
    // SAFETY: dlopen of a library path; its constructor starts ckpt.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if h.is_null() {
        // SAFETY: dlerror returns null or a NUL-terminated message.
        let why = unsafe {
            let e = libc::dlerror();
            if e.is_null() {
                "unknown error".to_string()
            } else {
                std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        };
        return Err(Error::Unavailable(format!("{}: {why}", path.display())));
    }
    if !is_active() {
        return Err(Error::Unavailable(format!(
            "{} is not ckpt's interceptor",
            path.display()
        )));
    }
    Ok(())
}

/// Checkpoint the calling process into the run's image directory (under
/// `ckpt run`: its `--dir`; else `$CKPT_DIR`, else the working directory
/// at the first call). Every thread is stopped briefly, then goes on; the
/// call returns once the image is complete and in place. After `ckpt
/// restart` of that image, the call returns again with
/// [`Checkpoint::Restarted`].
pub fn checkpoint() -> Result<Checkpoint, Error> {
    Checkpointer::new().take()
}

/// Checkpoint into `dir`.
pub fn checkpoint_to(dir: &Path) -> Result<Checkpoint, Error> {
    Checkpointer::new().dir(dir).take()
}

/// A checkpoint to take, with its settings; or periodic checkpoints.
///
/// ```
/// # ckpt::doctest_setup();
/// # let sim = std::env::temp_dir().join(format!("ckpt-doc-sim-{}", std::process::id()));
/// use std::time::Duration;
/// // One now, into a directory of its own, keeping the newest 3 images,
/// // compressed.
/// let taken = ckpt::Checkpointer::new()
///     .dir(&sim)
///     .keep(3)
///     .compress(Some(ckpt::Codec::Lz4))
///     .take()?;
/// if taken.restored() {
///     eprintln!("restored {} time(s)", ckpt::restored());
/// }
/// // One without waiting for its image (the program goes on at once) ...
/// ckpt::Checkpointer::new().dir(&sim).wait(false).take()?;
/// // ... whose image is in place once this returns.
/// let image = ckpt::wait_for_image()?;
/// assert!(image.is_some_and(|p| p.exists()));
/// // Then one every 30 s, from ckpt's timer, as `ckpt run --interval 30s`.
/// ckpt::Checkpointer::new().dir(&sim).every(Duration::from_secs(30))?;
/// # ckpt::forget(&sim).ok();
/// # Ok::<(), ckpt::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Checkpointer {
    dir: Option<PathBuf>,
    store: Option<String>,
    keep: u32,
    wait: bool,
    /// `Some`: set the codec (`None` inside: stored as is).
    compress: Option<Option<crate::image::Codec>>,
}

impl Default for Checkpointer {
    fn default() -> Self {
        Checkpointer {
            dir: None,
            store: None,
            keep: 0,
            wait: true,
            compress: None,
        }
    }
}

type ShimSetStore =
    unsafe extern "C" fn(spec: *const c_char, out: *mut c_char, out_len: usize) -> c_int;

type ShimEntryEx =
    unsafe extern "C" fn(dir: *const c_char, flags: u32, out: *mut c_char, out_len: usize) -> c_int;
type ShimConfigure = unsafe extern "C" fn(
    dir: *const c_char,
    keep: u32,
    interval_ms: u64,
    out: *mut c_char,
    out_len: usize,
) -> c_int;
type ShimWait = unsafe extern "C" fn(out: *mut c_char, out_len: usize) -> c_int;
type ShimSetCompress = unsafe extern "C" fn(codec: u32) -> c_int;
type ShimWaitWriters = unsafe extern "C" fn(timeout_ms: u64) -> c_int;

/// Wait until no image of this process is being written (an image still
/// being written would appear after a `forget`, or after the program
/// thinks periodic checkpoints are over).
fn wait_writers() -> Result<(), Error> {
    let f: ShimWaitWriters = shim_fn(c"ckpt_wait_writers")?;
    // SAFETY: a plain integer argument.
    if unsafe { f(600_000) } != 0 {
        return Err(Error::Failed(
            "an image is still being written after 10 minutes".into(),
        ));
    }
    Ok(())
}

/// The shim's function `name`, of type `F` (after [`load`]).
fn shim_fn<F: Copy>(name: &std::ffi::CStr) -> Result<F, Error> {
    load()?;
    let p = symbol(name);
    if p.is_null() {
        return Err(Error::Unavailable(format!(
            "the loaded interceptor has no {} (an older ckpt?)",
            name.to_string_lossy()
        )));
    }
    // SAFETY: the callers name the shim's exported functions with their
    // exact signatures (F is a fn pointer type of that signature).
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) })
}

fn c_path(p: &Path) -> Result<CString, Error> {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    CString::new(abs.as_os_str().as_bytes())
        .map_err(|_| Error::Failed("directory name contains NUL".into()))
}

/// Text a shim function left in `out`.
fn said(out: &[u8]) -> String {
    let end = out.iter().position(|&c| c == 0).unwrap_or(out.len());
    String::from_utf8_lossy(&out[..end]).into_owned()
}

impl Checkpointer {
    /// Into the run's directory (see [`checkpoint`]), waiting for the image.
    pub fn new() -> Self {
        Self::default()
    }

    /// Write the image into `dir` (it must exist).
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Keep checkpoints in a database instead of a directory:
    /// `sqlite:PATH` (made if missing; see `ckpt checkpoint --store`).
    /// From then on this process's checkpoints without a directory of
    /// their own (periodic ones too) go there; each is imported by the
    /// `ckpt` command, so `ckpt` must be installed. The outcome's path
    /// is then `sqlite:PATH#NAME`.
    pub fn store(mut self, spec: impl Into<String>) -> Self {
        self.store = Some(spec.into());
        self.dir = None;
        self
    }

    /// Keep the newest `n` images of this process (at least 1; as `ckpt run
    /// --keep`): older ones are removed once a newer one is complete.
    /// Images after the first are incremental, and a whole one they still
    /// take at least half of its pages from may stay beside them as
    /// `ckpt-PROG-PID.SEQ.base` (not a generation; copy it with them).
    pub fn keep(mut self, n: u32) -> Self {
        self.keep = n.max(1);
        self
    }

    /// Compress this process's images from now on (`Some(Codec::Lz4)`,
    /// `Some(Codec::Zstd)`; `None`: stored as they are), as `ckpt run
    /// --compress`; periodic ones too. Unset, the setting is left as it is.
    pub fn compress(mut self, codec: Option<crate::image::Codec>) -> Self {
        self.compress = Some(codec);
        self
    }

    /// Whether [`take`](Self::take) waits until the image is in place
    /// (default), or returns as soon as the program goes on — the image
    /// is then written meanwhile; [`wait_for_image`] waits for it.
    pub fn wait(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }

    fn configure(&self, dir: Option<&Path>, interval_ms: u64) -> Result<(), Error> {
        if let Some(spec) = &self.store {
            let path = spec
                .strip_prefix("sqlite:")
                .ok_or_else(|| Error::Failed(format!("{spec}: not a store (write sqlite:PATH)")))?;
            let abs = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
            let spec = CString::new(format!("sqlite:{}", abs.display()))
                .map_err(|_| Error::Failed("the store's path contains NUL".into()))?;
            let f: ShimSetStore = shim_fn(c"ckpt_set_store")?;
            let mut out = [0u8; 256];
            // SAFETY: spec is a C string; out is writable for its length.
            if unsafe { f(spec.as_ptr(), out.as_mut_ptr().cast(), out.len()) } != 0 {
                return Err(Error::Failed(said(&out)));
            }
        }
        if let Some(codec) = self.compress {
            let f: ShimSetCompress = shim_fn(c"ckpt_set_compress")?;
            // SAFETY: a plain integer argument.
            if unsafe { f(codec.map_or(0, |c| c as u32)) } != 0 {
                return Err(Error::Failed("this ckpt does not know that codec".into()));
            }
        }
        if dir.is_none() && self.keep == 0 && interval_ms == 0 {
            return Ok(());
        }
        let f: ShimConfigure = shim_fn(c"ckpt_configure")?;
        let dir = dir.map(c_path).transpose()?;
        let mut out = [0u8; 1024];
        // SAFETY: dir is null or a C string; out is writable for its length.
        let r = unsafe {
            f(
                dir.as_ref().map_or(std::ptr::null(), |d| d.as_ptr()),
                self.keep,
                interval_ms,
                out.as_mut_ptr().cast(),
                out.len(),
            )
        };
        if r != 0 {
            return Err(Error::Failed(said(&out)));
        }
        Ok(())
    }

    /// Take the checkpoint; returns when the image is complete and in
    /// place (or, with `wait(false)`, once the program goes on; or, in a
    /// restored process, from the restart).
    pub fn take(&self) -> Result<Checkpoint, Error> {
        self.configure(None, 0)?;
        let f: ShimEntryEx = shim_fn(c"ckpt_checkpoint_ex")?;
        let dir = self.dir.as_deref().map(c_path).transpose()?;
        let mut out = vec![0u8; 4096];
        let flags = if self.wait { 0 } else { 1 };
        // SAFETY: `out` is writable for its length; `dir` is null or a C string.
        let r = unsafe {
            f(
                dir.as_ref().map_or(std::ptr::null(), |d| d.as_ptr()),
                flags,
                out.as_mut_ptr().cast(),
                out.len(),
            )
        };
        let text = said(&out);
        match r {
            0 => Ok(Checkpoint::Written(PathBuf::from(text))),
            1 => Ok(Checkpoint::Restarted),
            _ => Err(Error::Failed(text)),
        }
    }

    /// Checkpoint every `interval` from now on (ckpt's own timer, as
    /// `ckpt run --interval`; a tick while the last image is still being
    /// written is skipped), into this directory with this `keep`. The
    /// hooks run around each one. It goes on after a restart.
    pub fn every(&self, interval: std::time::Duration) -> Result<(), Error> {
        let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX - 1);
        if ms == 0 {
            return Err(Error::Failed(
                "the interval must be at least a millisecond".into(),
            ));
        }
        self.configure(self.dir.as_deref(), ms.min(u64::MAX - 1))
    }
}

/// Stop the periodic checkpoints [`Checkpointer::every`] (or `ckpt run
/// --interval`) started; returns once no image of this process is being
/// written any more.
pub fn stop_periodic() -> Result<(), Error> {
    let f: ShimConfigure = shim_fn(c"ckpt_configure")?;
    // SAFETY: null dir, no output buffer.
    let r = unsafe { f(std::ptr::null(), 0, u64::MAX, std::ptr::null_mut(), 0) };
    if r != 0 {
        return Err(Error::Failed("cannot stop periodic checkpoints".into()));
    }
    // One may have begun just before: its image is in place on return.
    wait_writers()
}

/// Wait until the image of the last checkpoint taken with `wait(false)`
/// is complete and in place: its path, or None when no such checkpoint
/// is pending.
pub fn wait_for_image() -> Result<Option<PathBuf>, Error> {
    if !is_active() {
        return Ok(None);
    }
    let f: ShimWait = shim_fn(c"ckpt_wait")?;
    let mut out = vec![0u8; 4096];
    // SAFETY: out is writable for its length.
    let r = unsafe { f(out.as_mut_ptr().cast(), out.len()) };
    match r {
        0 => Ok(Some(PathBuf::from(said(&out)))),
        2 => Ok(None),
        _ => Err(Error::Failed(said(&out))),
    }
}

/// Times this process was restored from an image (0 when it never was,
/// or when ckpt is not loaded).
pub fn restored() -> u32 {
    let p = symbol(c"ckpt_restored_count");
    if p.is_null() {
        return 0;
    }
    // SAFETY: the shim exports ckpt_restored_count as `extern "C" fn() -> u32`.
    let f: extern "C" fn() -> u32 = unsafe { std::mem::transmute(p) };
    f()
}

type BoxedHook = Box<dyn Fn() + Send + Sync + 'static>;

extern "C" fn call_hook(data: *mut c_void) {
    // SAFETY: `data` is the leaked BoxedHook `register_hook` handed over.
    let f = unsafe { &*(data as *const BoxedHook) };
    f();
}

fn register_hook(name: &std::ffi::CStr, f: BoxedHook) -> Result<(), Error> {
    load()?;
    let p = symbol(name);
    if p.is_null() {
        return Err(Error::Unavailable(
            "the loaded interceptor has no hooks (an older ckpt?)".into(),
        ));
    }
    // SAFETY: the shim exports the hook registrations with this signature.
    let reg: HookEntry = unsafe { std::mem::transmute(p) };
    // Hooks live as long as the process.
    let data = Box::into_raw(Box::new(f)) as *mut c_void;
    // SAFETY: call_hook matches the C signature; data stays valid forever.
    if unsafe { reg(Some(call_hook), data) } != 0 {
        // SAFETY: not registered: we still own it.
        drop(unsafe { Box::from_raw(data as *mut BoxedHook) });
        return Err(Error::Failed("too many hooks (64 at most)".into()));
    }
    Ok(())
}

/// Run `f` in a restored process, on ckpt's hook thread, before any other
/// thread of the program goes on: reconnect to a server, reopen a device,
/// reload a library handle. Hooks run in the order they were registered.
///
/// ```
/// # ckpt::doctest_setup();
/// ckpt::on_restore(|| eprintln!("back after a restart; reconnecting")).unwrap();
/// ```
pub fn on_restore(f: impl Fn() + Send + Sync + 'static) -> Result<(), Error> {
    register_hook(c"ckpt_on_restore", Box::new(f))
}

/// Run `f` before each checkpoint of this process (whoever asked for it:
/// this API, `ckpt checkpoint PID`, or the periodic timer), while the
/// program still runs: flush, close what cannot be saved.
pub fn before_checkpoint(f: impl Fn() + Send + Sync + 'static) -> Result<(), Error> {
    register_hook(c"ckpt_before_checkpoint", Box::new(f))
}

/// Run `f` after each checkpoint, in the process that goes on (a restored
/// one runs [`on_restore`] hooks instead).
pub fn after_checkpoint(f: impl Fn() + Send + Sync + 'static) -> Result<(), Error> {
    register_hook(c"ckpt_after_checkpoint", Box::new(f))
}

/// The images of this program in `dir` (`ckpt-COMM-PID.SEQ.img` or a
/// `.tree` directory, COMM this process's command name).
fn own_images(dir: &Path) -> Vec<PathBuf> {
    let comm = crate::names::read_proc("/proc/self/comm").unwrap_or_default();
    let prefix = crate::checkpoint::program_prefix(comm.trim());
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            let Some(rest) = n.strip_prefix(&prefix) else {
                return false;
            };
            let Some(core) = rest
                .strip_suffix(".img")
                .or_else(|| rest.strip_suffix(".tree"))
            else {
                return false;
            };
            // A folded image's new name: PID.SEQ.f or PID.SEQ.fN.
            let core = match core.rsplit_once(".f") {
                Some((c, n)) if n.bytes().all(|b| b.is_ascii_digit()) => c,
                _ => core,
            };
            // PID.SEQ, digits only: not a longer program name's image.
            core.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().all(|c| c.is_ascii_digit())
                    && b.bytes().all(|c| c.is_ascii_digit())
            })
        })
        .map(|e| e.path())
        .collect()
}

/// Start-up helper: call it first thing in `main`. When `dir` holds an
/// image of this program (or, for a store `sqlite:PATH`, a generation of
/// it), the process becomes `ckpt restart --latest DIR` (or `ckpt restart
/// sqlite:PATH#NAME`)
/// (this run is replaced by the restored one, which goes on where its
/// checkpoint was taken, and exits with its status); otherwise it returns
/// `Ok(())` and the program starts afresh. Err only when restarting was
/// attempted and could not begin (the `ckpt` command is not found or
/// cannot run).
pub fn resume(dir: impl AsRef<Path>) -> Result<(), Error> {
    let dir = dir.as_ref();
    let from_store = dir.as_os_str().as_bytes().starts_with(b"sqlite:");
    if !from_store && own_images(dir).is_empty() {
        return Ok(());
    }
    let ckpt = crate::companions::find_for_program(crate::companions::COMMAND_NAME, "CKPT_BIN")
        .map_err(Error::Unavailable)?;
    let target = if from_store {
        // A store (`sqlite:PATH`): its newest generation of this program.
        match newest_in_store(&ckpt, dir)? {
            Some(spec) => spec,
            None => return Ok(()),
        }
    } else {
        dir.as_os_str().to_os_string()
    };
    let mut args = vec![
        CString::new(ckpt.as_os_str().as_bytes()),
        CString::new("restart"),
    ];
    if !from_store {
        // The generation is named for a store; in a directory the newest
        // whole one.
        args.push(CString::new("--latest"));
    }
    args.push(CString::new(target.as_bytes()));
    let args: Vec<CString> = args
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|_| Error::Failed("a path contains NUL".into()))?;
    let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: argv is a null-terminated array of C strings that outlive
    // the call; on success execv does not return.
    unsafe { libc::execv(argv[0], argv.as_ptr()) };
    Err(Error::Failed(format!(
        "cannot run {}: {}",
        ckpt.display(),
        std::io::Error::last_os_error()
    )))
}

/// The newest generation of this program in store `spec`
/// (`sqlite:PATH#NAME`), asked of `ckpt list`; None when there is none
/// (or no store yet).
fn newest_in_store(ckpt: &Path, spec: &Path) -> Result<Option<std::ffi::OsString>, Error> {
    let db = Path::new(std::ffi::OsStr::from_bytes(
        &spec.as_os_str().as_bytes()[7..],
    ));
    if !db.exists() {
        return Ok(None);
    }
    let out = std::process::Command::new(ckpt)
        .args(["list", "--json"])
        .arg(spec)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Failed(format!("cannot run {}: {e}", ckpt.display())))?;
    if !out.status.success() {
        return Err(Error::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Failed(format!("ckpt list: {e}")))?;
    let comm = crate::names::read_proc("/proc/self/comm").unwrap_or_default();
    Ok(rows
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["program"].as_str() == Some(comm.trim()))
        .filter_map(|r| r["path"].as_str())
        .next_back()
        .map(std::ffi::OsString::from))
}

/// Remove every image of this program from `dir` (a finished run: the
/// next [`resume`] starts afresh). Returns how many were removed.
pub fn forget(dir: impl AsRef<Path>) -> std::io::Result<usize> {
    // An image still being written would appear after the removal.
    if is_active() {
        wait_writers().map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    let images = own_images(dir.as_ref());
    for p in &images {
        if p.is_dir() {
            std::fs::remove_dir_all(p)?;
        } else {
            std::fs::remove_file(p)?;
        }
    }
    Ok(images.len())
}

/// For this crate's doc examples, which run as tests: point `CKPT_SHIM`
/// at the interceptor this workspace built (the newer of its debug and
/// release builds), unless it is set.
#[doc(hidden)]
pub fn doctest_setup() {
    if std::env::var_os("CKPT_SHIM").is_some() {
        return;
    }
    let target = option_env!("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let newest = ["debug", "release"]
        .iter()
        .map(|p| target.join(p).join(crate::companions::SHIM_NAME))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max();
    if let Some((_, shim)) = newest {
        std::env::set_var("CKPT_SHIM", shim);
    }
}
