//! Process attributes set with prctl that a restart would otherwise lose:
//! "not dumpable" (programs holding secrets set it to keep them out of
//! core files and ptrace), no_new_privs, child subreaper, THP disabled
//! (keep capabilities is snapshot here too; it is per thread and set
//! again with the credentials, `process::restore_credentials`);
//! with them the personality (`setarch -R`) and the I/O priority
//! (`ionice`), memory-deny-write-execute, the OOM score adjustment and the
//! core dump filter.
//! A seccomp filter cannot be reinstated (its program is not readable
//! without privilege): restart and `ckpt checkpoint` say so.
//!
//! Verbs: `snapshot` (frozen, on the coordinating thread; the attributes
//! are the process's or inherited by every thread), `restore`
//! (post-restart, on the leader before the other threads are made, so
//! they inherit them).

use crate::image::PrctlState;
use crate::sys;
use core::sync::atomic::{AtomicI32, Ordering::Relaxed};

/// The program's own "dumpable" while a checkpoint lends it 1 (-1: not
/// lent).
static LENT: AtomicI32 = AtomicI32::new(-1);

/// A process that is not dumpable (it said so, or changed identity since
/// it started: the kernel resets it then) has its /proc/self files owned
/// by root, so its checkpoint cannot read its own pagemap or descriptors.
/// For the checkpoint only it is made dumpable; the image records the
/// program's value, and [`give_back_dumpable`] sets it again. (The image
/// holds all a dumpable process would show.) Before freezing.
pub fn lend_dumpable() {
    let d = get(libc::PR_GET_DUMPABLE);
    // SAFETY: PR_SET_DUMPABLE with an integer, on this process.
    if d != 1 && unsafe { libc::syscall(libc::SYS_prctl, libc::PR_SET_DUMPABLE, 1, 0, 0, 0) } == 0 {
        LENT.store(d, Relaxed);
    }
}

/// The program's own "dumpable" again, after a checkpoint lent it 1;
/// unless it is not 1 any more: the program set it meanwhile (or changed
/// identity, which resets it), and what it set stays.
pub fn give_back_dumpable() {
    let d = LENT.swap(-1, Relaxed);
    if d >= 0 && get(libc::PR_GET_DUMPABLE) == 1 {
        // SAFETY: PR_SET_DUMPABLE with an integer, on this process.
        unsafe { libc::syscall(libc::SYS_prctl, libc::PR_SET_DUMPABLE, d, 0, 0, 0) };
    }
}

fn get(op: libc::c_int) -> i32 {
    // SAFETY: a PR_GET_* query without pointer arguments.
    unsafe { libc::prctl(op, 0, 0, 0, 0) }
}

/// The attributes now; `status` is /proc/self/status (for Seccomp).
pub fn snapshot(status: &[u8]) -> PrctlState {
    let mut subreaper: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int.
    unsafe {
        libc::prctl(
            libc::PR_GET_CHILD_SUBREAPER,
            &mut subreaper as *mut libc::c_int,
        )
    };
    PrctlState {
        dumpable: match LENT.load(Relaxed) {
            d if d >= 0 => d,
            _ => get(libc::PR_GET_DUMPABLE),
        },
        no_new_privs: get(libc::PR_GET_NO_NEW_PRIVS) == 1,
        child_subreaper: subreaper != 0,
        thp_disable: get(libc::PR_GET_THP_DISABLE) == 1,
        seccomp: sys::field(status, b"Seccomp:")
            .and_then(sys::parse_i64)
            .unwrap_or(0) as i32,
        // SAFETY: personality(0xffffffff) only queries.
        personality: unsafe { libc::personality(0xffff_ffff) } as u32,
        // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, 0): this process's.
        ioprio: unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) } as i32,
        keepcaps: get(libc::PR_GET_KEEPCAPS) == 1,
        mdwe: get(PR_GET_MDWE).max(0) as u32,
        oom_score_adj: read_proc_number(c"/proc/self/oom_score_adj", 10).map(|v| v as i32),
        coredump_filter: read_proc_number(c"/proc/self/coredump_filter", 16).map(|v| v as u32),
        membarrier: membarrier_registrations(),
        memory_merge: get(PR_GET_MEMORY_MERGE) == 1,
    }
}

/// membarrier(2) commands (linux/membarrier.h): the registrations, and
/// the private barriers a registration allows.
const MEMBARRIER_REGISTER_GLOBAL_EXPEDITED: u32 = 1 << 2;
const MEMBARRIER_PRIVATE_EXPEDITED: u32 = 1 << 3;
const MEMBARRIER_REGISTER_PRIVATE_EXPEDITED: u32 = 1 << 4;
const MEMBARRIER_PRIVATE_EXPEDITED_SYNC_CORE: u32 = 1 << 5;
const MEMBARRIER_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: u32 = 1 << 6;
const MEMBARRIER_PRIVATE_EXPEDITED_RSEQ: u32 = 1 << 7;
const MEMBARRIER_REGISTER_PRIVATE_EXPEDITED_RSEQ: u32 = 1 << 8;
const MEMBARRIER_GET_REGISTRATIONS: u32 = 1 << 9;

fn membarrier(cmd: u32) -> i64 {
    // SAFETY: membarrier with a command and no flags: a query, a
    // registration or a barrier of this process's own threads.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) }
}

