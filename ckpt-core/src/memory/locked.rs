//! Locked memory (mlock, mlockall): a restart locks the same ranges again
//! and, after mlockall(MCL_FUTURE), keeps locking what is mapped later, so
//! a latency-sensitive program does not come back pageable.
//!
//! Verbs: `record` (the mlockall/munlockall wrappers: the MCL_FUTURE
//! flags, which the kernel does not show), `snapshot` (frozen: the locked
//! ranges from smaps, read only when /proc/self/status counts locked
//! memory), `restore` (post-restart).

use crate::image::Locked;
use crate::sys;
use core::sync::atomic::{AtomicI32, Ordering::*};

/// The flags of the program's last mlockall (0: none, or munlockall).
static MLOCKALL: AtomicI32 = AtomicI32::new(0);

/// The program called mlockall(`flags`) successfully (0 for munlockall).
pub fn record(flags: i32) {
    MLOCKALL.store(flags, Relaxed);
}

/// Set once the program called mlock2 with MLOCK_ONFAULT.
static LOCK2: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// The program called mlock2(MLOCK_ONFAULT): such ranges are looked for
/// even while none of their pages is locked yet. Signal-safe.
pub fn record_on_fault() {
    LOCK2.store(true, Relaxed);
}

/// What is locked now. Frozen context (scratch allocation).
pub fn snapshot() -> Locked {
    let mut buf = [0u8; 4096];
    let n = sys::read_small(libc::AT_FDCWD, c"/proc/self/status", &mut buf).unwrap_or(0);
    let status = &buf[..n];
    let locked_kb = sys::field(status, b"VmLck:")
        .and_then(|v| sys::parse_i64(v.split(|&b| b == b' ').find(|w| !w.is_empty())?))
        .unwrap_or(0);
    // Lock-on-fault ranges count in VmLck only once touched.
    let smaps = if locked_kb > 0 || LOCK2.load(Relaxed) {
        crate::names::read_proc("/proc/self/smaps").unwrap_or_default()
    } else {
        String::new()
    };
    let mut ranges = Vec::new();
    let mut on_fault = Vec::new();
    for (s, e, f) in super::vm_flags(&smaps) {
        if f.contains(&"lo") && f.contains(&"lf") {
            on_fault.push((s, e));
        } else if f.contains(&"lo") {
            ranges.push((s, e));
        }
    }
    Locked {
        ranges,
        mlockall_flags: MLOCKALL.load(Relaxed),
        on_fault,
    }
}

/// Lock the ranges again, then mlockall with the recorded flags.
/// Post-restart; failures (RLIMIT_MEMLOCK, no privilege) are warnings.
pub fn restore(l: &Locked) {
    let mut failed = 0u64;
    for &(start, end) in &l.ranges {
        // SAFETY: mlock of a range of our own restored address space.
        if unsafe { libc::syscall(libc::SYS_mlock, start, end - start) } != 0 {
            failed += end - start;
        }
    }
    for &(start, end) in &l.on_fault {
        // SAFETY: mlock2(MLOCK_ONFAULT) of a range of our own address space.
        if unsafe { libc::syscall(libc::SYS_mlock2, start, end - start, 1) } != 0 {
            failed += end - start;
        }
    }
    if !l.on_fault.is_empty() {
        record_on_fault();
    }
    if failed > 0 {
        crate::restart_report::warn(&format!(
            "cannot lock {} KiB of memory again (RLIMIT_MEMLOCK?)",
            failed / 1024
        ));
    }
    if l.mlockall_flags != 0 {
        // SAFETY: mlockall with the program's own flags.
        if unsafe { libc::syscall(libc::SYS_mlockall, l.mlockall_flags) } != 0 {
            crate::restart_report::warn("cannot call mlockall again");
        }
        record(l.mlockall_flags);
    }
}

/// ckpt's own large mappings (the scratch arena, the coordinator's
/// stack): mlockall(MCL_CURRENT) must not populate and lock them (1 GiB
/// of arena would become resident, or the call fail its RLIMIT_MEMLOCK).
pub fn own_mappings() -> impl Iterator<Item = (usize, usize)> {
    [
        crate::alloc::arena_range(),
        crate::quiesce::coordinator_stack_range(),
    ]
    .into_iter()
    .flatten()
}

/// Around the program's mlockall(MCL_CURRENT): first hide ckpt's own
/// mappings (PROT_NONE is marked locked but not populated) ...
pub fn before_mlockall_current() {
    for (a, n) in own_mappings() {
        // SAFETY: our own mappings; nothing uses them outside a checkpoint,
        // and the caller defers checkpoints until `after_mlockall_current`.
        unsafe { libc::syscall(libc::SYS_mprotect, a, n, libc::PROT_NONE) };
    }
}

/// ... then unlock them and make them usable again.
pub fn after_mlockall_current() {
    for (a, n) in own_mappings() {
        // SAFETY: as in `before_mlockall_current`.
        unsafe {
            libc::syscall(libc::SYS_munlock, a, n);
            libc::syscall(libc::SYS_mprotect, a, n, libc::PROT_READ | libc::PROT_WRITE);
        }
    }
}
