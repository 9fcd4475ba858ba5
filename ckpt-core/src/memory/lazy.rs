//! A lazily restarted program: it runs while `ckpt restart`'s pager still
//! fills its anonymous memory through a userfaultfd (pages it touches
//! first are served on demand).
//!
//! Two things must not happen before the fill is done, and they wait here
//! ([`wait_filled`]):
//! - a fork: without UFFD_FEATURE_EVENT_FORK (which wants CAP_SYS_PTRACE
//!   in the initial namespace) the child's copy of a page not yet filled
//!   would read zeros;
//! - a checkpoint: its writer (a fork) would find those pages missing and
//!   store nothing for them.
//!
//! The restorer leaves the pager's socket open in the program; post-restart
//! code moves it above the program's descriptors ([`adopt`]). End of file
//! on it means the fill is done and the regions are plain memory again
//! (the pager and the restart command both closed their ends, the
//! command after closing its copy of the userfaultfd). Until a fork or a
//! checkpoint comes, the descriptor stays open, close-on-exec.
//!
//! Runs in wrappers and checkpoint requests: no malloc, no locks, no
//! panics (a futex word only).

use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering::*};

use crate::sys;

/// No fill pending (never lazy, or done).
const NONE: u32 = 0;
/// A fill is pending; nobody waits yet.
const PENDING: u32 = 1;
/// One thread reads the socket; the others wait on this word.
const READING: u32 = 2;

static STATE: AtomicU32 = AtomicU32::new(NONE);
static FD: AtomicI32 = AtomicI32::new(-1);
/// The socket's inode: a descriptor of the program's at that number
/// (closed ours, made its own) is never read or closed by us.
static INO: AtomicU64 = AtomicU64::new(0);

/// Post-restart, before the program's descriptors are put back: take the
/// pager's socket `fd` (inherited from the restorer) to a number at or
/// above `at`, close-on-exec. Returns the new number, to be kept open.
pub fn adopt(fd: i32, at: i32) -> i32 {
    // SAFETY: F_DUPFD_CLOEXEC of a descriptor we inherited.
    let moved = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, at) } as i32;
    sys::close(fd);
    if moved < 0 {
        // Nobody to wait for: the fill's end cannot be heard. The pager
        // still fills; a fork or checkpoint could come too early, so say it.
        crate::restart_report::warn(
            "cannot keep the restart's pager socket: forks and checkpoints will not wait for memory to arrive",
        );
        return -1;
    }
    // SAFETY: a zeroed stat is valid; fstat fills it.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat of our own descriptor into a local struct.
    unsafe { libc::fstat(moved, &mut st) };
    INO.store(st.st_ino, Relaxed);
    FD.store(moved, Relaxed);
    STATE.store(PENDING, Release);
    moved
}

/// Whether the fill may still be going on.
pub fn pending() -> bool {
    STATE.load(Acquire) != NONE
}

/// Return once every page of the restart has arrived (at once when the
/// restart was not lazy, or the fill ended before). Signal-safe.
pub fn wait_filled() {
    loop {
        match STATE.compare_exchange(PENDING, READING, AcqRel, Acquire) {
            Ok(_) => {
                read_to_end();
                STATE.store(NONE, Release);
                sys::futex_wake_all(&STATE);
                return;
            }
            Err(NONE) => return,
            Err(_) => sys::futex_wait(&STATE, READING, 0),
        }
    }
}

/// Read the socket until end of file, then close it. Only the thread
/// that moved STATE to READING is here.
fn read_to_end() {
    let fd = FD.swap(-1, Relaxed);
    if fd < 0 {
        return;
    }
    // SAFETY: a zeroed stat is valid; fstat fills it.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat into a local struct.
    let ok = unsafe { libc::fstat(fd, &mut st) } == 0 && st.st_ino == INO.load(Relaxed);
    if !ok {
        // The program closed our descriptor (and maybe reused the
        // number): nothing of ours to wait on or close.
        say(b"ckpt: warning: the program closed the restart's pager socket: a fork or checkpoint did not wait for its memory to arrive\n");
        return;
    }
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: read into a local buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 || (n < 0 && crate::interpose::errno() == libc::EINTR) {
            continue;
        }
        break;
    }
    sys::close(fd);
}

/// One line to stderr, without allocating.
fn say(line: &[u8]) {
    // SAFETY: write(2) from a live buffer.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}
