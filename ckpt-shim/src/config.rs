//! Settings read once at start-up from the environment `ckpt run` sets.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// What the shim was told.
pub struct Config {
    /// Where images go unless a request says otherwise (CKPT_DIR; else the
    /// working directory at start).
    pub dir: PathBuf,
    /// Periodic checkpoints (CKPT_INTERVAL seconds), if asked.
    pub interval_ms: Option<u64>,
    /// Generations of images to keep (CKPT_KEEP, default 1).
    pub keep: u32,
    /// The reserved checkpoint signal (CKPT_SIGNAL, default SIGRTMAX-7:
    /// away from the ends of the real-time range, where programs take
    /// theirs; a JVM interrupts blocking I/O with SIGRTMAX-2).
    pub signal: i32,
    /// Absolute path of this library, re-added to LD_PRELOAD on exec.
    pub shim_path: Vec<u8>,
    /// What an exec that lost LD_PRELOAD gets back at its head: this
    /// library, then the run's plugins (CKPT_PLUGINS, from `ckpt run
    /// --plugin`).
    pub preload_head: Vec<u8>,
    /// The `ckpt` command (CKPT_BIN; else `ckpt` beside this library),
    /// started to checkpoint a whole tree (see `ckpt::tree::request`).
    pub ckpt_bin: std::ffi::CString,
    /// The store checkpoints go to (CKPT_STORE, `sqlite:PATH`, from `ckpt
    /// run --store`): each one is made by the `ckpt` command, which
    /// imports the image.
    pub store: Option<std::ffi::CString>,
    /// `ckpt checkpoint` takes its first checkpoint as a pre-copy
    /// (CKPT_PRECOPY=1, from `ckpt run --precopy`), as with `--precopy`.
    pub precopy: bool,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// The configuration (read on first use).
pub fn get() -> &'static Config {
    CONFIG.get_or_init(read)
}

fn read() -> Config {
    let dir = std::env::var_os("CKPT_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let interval_ms = std::env::var("CKPT_INTERVAL")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .map(|v| (v * 1000.0) as u64);
    let sigrtmax = libc::SIGRTMAX();
    let signal = std::env::var("CKPT_SIGNAL")
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|s| (libc::SIGRTMIN()..=sigrtmax).contains(s))
        .unwrap_or(sigrtmax - 7);
    let keep = std::env::var("CKPT_KEEP")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|k| *k > 0)
        .unwrap_or(1);
    let shim_path = own_path();
    let ckpt_bin = std::env::var_os("CKPT_BIN")
        .map(|b| b.into_encoded_bytes())
        .filter(|b| b.starts_with(b"/"))
        .unwrap_or_else(|| {
            let dir = std::path::Path::new(std::ffi::OsStr::from_bytes(&shim_path))
                .parent()
                .map(|d| d.as_os_str().as_bytes().to_vec())
                .unwrap_or_default();
            [dir, b"/ckpt".to_vec()].concat()
        });
    let store = std::env::var_os("CKPT_STORE")
        .map(|v| v.into_encoded_bytes())
        .filter(|v| v.starts_with(b"sqlite:/"))
        .and_then(|v| std::ffi::CString::new(v).ok());
    let mut preload_head = shim_path.clone();
    if let Some(p) = std::env::var_os("CKPT_PLUGINS").filter(|p| !p.is_empty()) {
        preload_head.push(b':');
        preload_head.extend_from_slice(p.as_encoded_bytes());
    }
    Config {
        precopy: std::env::var_os("CKPT_PRECOPY").is_some_and(|v| v == "1"),
        preload_head,
        store,
        dir,
        keep,
        interval_ms,
        signal,
        shim_path,
        ckpt_bin: std::ffi::CString::new(ckpt_bin).unwrap_or_default(),
    }
}

/// This library's path, from the dynamic linker.
fn own_path() -> Vec<u8> {
    // SAFETY: dladdr on an address inside this library, into a local.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(own_path as *const () as *const libc::c_void, &mut info) != 0
            && !info.dli_fname.is_null()
        {
            let p = std::ffi::CStr::from_ptr(info.dli_fname).to_bytes();
            let abs = std::fs::canonicalize(std::ffi::OsStr::from_encoded_bytes_unchecked(p));
            return abs
                .map(|a| a.into_os_string().into_encoded_bytes())
                .unwrap_or_else(|_| p.to_vec());
        }
    }
    b"libckpt_shim.so".to_vec()
}

// What the program's own settings (the API's `Checkpointer`, see
// `ckpt_shim_configure`) put in place of the environment's. Read in the
// coordinator (signal context): atomics, and directories that are never
// freed once published.

static DIR: core::sync::atomic::AtomicPtr<PathBuf> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());
static KEEP: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
/// 0: the environment's; u64::MAX: none.
static INTERVAL_MS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Where images go unless a request says otherwise.
pub fn dir() -> &'static std::path::Path {
    let p = DIR.load(core::sync::atomic::Ordering::Acquire);
    // SAFETY: only `set_dir` stores here, a leaked (never freed) PathBuf.
    match unsafe { p.as_ref() } {
        Some(d) => d,
        None => &get().dir,
    }
}

/// Generations of images to keep.
/// Whether requests take a pre-copy when they can (see `Config::precopy`).
pub fn precopy() -> bool {
    get().precopy
}

pub fn keep() -> u32 {
    match KEEP.load(core::sync::atomic::Ordering::Acquire) {
        0 => get().keep,
        k => k,
    }
}

/// Periodic checkpoints, if any.
pub fn interval_ms() -> Option<u64> {
    match INTERVAL_MS.load(core::sync::atomic::Ordering::Acquire) {
        0 => get().interval_ms,
        u64::MAX => None,
        ms => Some(ms),
    }
}

pub fn set_dir(dir: PathBuf) {
    let leaked = Box::into_raw(Box::new(dir));
    DIR.store(leaked, core::sync::atomic::Ordering::Release);
}

pub fn set_keep(keep: u32) {
    KEEP.store(keep, core::sync::atomic::Ordering::Release);
}

pub fn set_interval_ms(ms: u64) {
    INTERVAL_MS.store(ms, core::sync::atomic::Ordering::Release);
}

static STORE: core::sync::atomic::AtomicPtr<std::ffi::CString> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

/// The store checkpoints go to (`sqlite:PATH`): the program's own
/// choice (`ckpt::Checkpointer::store`), else `ckpt run --store`'s.
pub fn store() -> Option<&'static std::ffi::CStr> {
    let p = STORE.load(core::sync::atomic::Ordering::Acquire);
    // SAFETY: only `set_store` stores here, a leaked (never freed) CString.
    match unsafe { p.as_ref() } {
        Some(s) if s.as_bytes().is_empty() => None,
        Some(s) => Some(s.as_c_str()),
        None => get().store.as_deref(),
    }
}

/// Send checkpoints to store `spec` (empty: to directories again).
pub fn set_store(spec: std::ffi::CString) {
    let leaked = Box::into_raw(Box::new(spec));
    STORE.store(leaked, core::sync::atomic::Ordering::Release);
}
