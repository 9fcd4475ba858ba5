//! Memory advice that changes what fork() copies (MADV_DONTFORK,
//! MADV_WIPEONFORK): noted, so that checkpoints look for such ranges and
//! still store them (see `ckpt::memory::fork_advice`); other advice the
//! kernel keeps on a mapping is noted too (`ckpt::memory::advice`), as
//! are mlock2's lock-on-fault and guard pages installed or removed (see
//! `ckpt::memory::stage::guards_changed`). Every call goes straight to
//! the original after a comparison or two. mlockall: its flags are
//! recorded (see `ckpt::memory::locked`), and ckpt's own mappings are
//! kept out of MCL_CURRENT.

use ckpt_macros::interpose;
use libc::{c_int, c_void};

const MADV_GUARD_INSTALL: c_int = 102;
const MADV_GUARD_REMOVE: c_int = 103;

/// Note advice that keeps memory out of forks. Always false, so that (as
/// the `when` filter below) every call goes straight to the original,
/// whatever state the shim is in: ready or not, on any thread.
#[inline(always)]
fn note_fork_advice(advice: c_int) -> bool {
    if advice == libc::MADV_DONTFORK || advice == libc::MADV_WIPEONFORK {
        ckpt::memory::fork_advice::record();
    } else if advice == MADV_GUARD_INSTALL || advice == MADV_GUARD_REMOVE {
        ckpt::memory::stage::guards_changed();
    } else if ckpt::memory::advice::kept(advice) {
        ckpt::memory::advice::record();
    }
    false
}

#[interpose(when = note_fork_advice(advice))]
unsafe fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int {
    // Never runs: the filter sends every call to the original.
    let _ = (ret, addr, len, advice);
}

/// Note lock-on-fault (see `ckpt::memory::locked`). Always false, as
/// `note_fork_advice`.
#[inline(always)]
fn note_lock_on_fault(flags: libc::c_uint) -> bool {
    if flags & 1 != 0 {
        // MLOCK_ONFAULT
        ckpt::memory::locked::record_on_fault();
    }
    false
}

#[interpose(when = note_lock_on_fault(flags))]
unsafe fn mlock2(addr: *const c_void, len: usize, flags: libc::c_uint) -> c_int {
    // Never runs: the filter sends every call to the original.
    let _ = (ret, addr, len, flags);
}

#[interpose(around)]
unsafe fn mlockall(flags: c_int) -> c_int {
    // Recording: no checkpoint while ckpt's mappings are hidden.
    guard.record(|| {
        let current = flags & libc::MCL_CURRENT != 0;
        if current {
            ckpt::memory::locked::before_mlockall_current();
        }
        let r = real(flags);
        if current {
            ckpt::memory::locked::after_mlockall_current();
        }
        if r == 0 && flags & libc::MCL_FUTURE != 0 {
            // What a restart must give again (MCL_CURRENT: the ranges).
            ckpt::memory::locked::record(flags & (libc::MCL_FUTURE | libc::MCL_ONFAULT));
        }
        r
    })
}

#[interpose]
unsafe fn munlockall() -> c_int {
    if ret == 0 {
        ckpt::memory::locked::record(0);
    }
}
