//! Facts about glibc's per-thread data that a restart must put back,
//! found at start-up rather than hard-coded per glibc version.
//!
//! - The thread pointer (FS base) is glibc's `struct pthread`.
//! - glibc caches the kernel tid inside it; the offset is found by looking
//!   for `gettid()` in the calling thread's descriptor.
//! - glibc 2.35+ registers an rseq area per thread at
//!   `thread pointer + __rseq_offset`.

use crate::sys;
use core::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::*};

const ARCH_SET_FS: i32 = 0x1002;
const ARCH_GET_FS: i32 = 0x1003;
const ARCH_SET_GS: i32 = 0x1001;
const ARCH_GET_GS: i32 = 0x1004;
const ARCH_GET_XCOMP_PERM: i32 = 0x1022;
const ARCH_REQ_XCOMP_PERM: i32 = 0x1023;
/// The signature glibc registers rseq areas with.
pub const RSEQ_SIG: u32 = 0x5305_3053;
/// The length glibc 2.35+ registers (the area's full size, not `__rseq_size`).
const RSEQ_LEN: u32 = 32;

static TID_OFFSET: AtomicU64 = AtomicU64::new(0);
static RSEQ_OFFSET: AtomicI64 = AtomicI64::new(0);
static RSEQ_REGISTERED_LEN: AtomicU32 = AtomicU32::new(0);

/// Learn the facts on the calling (main) thread. Call once at start-up.
pub fn init() -> Result<(), String> {
    let tp = thread_pointer();
    let tid = sys::gettid();
    // struct pthread is well over 1 KiB; the tid sits in its first 2 KiB.
    let offset = (0..2048u64).step_by(4).find(|&o| {
        // SAFETY: reading the calling thread's own descriptor, which spans
        // more than 2 KiB of mapped memory (it is followed by static TLS).
        unsafe { ((tp + o) as *const i32).read() == tid }
    });
    let offset = offset.ok_or("cannot find glibc's cached thread id")?;
    TID_OFFSET.store(offset, Relaxed);
    // SAFETY: dlsym with valid C strings; the symbols, when present, are a
    // ptrdiff_t and an unsigned int exported by glibc 2.35+.
    unsafe {
        let off = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr());
        let size = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_size".as_ptr());
        if !off.is_null() && !size.is_null() && *(size as *const u32) > 0 {
            RSEQ_OFFSET.store(*(off as *const i64), Relaxed);
            RSEQ_REGISTERED_LEN.store(RSEQ_LEN, Relaxed);
        }
    }
    Ok(())
}

/// Offset of the cached tid in `struct pthread`.
pub fn tid_offset() -> u64 {
    TID_OFFSET.load(Relaxed)
}

/// Offset of the rseq area from the thread pointer and its registered
/// length (0 when glibc registers none).
pub fn rseq_layout() -> (i64, u32) {
    (RSEQ_OFFSET.load(Relaxed), RSEQ_REGISTERED_LEN.load(Relaxed))
}

/// The calling thread's FS base. Signal-safe.
pub fn thread_pointer() -> u64 {
    let mut v = 0u64;
    // SAFETY: arch_prctl(ARCH_GET_FS) writes one u64 into `v`.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_GET_FS, &mut v as *mut u64) };
    v
}

/// Set the calling thread's FS base. Post-restart context.
///
/// # Safety
/// `tp` must be a thread descriptor no other running thread uses.
pub unsafe fn set_thread_pointer(tp: u64) {
    libc::syscall(libc::SYS_arch_prctl, ARCH_SET_FS, tp);
}

/// The calling thread's robust futex list (head, length). Signal-safe.
pub fn robust_list() -> (u64, u64) {
    let (mut head, mut len) = (0u64, 0u64);
    // SAFETY: get_robust_list(0) writes a pointer and a length into locals.
    unsafe {
        libc::syscall(
            libc::SYS_get_robust_list,
            0,
            &mut head as *mut u64,
            &mut len as *mut u64,
        )
    };
    (head, len)
}

/// The rseq area registered for the thread whose pointer is `tp`, or 0.
/// Called on that thread. Signal-safe.
pub fn rseq_area(tp: u64) -> u64 {
    let (off, len) = rseq_layout();
    if len == 0 || tp == 0 {
        return 0;
    }
    let area = tp.wrapping_add(off as u64);
    // SAFETY: the area is part of this thread's descriptor; cpu_id (at 4)
    // is >= 0 only while registered.
    let cpu_id = unsafe { ((area + 4) as *const i32).read_volatile() };
    if cpu_id >= 0 {
        area
    } else {
        0
    }
}

