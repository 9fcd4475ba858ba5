//! A second thread for the restorer's copy. UFFDIO_COPY scales with
//! threads (1 GiB on this 2-core machine: ~250 ms with one, ~135 ms with
//! two): the page allocation and charging it does per 4 KiB page, not the
//! memory bandwidth, is what limits one thread.
//!
//! The helper shares everything (CLONE_VM, CLONE_FILES, CLONE_THREAD), runs
//! on a stack of its own in the restorer's range, and is gone — its tid
//! released too — before `join` returns: the program's threads are made at
//! their old tids later, and the helper's could be one of them.

use core::arch::asm;
use core::sync::atomic::{AtomicI32, Ordering};

use ckpt_restorer::plan::{PROT_READ, PROT_WRITE, RESTORER_BASE};

use crate::sys::{self, Errno};

const STACK: u64 = RESTORER_BASE + (12 << 20);
const STACK_LEN: u64 = 256 << 10;

const SYS_CLONE: usize = 56;
const SYS_EXIT: usize = 60;
const SYS_FUTEX: usize = 202;
const SYS_TGKILL: usize = 234;
const SYS_GETPID: usize = 39;
const SYS_SCHED_YIELD: usize = 24;
const ESRCH: i32 = 3;
const FUTEX_WAIT: usize = 0;
const MAP_ANONYMOUS: u32 = 0x20;
const CLONE_FLAGS: usize = 0x100 // CLONE_VM
    | 0x200 // CLONE_FS
    | 0x400 // CLONE_FILES
    | 0x800 // CLONE_SIGHAND
    | 0x10000 // CLONE_THREAD
    | 0x40000 // CLONE_SYSVSEM
    | 0x100000 // CLONE_PARENT_SETTID
    | 0x200000; // CLONE_CHILD_CLEARTID

/// The helper's tid while it lives; the kernel clears it (and wakes a
/// futex waiter) when the helper exits.
static TID: AtomicI32 = AtomicI32::new(0);

/// A running helper thread.
pub struct Helper(i32);

/// Run `f(arg)` on a new thread of this process.
///
/// # Safety
/// `f` must be safe to run concurrently with the caller with `arg`, and
/// whatever `arg` points to must outlive [`Helper::join`]. At most one
/// helper at a time.
pub unsafe fn spawn(f: extern "C" fn(usize), arg: usize) -> Result<Helper, Errno> {
    // SAFETY: a fresh mapping in the restorer's own range, where nothing
    // else lies at STACK (see the range's layout in plan.rs and uffd.rs).
    let stack = unsafe {
        sys::mmap(
            STACK,
            STACK_LEN,
            PROT_READ | PROT_WRITE,
            sys::MAP_PRIVATE | MAP_ANONYMOUS | sys::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    }?;
    let top = stack + STACK_LEN;
    let ret: isize;
    // SAFETY: clone of this thread onto the new 16-byte aligned stack. The
    // child touches no Rust state of the parent's frame: it calls `f(arg)`
    // from registers the kernel copied and exits the thread; the parent
    // gets the tid (also stored in TID before clone returns).
    unsafe {
        asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r13",
            "call r12",
            "mov eax, {exit}",
            "xor edi, edi",
            "syscall",
            "ud2",
            "2:",
            exit = const SYS_EXIT,
            inlateout("rax") SYS_CLONE as isize => ret,
            in("rdi") CLONE_FLAGS,
            in("rsi") top,
            in("rdx") TID.as_ptr(),
            in("r10") TID.as_ptr(),
            in("r8") 0usize,
            in("r12") f,
            in("r13") arg,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    sys::check(ret).map(|tid| Helper(tid as i32))
}

impl Helper {
    /// Wait until the helper ended and its tid is free again.
    pub fn join(self) {
        loop {
            let t = TID.load(Ordering::Acquire);
            if t == 0 {
                break;
            }
            // SAFETY: futex wait on our own static word while it holds `t`.
            let _ = unsafe {
                sys::syscall6(
                    SYS_FUTEX,
                    TID.as_ptr() as usize,
                    FUTEX_WAIT,
                    t as usize,
                    0,
                    0,
                    0,
                )
            };
        }
        // The word is cleared a little before the kernel releases the
        // thread: wait for that too (bounded).
        // SAFETY: getpid and tgkill with signal 0 only probe.
        let pid = unsafe { sys::syscall6(SYS_GETPID, 0, 0, 0, 0, 0, 0) } as usize;
        for _ in 0..1_000_000 {
            // SAFETY: as above.
            let r = unsafe { sys::syscall6(SYS_TGKILL, pid, self.0 as usize, 0, 0, 0, 0) };
            if r == -(ESRCH as isize) {
                break;
            }
            // SAFETY: sched_yield takes no arguments.
            unsafe { sys::syscall6(SYS_SCHED_YIELD, 0, 0, 0, 0, 0, 0) };
        }
        // SAFETY: the helper's stack, unused now.
        let _ = unsafe { sys::munmap(STACK, STACK_LEN) };
    }
}