/// This process's membarrier registrations: asked (Linux 6.3 on), else
/// found by trying each private barrier (which fails unregistered; a
/// global registration cannot be seen so). Raw calls (frozen).
fn membarrier_registrations() -> u32 {
    let r = membarrier(MEMBARRIER_GET_REGISTRATIONS);
    if r >= 0 {
        return r as u32;
    }
    [
        (
            MEMBARRIER_PRIVATE_EXPEDITED,
            MEMBARRIER_REGISTER_PRIVATE_EXPEDITED,
        ),
        (
            MEMBARRIER_PRIVATE_EXPEDITED_SYNC_CORE,
            MEMBARRIER_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
        ),
        (
            MEMBARRIER_PRIVATE_EXPEDITED_RSEQ,
            MEMBARRIER_REGISTER_PRIVATE_EXPEDITED_RSEQ,
        ),
    ]
    .into_iter()
    .filter(|&(barrier, _)| membarrier(barrier) == 0)
    .fold(0, |m, (_, register)| m | register)
}

/// Register again what was registered (post-restart); refused: said.
fn membarrier_again(mask: u32) {
    for register in [
        MEMBARRIER_REGISTER_GLOBAL_EXPEDITED,
        MEMBARRIER_REGISTER_PRIVATE_EXPEDITED,
        MEMBARRIER_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
        MEMBARRIER_REGISTER_PRIVATE_EXPEDITED_RSEQ,
    ] {
        if mask & register != 0 && membarrier(register) != 0 {
            crate::restart_report::warn(&format!(
                "cannot register for membarrier again (command {register:#x}: {}): the \
                 program's expedited barriers will fail",
                std::io::Error::last_os_error()
            ));
        }
    }
}

const PR_SET_MDWE: libc::c_int = 65;
const PR_GET_MDWE: libc::c_int = 66;
/// KSM merging of the whole process (Linux 6.4).
const PR_SET_MEMORY_MERGE: libc::c_int = 67;
const PR_GET_MEMORY_MERGE: libc::c_int = 68;

/// A number in a small /proc file, in `radix`. Raw read (frozen).
fn read_proc_number(path: &core::ffi::CStr, radix: u32) -> Option<i64> {
    let mut buf = [0u8; 32];
    let n = sys::read_small(libc::AT_FDCWD, path, &mut buf)?;
    let text = core::str::from_utf8(&buf[..n]).ok()?.trim();
    i64::from_str_radix(text, radix).ok()
}

/// Write `text` to a small /proc file of this process; whether it took.
fn write_proc(path: &str, text: &str) -> bool {
    std::fs::write(path, text).is_ok()
}

/// Set them again (each only where it differs from a fresh process's).
pub fn restore(s: &PrctlState) {
    let set = |op: libc::c_int, v: libc::c_ulong, what: &str| {
        // SAFETY: a PR_SET_* call with integer arguments only.
        if unsafe { libc::prctl(op, v, 0, 0, 0) } != 0 {
            crate::restart_report::warn(&format!("cannot set {what} again"));
        }
    };
    // Before "not dumpable", which makes these files root's.
    if let Some(v) = s.oom_score_adj {
        if read_proc_number(c"/proc/self/oom_score_adj", 10) != Some(v as i64)
            && !write_proc("/proc/self/oom_score_adj", &v.to_string())
        {
            crate::restart_report::warn(&format!(
                "cannot set the OOM score adjustment to {v} again (lowering it needs privilege)"
            ));
        }
    }
    if let Some(v) = s.coredump_filter {
        if read_proc_number(c"/proc/self/coredump_filter", 16) != Some(v as i64)
            && !write_proc("/proc/self/coredump_filter", &format!("{v:#x}"))
        {
            crate::restart_report::warn("cannot set the core dump filter again");
        }
    }
    if s.child_subreaper {
        set(
            libc::PR_SET_CHILD_SUBREAPER,
            1,
            "the child subreaper attribute",
        );
    }
    if s.thp_disable {
        set(libc::PR_SET_THP_DISABLE, 1, "THP disabled");
    }
    if s.memory_merge {
        // (Needs CAP_SYS_RESOURCE: refused, it is said.)
        set(
            PR_SET_MEMORY_MERGE,
            1,
            "KSM merging of all its memory (PR_SET_MEMORY_MERGE)",
        );
    }
    if s.dumpable == 0 {
        set(libc::PR_SET_DUMPABLE, 0, "not dumpable");
    }
    if s.no_new_privs {
        set(libc::PR_SET_NO_NEW_PRIVS, 1, "no_new_privs");
    }
    // SAFETY: personality(0xffffffff) only queries.
    let now = unsafe { libc::personality(0xffff_ffff) } as u32;
    if s.personality != now {
        // SAFETY: setting the program's own personality flags.
        if unsafe { libc::personality(s.personality as libc::c_ulong) } == -1 {
            crate::restart_report::warn("cannot set the personality again");
        }
    }
    if s.ioprio > 0 {
        // SAFETY: ioprio_set(IOPRIO_WHO_PROCESS, 0, prio) on this process.
        if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, s.ioprio) } != 0 {
            crate::restart_report::warn("cannot set the I/O priority again");
        }
    }
    if s.mdwe != 0 {
        set(
            PR_SET_MDWE,
            s.mdwe as libc::c_ulong,
            "memory-deny-write-execute",
        );
    }
    membarrier_again(s.membarrier);
    if s.seccomp != 0 {
        crate::restart_report::warn(
            "the program ran under a seccomp filter, which a restart cannot reinstate",
        );
    }
}
