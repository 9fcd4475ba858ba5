//! System calls made by the wrappers themselves, for originals that are
//! nothing but that system call.
//!
//! Why: on this machine (and any kernel that refills the return-stack
//! predictor on the way out of a system call, e.g. the spectre/SRSO
//! mitigations), each `ret` taken after the kernel returned is
//! mispredicted. A wrapper that calls the C library's `dup` takes two
//! (libc → wrapper, wrapper → program) where the program alone takes one:
//! about 7 ns per call, the whole overhead budget of a `dup` + `close`
//! pair. Making the system call in the wrapper keeps it to one; `close`
//! instead ends with the original as a tail call (see `files`).
//!
//! Only where the result is the same as the C library's, including
//! `errno`, and only when the original is the C library's own (not
//! another preloaded library's wrapper): dup, dup2 and dup3 (plain system
//! calls in glibc), and open/openat while the process has one thread and
//! nothing ever asked for a cancellation (they are cancellation points only in that glibc
//! turns on asynchronous cancellation around the call, which matters only
//! when another thread can call `pthread_cancel`).
//!
//! Runs on the program's threads: no allocation, no locks, no panics.

use ckpt::interpose::HOT;
use core::ffi::{c_char, c_int, c_uint, c_void};
use core::sync::atomic::Ordering::*;

/// `syscall` with up to four arguments; the raw result (-errno on failure).
/// Inline, not libc's `syscall()`: that is a function whose return after
/// the kernel's is the very cost this module avoids.
#[inline(always)]
unsafe fn syscall4(nr: i64, a: i64, b: i64, c: i64, d: i64) -> i64 {
    let r: i64;
    // SAFETY (caller): the arguments are valid for system call `nr`.
    // The kernel clobbers rcx and r11 only; memory may change (buffers).
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => r,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        )
    };
    r
}

/// A raw result as the C library returns it: -1 with `errno`, or the value.
#[inline(always)]
fn libc_result(r: i64) -> c_int {
    if (-4095..0).contains(&r) {
        // SAFETY: this thread's errno slot.
        unsafe { *ckpt::interpose::errno_location() = -r as c_int };
        -1
    } else {
        r as c_int
    }
}

/// `HOT.direct` bits: which originals are the C library's own (another
/// preloaded library wrapping them must still see every call).
pub const DUP: u8 = 1;
pub const DUP2: u8 = 2;
pub const DUP3: u8 = 4;
/// open, open64, openat and openat64.
pub const OPEN: u8 = 8;

#[inline(always)]
fn allowed(bit: u8) -> bool {
    HOT.direct.load(Relaxed) & bit != 0
}

/// `dup(old)`, as glibc's (else through `real`).
#[inline(always)]
pub fn dup(old: c_int, real: impl FnOnce() -> c_int) -> c_int {
    if !allowed(DUP) {
        return through_libc(real);
    }
    // SAFETY: dup takes a descriptor number; any value is safe to pass.
    libc_result(unsafe { syscall4(libc::SYS_dup, old as i64, 0, 0, 0) })
}

/// `dup2(old, new)`, as glibc's (else through `real`).
#[inline(always)]
pub fn dup2(old: c_int, new: c_int, real: impl FnOnce() -> c_int) -> c_int {
    if !allowed(DUP2) {
        return through_libc(real);
    }
    // SAFETY: as for dup.
    libc_result(unsafe { syscall4(libc::SYS_dup2, old as i64, new as i64, 0, 0) })
}

/// `dup3(old, new, flags)`, as glibc's (else through `real`).
#[inline(always)]
pub fn dup3(old: c_int, new: c_int, flags: c_int, real: impl FnOnce() -> c_int) -> c_int {
    if !allowed(DUP3) {
        return through_libc(real);
    }
    // SAFETY: as for dup.
    libc_result(unsafe { syscall4(libc::SYS_dup3, old as i64, new as i64, flags as i64, 0) })
}

/// Called once by the shim's constructor, after every original was
/// resolved, with the originals of the dup wrappers (dup, dup2, dup3) and
/// of the open wrappers (open, open64, openat, openat64). Finds glibc's
/// `__libc_single_threaded` (looked up rather than linked, so a C library
/// older than 2.32 still loads the shim; then open/openat are never
/// direct) and which originals are glibc's own: a library preloaded after
/// the shim that wraps one of them (path remapping, fault injection, ...)
/// keeps receiving every call.
pub fn init(dups: [&ckpt::interpose::Original; 3], opens: [&ckpt::interpose::Original; 4]) {
    // SAFETY: dlsym with a NUL-terminated name.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__libc_single_threaded".as_ptr()) };
    HOT.single_threaded.store(p as *mut c_char, Release);
    // SAFETY: dlopen of the already loaded C library (NOLOAD: no loading).
    let libc_h = unsafe { libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    let own = |o: &ckpt::interpose::Original| -> bool {
        let next = o.resolved();
        // SAFETY: dlsym on a live handle with a NUL-terminated name.
        !libc_h.is_null()
            && !next.is_null()
            && unsafe { libc::dlsym(libc_h, o.name().as_ptr()) } == next
    };
    let mut bits = 0;
    for (o, bit) in dups.into_iter().zip([DUP, DUP2, DUP3]) {
        if own(o) {
            bits |= bit;
        }
    }
    if opens.into_iter().all(own) {
        bits |= OPEN;
    }
    HOT.direct.store(bits, Release);
    if !libc_h.is_null() {
        // SAFETY: dropping the reference our dlopen took.
        unsafe { libc::dlclose(libc_h) };
    }
}

/// Whether open/openat may be made directly: one thread (glibc clears the
/// flag before a second thread exists and never sets it again) and no
/// `pthread_cancel` ever called.
#[inline(always)]
fn cancellation_impossible() -> bool {
    let p = HOT.single_threaded.load(Relaxed);
    if !allowed(OPEN) || p.is_null() || HOT.cancel_requested.load(Relaxed) {
        return false;
    }
    // SAFETY: a live C library variable, read as a byte.
    unsafe { p.read_volatile() != 0 }
}

/// `openat(dirfd, path, flags, mode)` the way the wrapper's original would
/// run it: directly when no cancellation can happen, else through `real`.
/// `mode` is passed only when the flags ask for one (glibc reads the
/// variadic argument only then; otherwise it may be garbage).
#[inline(always)]
pub fn openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if !cancellation_impossible() {
        return through_libc(real);
    }
    let needs_mode = flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    let mode = if needs_mode { mode as i64 } else { 0 };
    // SAFETY: the program's arguments, passed on as the C library would;
    // the kernel validates the path pointer.
    libc_result(unsafe {
        syscall4(
            libc::SYS_openat,
            dirfd as i64,
            path as *const c_void as i64,
            flags as i64,
            mode,
        )
    })
}

/// The C library's call, out of the direct path's way.
#[cold]
#[inline(never)]
fn through_libc(real: impl FnOnce() -> c_int) -> c_int {
    real()
}
