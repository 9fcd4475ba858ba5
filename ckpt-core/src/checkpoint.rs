//! Take a checkpoint: freeze, gather, encode, thaw, then write the image
//! atomically (temporary name, fsync, rename, fsync of the directory) so
//! the previous good image survives anything that goes wrong.
//!
//! Runs inside the reserved signal's handler on the thread that received
//! the request (see `quiesce`), with allocation routed to the scratch
//! arena for the whole call: the interrupted code may hold any lock,
//! malloc's included.

use crate::{image, quiesce, snapshot, sys};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::*};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// How long a freeze may take before the checkpoint gives up (and lets
/// the program go on untouched).
const FREEZE_TIMEOUT_NS: u64 = 10_000_000_000;

/// What a checkpoint produced.
#[derive(Debug, Clone)]
pub struct Report {
    pub path: PathBuf,
    pub bytes: u64,
    pub seq: u64,
    pub freeze_us: u64,
    pub total_us: u64,
}

/// The image file name for this process.
pub fn image_name(comm: &str, pid: i32) -> String {
    let safe: String = comm
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("ckpt-{safe}-{pid}.img")
}

/// The program's command name (for the image file name).
fn comm() -> String {
    let mut buf = [0u8; 64];
    let n = sys::read_small(libc::AT_FDCWD, c"/proc/self/comm", &mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).trim().to_string()
}

/// Take one checkpoint into directory `dir`. `self_uc` is the calling
/// (coordinating) thread's interrupted context.
pub fn take(dir: &Path, self_uc: *mut core::ffi::c_void) -> Result<Report, String> {
    let t0 = sys::monotonic_ns();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let pid = sys::getpid();
    let seq = SEQ.fetch_add(1, Relaxed) + 1;
    let final_path = dir.join(image_name(&comm(), pid));
    let tmp_path = dir.join(format!(".{}.tmp.{seq}", image_name(&comm(), pid)));
    let tmp_c = CString::new(tmp_path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    let created_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);

    let frozen = quiesce::freeze(FREEZE_TIMEOUT_NS, self_uc)?;
    // ---- frozen: no malloc, no locks a program thread may hold ----
    let mut meta = snapshot::gather(&frozen, seq, created_unix_ms);
    meta.freeze_us = (sys::monotonic_ns() - frozen.started_ns()) / 1000;
    let encoded = image::build(&meta);
    // Opened while frozen so its low number is never seen by the program.
    let fd = sys::openat(
        libc::AT_FDCWD,
        &tmp_c,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
    )
    .map_err(|e| {
        format!(
            "cannot create {}: {}",
            tmp_path.display(),
            std::io::Error::from_raw_os_error(e)
        )
    })
    .and_then(|fd| sys::move_high(fd).map_err(|_| "no free descriptor for the image".to_string()));
    let freeze_ns = quiesce::thaw(frozen);
    // ---- thawed ----
    let encoded = encoded?;
    let fd = fd?;
    crate::files::set_own(fd, true);
    let result = write_all(fd, &encoded).and_then(|()| {
        // SAFETY: fsync of a descriptor we own.
        if unsafe { libc::fsync(fd) } != 0 {
            return Err(format!(
                "fsync {}: {}",
                tmp_path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    });
    sys::close(fd);
    crate::files::set_own(fd, false);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(e);
    }
    // mode 0600 regardless of the program's umask
    // SAFETY: chmod of the file we just created.
    unsafe { libc::chmod(tmp_c.as_ptr(), 0o600) };
    std::fs::rename(&tmp_path, &final_path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp_path);
        format!("cannot rename to {}: {e}", final_path.display())
    })?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Report {
        path: final_path,
        bytes: encoded.len() as u64,
        seq,
        freeze_us: freeze_ns / 1000,
        total_us: (sys::monotonic_ns() - t0) / 1000,
    })
}

fn write_all(fd: i32, mut buf: &[u8]) -> Result<(), String> {
    while !buf.is_empty() {
        // SAFETY: writing from a live buffer.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("cannot write the image: {e}"));
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}
