//! The shim's global allocator: libc `malloc` normally, and a private
//! bump arena for the thread taking a checkpoint while the program is
//! frozen.
//!
//! Why: a frozen thread may hold malloc's lock (or the program's own
//! allocator's), so nothing may call malloc between freeze and thaw. With
//! this allocator the checkpoint code stays ordinary Rust (Vec, String,
//! serde) and never touches the program's heap in that window. The arena is
//! reset at the start of each window, so values built in a window stay
//! readable until the next checkpoint begins (the writer uses that to
//! write the encoded image after thawing), and must not be kept longer.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::*};
use std::alloc::System;

/// Virtual size of the arena (reserved lazily, committed as touched).
const ARENA_LEN: usize = 1 << 30;
/// The smallest arena tried when a limit on the address space
/// (RLIMIT_AS, `ulimit -v`: common on shared clusters) refuses the
/// full one; a checkpoint that needs more fails, saying so.
pub const ARENA_MIN: usize = 16 << 20;

static BASE: AtomicUsize = AtomicUsize::new(0);
/// The arena's size as mapped.
static LEN: AtomicUsize = AtomicUsize::new(ARENA_LEN);
static NEXT: AtomicUsize = AtomicUsize::new(0);
static HIGH_WATER: AtomicUsize = AtomicUsize::new(0);
/// In an image writer: the arena's use when it forked. What lies below is
/// the checkpoint's, stored in the image as it was: never handed out
/// again there (`dealloc` does not take it back). 0 elsewhere.
static FLOOR: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SCRATCH: Cell<bool> = const { Cell::new(false) };
}

fn scratch_on() -> bool {
    SCRATCH.try_with(|s| s.get()).unwrap_or(false)
}

fn in_arena(p: *mut u8) -> bool {
    let base = BASE.load(Relaxed);
    base != 0 && (p as usize) >= base && (p as usize) < base + LEN.load(Relaxed)
}

/// Start a window: map the arena if needed (call *before* freezing: mmap
/// is a syscall, but the first call may fail), reset it, and route this
/// thread's allocations into it.
pub fn scratch_begin() -> Result<(), String> {
    if BASE.load(Relaxed) == 0 {
        // Under a limit on the address space, an eighth of it at most (the
        // program's share stays its own); halved while refused.
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit into a live struct.
        let limited = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } == 0
            && lim.rlim_cur != libc::RLIM_INFINITY;
        let mut len = if limited {
            ((lim.rlim_cur / 8) as usize).clamp(ARENA_MIN, ARENA_LEN) & !0xfff
        } else {
            ARENA_LEN
        };
        let p = loop {
            // SAFETY: anonymous private mapping, no address hint.
            let p = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                break p;
            }
            if len <= ARENA_MIN {
                return Err(format!(
                    "cannot map the checkpoint scratch arena ({} MiB): {} (a limit on the \
                     address space, `ulimit -v`?)",
                    len >> 20,
                    std::io::Error::last_os_error()
                ));
            }
            len /= 2;
        };
        LEN.store(len, Relaxed);
        BASE.store(p as usize, Relaxed);
    }
    let used = HIGH_WATER.swap(0, Relaxed);
    if used > 64 << 20 {
        // Give back what a large previous checkpoint touched.
        // SAFETY: the range lies inside our own arena mapping.
        unsafe { libc::madvise(BASE.load(Relaxed) as *mut _, used, libc::MADV_DONTNEED) };
    }
    NEXT.store(0, Relaxed);
    FLOOR.store(0, Relaxed);
    SCRATCH.with(|s| s.set(true));
    Ok(())
}

/// In the image writer, first thing after the fork: the arena's use now
/// is the checkpoint's (see `FLOOR`).
pub fn writer_forked() {
    FLOOR.store(NEXT.load(Relaxed), Relaxed);
}

/// The arena's use when this image writer forked (None outside a
/// writer: a checkpoint always has allocated by then).
pub fn writer_floor() -> Option<usize> {
    let f = FLOOR.load(Relaxed);
    (f != 0).then_some(f)
}

/// The arena's mapping (address, length), once mapped.
pub fn arena_range() -> Option<(usize, usize)> {
    let base = BASE.load(Relaxed);
    (base != 0).then_some((base, LEN.load(Relaxed)))
}

/// Route this thread's allocations into the arena again without
/// resetting it: after a restart, the checkpoint's values in it (the
/// gathered state) are still needed. Post-restart context.
pub fn scratch_resume() {
    SCRATCH.with(|s| s.set(true));
}

/// End the window on this thread: allocations go back to malloc.
pub fn scratch_end() {
    SCRATCH.with(|s| s.set(false));
    HIGH_WATER.fetch_max(NEXT.load(Relaxed), Relaxed);
}

fn bump(l: Layout) -> *mut u8 {
    let base = BASE.load(Relaxed);
    let mut cur = NEXT.load(Relaxed);
    loop {
        let start = (base + cur).next_multiple_of(l.align()) - base;
        let end = start + l.size();
        if end > LEN.load(Relaxed) {
            return ptr::null_mut();
        }
        match NEXT.compare_exchange_weak(cur, end, Relaxed, Relaxed) {
            Ok(_) => return (base + start) as *mut u8,
            Err(now) => cur = now,
        }
    }
}

/// Declare in the shim: `#[global_allocator] static A: ShimAllocator = ShimAllocator;`
pub struct ShimAllocator;

// SAFETY: every pointer handed out is valid for its layout: either from
// System or from the arena, which is never unmapped and never reused
// within a window.
unsafe impl GlobalAlloc for ShimAllocator {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if scratch_on() {
            bump(l)
        } else {
            System.alloc(l)
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // Arena memory is reclaimed wholesale (but the newest block, which
        // is taken back at once: a scratch buffer made and dropped per
        // step costs nothing); heap memory freed during a window is leaked
        // rather than handed to a possibly locked malloc.
        if in_arena(p) {
            let at = p as usize - BASE.load(Relaxed);
            if at >= FLOOR.load(Relaxed) {
                let _ = NEXT.compare_exchange(at + l.size(), at, Relaxed, Relaxed);
            }
        } else if !scratch_on() {
            System.dealloc(p, l)
        }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if !scratch_on() && !in_arena(p) {
            return System.realloc(p, l, new);
        }
        let nl = Layout::from_size_align_unchecked(new, l.align());
        let q = self.alloc(nl);
        if !q.is_null() {
            ptr::copy_nonoverlapping(p, q, l.size().min(new));
            self.dealloc(p, l);
        }
        q
    }
}
