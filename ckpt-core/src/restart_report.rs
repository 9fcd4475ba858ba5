//! What post-restart code tells the user: one line per warning or
//! failure on the `ckpt restart` command's stderr. Used by every kind of
//! state's restore (files, memory, timers, process, trees), so it lives
//! apart from `restart` (the flow), which the restores do not need.
//!
//! Post-restart context: no stdio, a plain write(2).

use core::sync::atomic::{AtomicI32, Ordering::*};

/// A copy of the `ckpt restart` command's stderr, made before the
/// program's descriptors take the low numbers (its own fd 2 may be a file
/// by then): where warnings and failures go. -1 before and after.
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

fn report_fd() -> i32 {
    match REPORT_FD.load(Acquire) {
        -1 => 2,
        fd => fd,
    }
}

/// Report on `fd` from now on.
pub(crate) fn set_fd(fd: i32) {
    REPORT_FD.store(fd, Release);
}

/// Stop reporting on the copy: the descriptor to close (or -1).
pub(crate) fn take_fd() -> i32 {
    REPORT_FD.swap(-1, AcqRel)
}

/// In a tree, until every process is back: the restart command's
/// barrier pipe, where a failing process says so (`F`) before it ends, so
/// that the command stops the whole tree instead of waiting for it. -1
/// otherwise.
static FAIL_FD: AtomicI32 = AtomicI32::new(-1);

/// Say a failure on `fd` too (-1: no more).
pub(crate) fn set_fail_fd(fd: i32) {
    FAIL_FD.store(fd, Release);
}

/// Write one line to stderr and end the process.
pub(crate) fn fail(msg: &str) -> ! {
    let line = format!("ckpt restart: {msg}\n");
    // SAFETY: write(2) from a live buffer, then exit_group.
    unsafe {
        libc::write(report_fd(), line.as_ptr().cast(), line.len());
        let tree = FAIL_FD.load(Acquire);
        if tree >= 0 {
            libc::write(tree, b"F".as_ptr().cast(), 1);
        }
        libc::syscall(libc::SYS_exit_group, 71);
    }
    unreachable!()
}

/// Write a line that is not a warning (something put back as it was)
/// to the restart command's stderr.
pub(crate) fn note(msg: &str) {
    let line = format!("ckpt restart: {msg}\n");
    // SAFETY: write(2) from a live buffer.
    unsafe { libc::write(report_fd(), line.as_ptr().cast(), line.len()) };
}

/// Write a warning line to the restart command's stderr.
pub(crate) fn warn(msg: &str) {
    let line = format!("ckpt restart: warning: {msg}\n");
    // SAFETY: write(2) from a live buffer.
    unsafe { libc::write(report_fd(), line.as_ptr().cast(), line.len()) };
}
