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
//! The restorer leaves the pager's socket open in the program. Post-restart
//! code ([`adopt`]) moves it above the program's descriptors and starts a
//! small thread of ckpt's own (a raw clone, every signal blocked, on a
//! stack in ckpt's reserved range) that reads it: end of file means the
//! fill is done and the regions are plain memory again (the pager and the
//! restart command both closed their ends, the command after closing its
//! copy of the userfaultfd). The thread then closes the socket and ends,
//! so the program is left with nothing of ckpt's: while the fill goes on
//! (about a third of a second per GiB) it shows one more thread and one
//! more descriptor.
//!
//! Runs in wrappers, checkpoint requests and that thread: no malloc, no
//! locks, no panics; the thread makes only raw system calls (it shares
//! the restoring thread's TLS, errno included).

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::*};

use crate::sys;

/// No fill pending (never lazy, or done).
const NONE: u32 = 0;
/// The reading thread waits for the end of the fill.
const READING: u32 = 1;

static STATE: AtomicU32 = AtomicU32::new(NONE);
/// The reading thread's tid while it exists (the kernel clears it).
static TID: AtomicU32 = AtomicU32::new(0);
/// The thread's stack is mapped (read-write) in ckpt's reserved range.
static STACK_MAPPED: AtomicBool = AtomicBool::new(false);

const STACK_LEN: u64 = 64 << 10;
/// The top of ckpt's reserved range: the restorer ran lower down.
const STACK_AT: u64 = super::RESTORER_BASE + super::RESTORER_LEN - STACK_LEN;

/// Post-restart, with every signal blocked, before the program's
/// descriptors are put back: take the pager's socket `fd` (inherited from
/// the restorer) to a number at or above `at`, and start the thread that
/// waits on it. Returns the new number, to be kept open (-1: nothing to
/// keep, said why).
pub fn adopt(fd: i32, at: i32) -> i32 {
    // SAFETY: F_DUPFD_CLOEXEC of a descriptor we inherited.
    let moved = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, at) } as i32;
    sys::close(fd);
    if moved < 0 {
        crate::restart_report::warn(
            "cannot keep the restart's pager socket: forks and checkpoints will not wait for memory to arrive",
        );
        return -1;
    }
    // SAFETY: MAP_FIXED inside ckpt's own reserved range (PROT_NONE,
    // nothing of the program's there).
    let p = unsafe {
        libc::mmap(
            STACK_AT as *mut _,
            STACK_LEN as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if p as u64 != STACK_AT {
        sys::close(moved);
        crate::restart_report::warn(
            "cannot map a stack to wait for the restart's pager: forks and checkpoints will not wait for memory to arrive",
        );
        return -1;
    }
    STACK_MAPPED.store(true, Release);
    STATE.store(READING, Release);
    // SAFETY: the stack is this thread's alone; `reader` makes raw system
    // calls only.
    let r = unsafe {
        sys::spawn_raw_thread(
            (STACK_AT + STACK_LEN) as usize,
            TID.as_ptr() as *mut i32,
            reader,
            moved as usize,
        )
    };
    if r.is_err() {
        STATE.store(NONE, Release);
        sys::close(moved);
        unmap_stack();
        crate::restart_report::warn(
            "cannot start a thread to wait for the restart's pager: forks and checkpoints will not wait for memory to arrive",
        );
        return -1;
    }
    moved
}

/// The reading thread: until end of file on the socket, then close it.
/// Raw system calls only (no libc, TLS or errno).
extern "C" fn reader(fd: usize) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: read into a local buffer.
        let n =
            unsafe { sys::raw_syscall4(libc::SYS_read, fd as u64, buf.as_mut_ptr() as u64, 64, 0) };
        if n > 0 || n == -(libc::EINTR as i64) {
            continue;
        }
        break;
    }
    // SAFETY: closing the socket this thread owns.
    unsafe { sys::raw_syscall4(libc::SYS_close, fd as u64, 0, 0, 0) };
    STATE.store(NONE, Release);
    // SAFETY: FUTEX_WAKE on a live static word.
    unsafe {
        sys::raw_syscall4(
            libc::SYS_futex,
            STATE.as_ptr() as u64,
            (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as u64,
            i32::MAX as u64,
            0,
        )
    };
}

/// Return once every page of the restart has arrived (at once when the
/// restart was not lazy, or the fill ended before) and ckpt's reading
/// thread is gone. Signal-safe.
pub fn wait_filled() {
    if !STACK_MAPPED.load(Acquire) {
        return;
    }
    while STATE.load(Acquire) != NONE {
        sys::futex_wait(&STATE, READING, 0);
    }
    // The thread is ending (microseconds). The kernel's wake at its end is
    // a shared futex's, which a private wait would not hear: yield.
    while TID.load(Acquire) != 0 {
        // SAFETY: sched_yield takes no argument.
        unsafe { libc::sched_yield() };
    }
    if STACK_MAPPED.swap(false, AcqRel) {
        unmap_stack();
    }
}

/// Give the stack back to ckpt's reservation (PROT_NONE, as a checkpoint
/// expects to find it).
fn unmap_stack() {
    super::reserve(STACK_AT, STACK_LEN);
}
