//! Files the program has open for writing: their contents at the
//! checkpoint, kept in the image, so a restart can put back a file the
//! killed run changed in place after it (a database rewriting its pages,
//! a file rewound and overwritten) — not only cut back one that grew.
//!
//! Verbs: `configure` (start-up: automatic only, or every such file),
//! `snapshot` (frozen: the contents are copied while nothing can change
//! them); putting them back is the restart command's (`cmd_restart`),
//! before anything of the program runs.
//!
//! Which files: regular files open for writing, not deleted, one copy per
//! file. Automatically those of at most [`AUTO_FILE_MAX`] bytes, up to
//! [`AUTO_TOTAL_MAX`] in all: copying from the page cache runs at several
//! GB/s here, so that adds at most a few milliseconds to the freeze, and
//! it covers logs, state and small databases. With `ckpt run
//! --save-files` every such file, up to [`ALL_TOTAL_MAX`] in all (the
//! freeze grows by about a second per GiB); with `CKPT_SAVE_FILES=0`
//! none. A file past the limits is left out, and a restart then only cuts
//! it back, or warns, or refuses one now shorter than the program's
//! position in it. So is a file open only for writing on which the
//! program holds fcntl locks (reading it would need a descriptor of our
//! own, and closing that would drop the program's locks).

use crate::image::{ClosedFile, Fd, FdKind, LockKind, WrittenFile};
use crate::sys;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Largest file saved without `--save-files`.
pub const AUTO_FILE_MAX: u64 = 1 << 20;
/// Most bytes saved in all without `--save-files`.
pub const AUTO_TOTAL_MAX: u64 = 8 << 20;
/// Most bytes saved in all with `--save-files` (they live in the
/// checkpoint's scratch arena while frozen).
pub const ALL_TOTAL_MAX: u64 = 256 << 20;

static ALL: AtomicBool = AtomicBool::new(false);
static NONE: AtomicBool = AtomicBool::new(false);

/// Start-up, from `CKPT_SAVE_FILES`: "1" saves every written file
/// (`--save-files`), "0" none, anything else the small ones.
pub fn configure(setting: Option<&std::ffi::OsStr>) {
    ALL.store(setting.is_some_and(|v| v == "1"), Relaxed);
    NONE.store(setting.is_some_and(|v| v == "0"), Relaxed);
}

/// Frozen: the contents of the written files among `fds`, then of those
/// the program wrote and closed (`closed`), within the limits (scratch
/// allocation only; raw system calls: nothing is recorded).
pub fn snapshot(fds: &[Fd], closed: &[ClosedFile]) -> Vec<WrittenFile> {
    if NONE.load(Relaxed) {
        return Vec::new();
    }
    let all = ALL.load(Relaxed);
    let (per_file, total_max) = if all {
        (ALL_TOTAL_MAX, ALL_TOTAL_MAX)
    } else {
        (AUTO_FILE_MAX, AUTO_TOTAL_MAX)
    };
    let mut out: Vec<WrittenFile> = Vec::new();
    let mut total = 0u64;
    for f in fds {
        let writable = f.flags & libc::O_ACCMODE != libc::O_RDONLY;
        if !writable
            || f.kind != FdKind::File
            || f.deleted
            || f.size < 0
            || out.iter().any(|w| w.dev == f.dev && w.ino == f.ino)
        {
            continue;
        }
        let size = f.size as u64;
        if size > per_file || total + size > total_max {
            continue;
        }
        // Read through a descriptor of the program's that can read the
        // file (pread: no offset moves, nothing is closed). Otherwise open
        // one and close it after, but not when the program holds fcntl
        // (POSIX) locks on the file: closing any descriptor of a file
        // drops them all.
        let same = |g: &&Fd| g.dev == f.dev && g.ino == f.ino && g.kind == FdKind::File;
        let own = fds
            .iter()
            .filter(same)
            .find(|g| g.flags & libc::O_ACCMODE != libc::O_WRONLY);
        let posix_locked = fds
            .iter()
            .filter(same)
            .any(|g| g.locks.iter().any(|l| l.kind == LockKind::Posix));
        let (fd, opened) = match own {
            Some(g) => (g.fd, false),
            None if posix_locked => continue,
            None => {
                let Ok(path) = std::ffi::CString::new(format!("/proc/self/fd/{}", f.fd)) else {
                    continue;
                };
                let Ok(fd) = sys::openat(libc::AT_FDCWD, &path, libc::O_RDONLY) else {
                    continue;
                };
                (fd, true)
            }
        };
        let read = read_whole(fd, size);
        if opened {
            sys::close(fd);
        }
        let Some((contents, st)) = read else {
            continue;
        };
        let mode = st.map_or(0o600, |st| st.st_mode & 0o7777);
        total += size;
        out.push(WrittenFile {
            path: f.path.clone(),
            dev: f.dev,
            ino: f.ino,
            mtime_ns: f.mtime_ns,
            mode,
            contents: serde_bytes::ByteBuf::from(contents),
        });
    }
    for c in closed {
        let size = c.size.max(0) as u64;
        if size > per_file || total + size > total_max {
            continue;
        }
        let Some(path) = crate::names::c(&c.path) else {
            continue;
        };
        let Ok(fd) = sys::openat(
            libc::AT_FDCWD,
            &path,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        ) else {
            continue;
        };
        let read = read_whole(fd, size);
        sys::close(fd);
        let Some((contents, Some(st))) = read else {
            continue;
        };
        if st.st_dev != c.dev || st.st_ino != c.ino {
            continue;
        }
        total += size;
        out.push(WrittenFile {
            path: c.path.clone(),
            dev: c.dev,
            ino: c.ino,
            mtime_ns: c.mtime_ns,
            mode: st.st_mode & 0o7777,
            contents: serde_bytes::ByteBuf::from(contents),
        });
    }
    out
}

/// The first `size` bytes of the file open at `fd` (None unless all were
/// read) and its stat (None if fstat failed). Raw system calls.
fn read_whole(fd: i32, size: u64) -> Option<(Vec<u8>, Option<libc::stat>)> {
    let mut contents = vec![0u8; size as usize];
    if sys::pread_at(fd, &mut contents, 0) != contents.len() {
        return None;
    }
    // SAFETY: fstat of a live descriptor into a local.
    let st = unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st)
    };
    Some((contents, st))
}