/// Whether the calling thread has an rseq area registered (whose address
/// is unknown here): a registration of a probe area fails then; when it
/// succeeds the probe is unregistered at once. Signal-safe.
pub fn rseq_registered_elsewhere() -> bool {
    #[repr(C, align(32))]
    struct Probe([u32; 8]);
    let mut probe = Probe([0; 8]);
    probe.0[1] = u32::MAX; // cpu_id: not yet set
    let area = probe.0.as_mut_ptr() as u64;
    let sig = RSEQ_SIG as u64;
    // SAFETY: rseq on the calling thread with a 32-byte, 32-aligned area
    // of its own stack frame, unregistered before the frame ends. Raw:
    // the `syscall()` wrapper would record it as the program's.
    let r = unsafe { sys::raw_syscall4(libc::SYS_rseq, area, 32, 0, sig) };
    if r == 0 {
        // SAFETY: as above (RSEQ_FLAG_UNREGISTER with the same arguments).
        unsafe { sys::raw_syscall4(libc::SYS_rseq, area, 32, 1, sig) };
        return false;
    }
    // ENOSYS: the kernel has no rseq; EINVAL, EPERM, EBUSY: one is.
    r != -(libc::ENOSYS as i64)
}

/// Register the calling thread's rseq area again, with the length and
/// signature it had (0: glibc's). Post-restart context.
pub fn register_rseq(area: u64, len: u32, sig: u32) -> Result<(), i32> {
    let len = if len == 0 { rseq_layout().1 } else { len };
    let sig = if sig == 0 { RSEQ_SIG } else { sig };
    if area == 0 || len == 0 {
        return Ok(());
    }
    // The kernel refuses a registration whose cpu_id field is not "unset".
    // SAFETY: the area is this thread's; cpu_id_start at 0, cpu_id at 4.
    unsafe { ((area + 4) as *mut i32).write_volatile(-1) };
    // SAFETY: rseq(area, len, 0, sig) on the calling thread (raw: not
    // the program's own call).
    let r = unsafe { sys::raw_syscall4(libc::SYS_rseq, area, len as u64, 0, sig as u64) };
    if r < 0 {
        Err(-r as i32)
    } else {
        Ok(())
    }
}

/// The calling thread's GS base (0 when never set). Signal-safe.
pub fn gs_base() -> u64 {
    let mut v: u64 = 0;
    // SAFETY: arch_prctl(ARCH_GET_GS) writes one u64 into `v`.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_GET_GS, &mut v as *mut u64) };
    v
}

/// Set the calling thread's GS base. Post-restart.
pub fn set_gs_base(v: u64) -> Result<(), i32> {
    // SAFETY: arch_prctl(ARCH_SET_GS) with a plain value.
    if unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_GS, v) } != 0 {
        return Err(crate::interpose::errno());
    }
    Ok(())
}

/// The extended CPU state features this process may use (a bit per
/// XSAVE feature). Signal-safe.
pub fn xcomp_perm() -> u64 {
    let mut v: u64 = 0;
    // SAFETY: arch_prctl(ARCH_GET_XCOMP_PERM) writes one u64 into `v`.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_GET_XCOMP_PERM,
            &mut v as *mut u64,
        )
    };
    v
}

/// Ask for the dynamically enabled features of `perm` this process lacks
/// (AMX's tile data, feature 18); the features refused, as a mask.
/// Post-restart, before any thread returns to the program.
pub fn request_xcomp_perm(perm: u64) -> u64 {
    let mut refused = 0;
    for bit in 0..64 {
        if perm & (1 << bit) != 0 && xcomp_perm() & (1 << bit) == 0 {
            // SAFETY: arch_prctl(ARCH_REQ_XCOMP_PERM) with a feature number.
            if unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, bit as u64) } != 0
            {
                refused |= 1 << bit;
            }
        }
    }
    refused
}

/// AMX's tile state (XTILECFG and XTILEDATA, XSAVE features 17 and 18).
const AMX_TILES: u64 = 3 << 17;

/// Whether the signal frame whose `ucontext_t` is at `uc` holds AMX tile
/// state in use (its XSAVE header's XSTATE_BV). A restart cannot give it
/// back: a restored thread's state buffer has no room for it until its
/// own first tile instruction, and its signal return drops it.
///
/// # Safety
/// `uc` must be a live ucontext the kernel built (frozen coordinator).
pub unsafe fn frame_has_tiles(uc: u64) -> bool {
    if uc == 0 {
        return false;
    }
    // uc_mcontext.fpregs: after uc_flags, uc_link, uc_stack (40 bytes)
    // and the 23 general registers.
    let fp = *((uc + 40 + 8 * 23) as *const u64);
    // The XSAVE header follows the 512-byte legacy area.
    fp != 0 && *((fp + 512) as *const u64) & AMX_TILES != 0
}
