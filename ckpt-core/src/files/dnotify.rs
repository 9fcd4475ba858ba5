//! Directory notifications set with `fcntl(fd, F_NOTIFY, mask)` (dnotify).
//! The kernel shows them nowhere (not in fdinfo), so the fcntl wrapper
//! records each: descriptor, mask, and the directory's device and inode
//! (a number closed and reused for something else no longer matches).
//!
//! Verbs: [`record`] (the wrapper, after a successful F_NOTIFY; a mask of
//! 0 removes), [`forget`] (a descriptor closed or given a new open file:
//! its registration went with the old one), [`mask_of`] (the snapshot,
//! frozen), and the restore sets F_NOTIFY again (`restore::signal_io_again`)
//! and records it anew.
//!
//! Signal-safe: atomics only; the hot paths (every open and close) pay
//! one load while nothing is recorded.

use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering::*};

/// Registrations kept (a program watches a few directories this way).
const MAX: usize = 256;

static FD: [AtomicI32; MAX] = [const { AtomicI32::new(-1) }; MAX];
static MASK: [AtomicU32; MAX] = [const { AtomicU32::new(0) }; MAX];
static DEV: [AtomicU64; MAX] = [const { AtomicU64::new(0) }; MAX];
static INO: [AtomicU64; MAX] = [const { AtomicU64::new(0) }; MAX];
/// Entries in use: 0 keeps `forget` to one load.
static USED: AtomicU32 = AtomicU32::new(0);

/// `fd` was given notification `mask` (0: none any more).
pub fn record(fd: i32, mask: u32) {
    forget(fd);
    if mask == 0 || fd < 0 {
        return;
    }
    // SAFETY: an all-zero stat is valid; fstat writes into it.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat into a live stat.
    if unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st) } != 0 {
        return;
    }
    for i in 0..MAX {
        if FD[i].compare_exchange(-1, -2, Acquire, Relaxed).is_ok() {
            MASK[i].store(mask, Relaxed);
            DEV[i].store(st.st_dev, Relaxed);
            INO[i].store(st.st_ino, Relaxed);
            USED.fetch_add(1, Relaxed);
            FD[i].store(fd, Release);
            return;
        }
    }
    // Table full (README, Limits): this one is not known to the snapshot.
}

/// Descriptor `fd` is closed, or is about to name another open file.
#[inline(always)]
pub fn forget(fd: i32) {
    if USED.load(Relaxed) == 0 {
        return;
    }
    for slot in FD.iter() {
        if slot.load(Relaxed) == fd && slot.compare_exchange(fd, -1, AcqRel, Relaxed).is_ok() {
            USED.fetch_sub(1, Relaxed);
        }
    }
}

/// The notification mask recorded for `fd`, when it still names the
/// directory (`dev`, `ino`) it was set on.
pub fn mask_of(fd: i32, dev: u64, ino: u64) -> Option<u32> {
    (0..MAX)
        .find(|&i| {
            FD[i].load(Acquire) == fd && DEV[i].load(Relaxed) == dev && INO[i].load(Relaxed) == ino
        })
        .map(|i| MASK[i].load(Relaxed))
}
