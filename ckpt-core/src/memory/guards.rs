//! Guard pages (MADV_GUARD_INSTALL, Linux 6.13) and sealed ranges
//! (mseal, Linux 6.10): what the kernel keeps on a range that a restart,
//! which maps memory anew, must install again. A guard page faults when
//! touched (an allocator's overrun barrier, a thread stack's guard); a
//! sealed range cannot be unmapped, moved, made writable or discarded
//! (Chrome's and the kernel's hardening).
//!
//! Verbs: snapshot (the image writer, in its fork of the frozen program:
//! guard pages are found while its pages are scanned, see `memory::scan`;
//! a seal by [`sealed`]; a region left out of the fork takes the earlier
//! image's guard pages and is asked [`sealed`] while frozen, see
//! `memory::stage`), [`restore`] (post-restart, once every mapping is in
//! place: a sealed range cannot be changed after, from the plan's final
//! steps, [`from_plan`]). No recording: both are read from the kernel, so
//! a seal made by an inline system call (Go, Chrome) is found as one made
//! through the C library.

use ckpt_restorer::plan::{PlanFinal, FINAL_GUARD};
use core::mem::size_of;

/// mseal(2).
const SYS_MSEAL: libc::c_long = 462;
/// MADV_GUARD_INSTALL.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Whether `[start, end)`, one whole mapping of the calling process with
/// protection `prot`, is sealed: an mprotect to the protection it
/// already has changes nothing, and a sealed mapping refuses any mprotect
/// with EPERM. Writer context (its fork keeps the program's seals), or
/// frozen. No allocation.
pub fn sealed(start: u64, end: u64, prot: u32) -> bool {
    // SAFETY: the range is one of this process's own mappings and `prot`
    // is its protection now, so the call changes nothing when it succeeds.
    let r = unsafe {
        libc::mprotect(
            start as *mut libc::c_void,
            (end - start) as usize,
            prot as i32,
        )
    };
    r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// What the restore plan at `plan` (the restorer's mapping, still there
/// when the restarted program starts) asks once memory is in place.
/// Post-restart, before ckpt's range is reserved again over the plan.
pub fn from_plan(plan: u64) -> Vec<PlanFinal> {
    use ckpt_restorer::plan::{Plan, PlanHeader};
    if plan == 0 {
        return Vec::new();
    }
    // SAFETY: the restorer jumped here with its validated plan mapped
    // read-only at `plan`, at least a header long.
    let head = unsafe { core::slice::from_raw_parts(plan as *const u8, size_of::<PlanHeader>()) };
    let view = Plan::len_of(head).and_then(|n| {
        // SAFETY: as above, the whole plan (`n` bytes, from its own header).
        let bytes = unsafe { core::slice::from_raw_parts(plan as *const u8, n as usize) };
        Plan::validated(bytes).ok().map(|v| v.finals().collect())
    });
    view.unwrap_or_else(|| {
        crate::restart_report::warn(
            "the restore plan cannot be read back: guard pages and seals are not put back",
        );
        Vec::new()
    })
}

/// Install guard pages again, then seal the sealed regions (`finals`,
/// from [`from_plan`]). Post-restart, after every mapping of the image is
/// in place (shared memory mapped over its stand-in included): nothing
/// unmaps or changes a sealed range after this. A refusal is said.
pub fn restore(finals: &[PlanFinal]) {
    let mut sorted: Vec<&PlanFinal> = finals.iter().collect();
    // Guards first: a sealed range refuses MADV_GUARD_INSTALL.
    sorted.sort_by_key(|f| f.kind != FINAL_GUARD);
    for f in sorted {
        let (what, rc) = if f.kind == FINAL_GUARD {
            // SAFETY: the guard pages' range is the program's own, and the
            // image held no contents for it (they were not read).
            let rc =
                unsafe { libc::syscall(libc::SYS_madvise, f.start, f.len, MADV_GUARD_INSTALL) };
            ("its guard pages cannot be installed again (they read as zeros instead of faulting)", rc)
        } else {
            // SAFETY: seals the program's own region, as it was at the checkpoint.
            let rc = unsafe { libc::syscall(SYS_MSEAL, f.start, f.len, 0) };
            (
                "it cannot be sealed again (the program can unmap or change it now)",
                rc,
            )
        };
        if rc != 0 {
            crate::restart_report::warn(&format!(
                "memory {:#x}-{:#x}: {what}: {}",
                f.start,
                f.start + f.len,
                std::io::Error::last_os_error()
            ));
        }
    }
}
