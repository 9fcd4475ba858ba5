//! Guard pages (MADV_GUARD_INSTALL, Linux 6.13), sealed ranges (mseal,
//! Linux 6.10) and a region's own NUMA policy (mbind): what the kernel
//! keeps on a range that a restart, which maps memory anew, must install
//! again. A guard page faults when touched (an allocator's overrun
//! barrier, a thread stack's guard); a sealed range cannot be unmapped,
//! moved, made writable or discarded (Chrome's and the kernel's
//! hardening).
//!
//! Verbs: snapshot (the image writer, in its fork of the frozen program:
//! guard pages are found while its pages are scanned, see `memory::scan`;
//! a seal by [`sealed`], a policy by [`mempolicy`]; a region left out of
//! the fork takes the earlier image's guard pages and is asked the others
//! while frozen, see `memory::stage`), [`restore`] (post-restart, once
//! every mapping is in place: a sealed range cannot be changed after;
//! from the plan's final steps, [`from_plan`]). No recording: all are
//! read from the kernel, so a seal made by an inline system call (Go,
//! Chrome) is found as one made through the C library.

use ckpt_restorer::plan::{PlanFinal, FINAL_GUARD, FINAL_POLICY};
use core::mem::size_of;

/// mseal(2).
const SYS_MSEAL: libc::c_long = 462;
/// MADV_GUARD_INSTALL.
const MADV_GUARD_INSTALL: libc::c_int = 102;
/// get_mempolicy: the policy of the region holding the address.
const MPOL_F_ADDR: libc::c_ulong = 1 << 1;

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

/// The NUMA policy of the region holding `addr` if it has one of its
/// own (mbind), else None. Writer context (a fork keeps each region's
/// policy), or frozen. No allocation unless it has one.
pub fn mempolicy(addr: u64) -> Option<crate::image::MemPolicy> {
    let mut mode: i32 = 0;
    let mut nodes = [0u64; crate::threads::NODE_WORDS];
    // SAFETY: get_mempolicy(MPOL_F_ADDR) of this process's own address
    // into locals sized for the node count given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode,
            nodes.as_mut_ptr(),
            nodes.len() * 64,
            addr,
            MPOL_F_ADDR,
        )
    };
    if r != 0 {
        return None;
    }
    crate::image::MemPolicy::of(mode, nodes.into_iter())
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

/// Give regions their NUMA policy and install guard pages again, then
/// seal the sealed regions (`finals`, from [`from_plan`]). Post-restart,
/// after every mapping of the image is in place (shared memory mapped
/// over its stand-in included): nothing unmaps or changes a sealed range
/// after this. A refusal is said.
pub fn restore(finals: &[PlanFinal]) {
    let mut sorted: Vec<&PlanFinal> = finals.iter().collect();
    // Seals last: a sealed read-only range refuses MADV_GUARD_INSTALL.
    sorted.sort_by_key(|f| f.kind != FINAL_GUARD && f.kind != FINAL_POLICY);
    for f in sorted {
        let (what, rc) = if f.kind == FINAL_POLICY {
            // SAFETY: mbind of the program's own region from a local
            // node mask of 64 bits; moves no page (no MPOL_MF_* flag).
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_mbind,
                    f.start,
                    f.len,
                    f.mode,
                    &f.nodes,
                    64usize,
                    0usize,
                )
            };
            ("its NUMA memory policy cannot be given again", rc)
        } else if f.kind == FINAL_GUARD {
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
