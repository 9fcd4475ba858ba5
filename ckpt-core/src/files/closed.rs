//! Files the program wrote and closed. A restart rolls them back with the
//! program, as it does files still open for writing (`written`, and the
//! restart command's rollback): a shell appending with `>>` opens and
//! closes its log for every line, and a restart that left the lines
//! written after the checkpoint in place got them written twice.
//!
//! Verbs: [`record`] (the open wrappers, the first time the program opens
//! a path for writing, through `files::record_written`: the file's
//! device, inode and absolute path, in a table of [`MAX`] files, the
//! oldest replaced; nothing at close, so closing costs nothing and a file
//! is known even when the process ends without closing it), [`snapshot`]
//! (frozen: the files now at those paths and no longer open for writing, with size
//! and modification time; their contents join the written files' under
//! the same limits). Putting them back is the restart command's, with the
//! files still open.
//!
//! Signal-safe: atomics and raw system calls; the table's entries are
//! written inside the open wrappers' recording hook, so a checkpoint
//! never finds one half-written.

use crate::image::{ClosedFile, Fd};
use crate::sys;
use core::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::*};

/// Files remembered (a program writes a few files this way; past that the
/// oldest are forgotten, and `dropped` says so).
pub const MAX: usize = 256;
/// Longest path kept (a longer one is not remembered, and counted).
const PATH_WORDS: usize = 32;

struct Entry {
    /// Even: stable; odd: being written. 0: never used.
    seq: AtomicU32,
    dev: AtomicU64,
    ino: AtomicU64,
    len: AtomicU32,
    path: [AtomicU64; PATH_WORDS],
}

#[allow(clippy::declare_interior_mutable_const)]
const ENTRY: Entry = Entry {
    seq: AtomicU32::new(0),
    dev: AtomicU64::new(0),
    ino: AtomicU64::new(0),
    len: AtomicU32::new(0),
    path: [const { AtomicU64::new(0) }; PATH_WORDS],
};

static TABLE: [Entry; MAX] = [ENTRY; MAX];
static NEXT: AtomicU32 = AtomicU32::new(0);
/// Written files forgotten (the table was full, or the path too long).
static DROPPED: AtomicI64 = AtomicI64::new(0);

/// Descriptor `fd`, just opened for writing, is the file at `path`
/// (absolute): remember it. `logged`: the job's log has it too (then a
/// file this table forgets is not lost). Signal-safe.
pub fn record(fd: i32, path: &[u8], logged: bool) {
    // SAFETY: all-zero is a valid stat; fstat writes into it.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat of a descriptor into a live stat.
    if unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st) } != 0
        || st.st_mode & libc::S_IFMT != libc::S_IFREG
        || st.st_nlink == 0
    {
        return;
    }
    let n = path.len();
    if n >= PATH_WORDS * 8 || path.first() != Some(&b'/') {
        if !logged {
            DROPPED.fetch_add(1, Relaxed);
        }
        return;
    }
    let mut buf = [0u8; PATH_WORDS * 8];
    buf[..n].copy_from_slice(path);
    let same = TABLE.iter().position(|e| {
        let s = e.seq.load(Acquire);
        s != 0 && s & 1 == 0 && e.dev.load(Relaxed) == st.st_dev && e.ino.load(Relaxed) == st.st_ino
    });
    let i = match same {
        Some(i) => i,
        None => {
            let i = NEXT.fetch_add(1, Relaxed) as usize % MAX;
            if TABLE[i].seq.load(Relaxed) != 0 && !logged {
                DROPPED.fetch_add(1, Relaxed);
            }
            i
        }
    };
    let e = &TABLE[i];
    let s = e.seq.load(Relaxed);
    if s & 1 == 1 || e.seq.compare_exchange(s, s | 1, Acquire, Relaxed).is_err() {
        // Another thread writes this entry right now: this open is not
        // remembered (a rare race, counted).
        if !logged {
            DROPPED.fetch_add(1, Relaxed);
        }
        return;
    }
    e.dev.store(st.st_dev, Relaxed);
    e.ino.store(st.st_ino, Relaxed);
    e.len.store(n as u32, Relaxed);
    for (k, word) in e.path.iter().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[k * 8..k * 8 + 8]);
        word.store(u64::from_ne_bytes(b), Relaxed);
    }
    e.seq.store((s | 1).wrapping_add(1).max(2), Release);
}

/// In a fork child: its parent's closed files are its parent's to roll
/// back. Signal-safe.
pub fn reset() {
    for e in TABLE.iter() {
        e.seq.store(0, Relaxed);
    }
    DROPPED.store(0, Relaxed);
}

/// Frozen: the remembered files that are still at their path and not
/// among the program's descriptors `fds`, as they are now; and how many
/// written files were forgotten.
pub fn snapshot(fds: &[Fd]) -> (Vec<ClosedFile>, u64) {
    let mut out: Vec<ClosedFile> = Vec::new();
    for e in TABLE.iter() {
        let s = e.seq.load(Acquire);
        if s == 0 || s & 1 == 1 {
            continue;
        }
        let len = (e.len.load(Relaxed) as usize).min(PATH_WORDS * 8);
        let mut bytes = [0u8; PATH_WORDS * 8];
        for (k, word) in e.path.iter().enumerate() {
            bytes[k * 8..k * 8 + 8].copy_from_slice(&word.load(Relaxed).to_ne_bytes());
        }
        let path = crate::names::from_bytes(&bytes[..len]);
        let Some(c) = crate::names::c(&path) else {
            continue;
        };
        // The file at that path now, even when the program made it anew
        // since it first opened the path (`rm log; date > log`).
        let Some(st) =
            sys::stat_path(&c, true).filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
        else {
            continue;
        };
        let (dev, ino) = (st.st_dev, st.st_ino);
        // Open for writing: `written` keeps it. Open only for reading (a
        // sort's run file, written, closed and read back), it is kept here.
        if fds.iter().any(|f| {
            f.dev == dev
                && f.ino == ino
                && f.kind == crate::image::FdKind::File
                && f.flags & libc::O_ACCMODE != libc::O_RDONLY
        }) || out.iter().any(|c| c.dev == dev && c.ino == ino)
        {
            continue;
        }
        out.push(ClosedFile {
            path,
            dev,
            ino,
            size: st.st_size,
            mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
        });
    }
    (out, DROPPED.load(Relaxed).max(0) as u64)
}
