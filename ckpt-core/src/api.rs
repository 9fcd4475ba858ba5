//! The programmatic API: a program (Rust, linking this crate) asks for a
//! checkpoint of itself. The work is done by the preloaded shim, so the
//! program must run under `ckpt run`; otherwise the call says so.

use std::ffi::{c_char, c_int, CString};
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

/// What a programmatic checkpoint call returns to: the same call returns
/// twice when the image is restarted — once when the image was written,
/// and again, in the restarted process, from that checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    /// The image was written to this path; the program goes on.
    Written(PathBuf),
    /// This process was restarted from the image the call wrote.
    Restarted,
}

/// Why a programmatic checkpoint did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The program is not running under `ckpt run`.
    NotUnderCkpt,
    /// The checkpoint failed; the program goes on unchanged.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotUnderCkpt => {
                write!(f, "not running under ckpt (start with `ckpt run -- PROG`)")
            }
            Error::Failed(m) => write!(f, "checkpoint failed: {m}"),
        }
    }
}

impl std::error::Error for Error {}

fn entry() -> Option<ShimEntry> {
    // SAFETY: dlsym with a valid NUL-terminated name.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, SHIM_ENTRY.as_ptr()) };
    // SAFETY: the shim exports this symbol with exactly this signature.
    (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut libc::c_void, ShimEntry>(p) })
}

/// Whether the program runs under ckpt (the shim is loaded).
pub fn is_active() -> bool {
    entry().is_some()
}

/// Checkpoint the calling process into the run's image directory. Every
/// thread is stopped briefly, then goes on. After `ckpt restart` of that
/// image, the call returns again with [`Checkpoint::Restarted`].
pub fn checkpoint() -> Result<Checkpoint, Error> {
    call(None)
}

/// Checkpoint into `dir`.
pub fn checkpoint_to(dir: &Path) -> Result<Checkpoint, Error> {
    call(Some(dir))
}

fn call(dir: Option<&Path>) -> Result<Checkpoint, Error> {
    let f = entry().ok_or(Error::NotUnderCkpt)?;
    let dir = dir
        .map(|d| {
            CString::new(d.as_os_str().as_bytes())
                .map_err(|_| Error::Failed("directory name contains NUL".into()))
        })
        .transpose()?;
    let mut out = vec![0u8; 4096];
    // SAFETY: `out` is writable for its length; `dir` is null or a C string.
    let r = unsafe {
        f(
            dir.as_ref().map_or(std::ptr::null(), |d| d.as_ptr()),
            out.as_mut_ptr().cast(),
            out.len(),
        )
    };
    let end = out.iter().position(|&c| c == 0).unwrap_or(out.len());
    let text = String::from_utf8_lossy(&out[..end]).into_owned();
    match r {
        0 => Ok(Checkpoint::Written(PathBuf::from(text))),
        1 => Ok(Checkpoint::Restarted),
        _ => Err(Error::Failed(text)),
    }
}
