//! `ckpt-restorer PLAN-FD`: the libc-free restorer of ckpt.
//!
//! A static ET_EXEC linked at `RESTORER_BASE` (see build.rs). It maps the
//! restore plan, checks it against this kernel, throws away the rest of its
//! address space, rebuilds the saved one and jumps into it. See restore.rs
//! for the steps and /work/shared/DESIGN.md, "Restore".
#![no_std]
#![no_main]
#![warn(unsafe_op_in_unsafe_fn)]

mod helper;
mod maps;
mod mem;
mod restore;
mod sys;
mod uffd;

use core::cell::UnsafeCell;

/// Size of the stack in .bss that `_start` switches to at once.
const STACK_SIZE: usize = 512 * 1024;

#[repr(C, align(16))]
struct Stack(UnsafeCell<[u8; STACK_SIZE]>);

// SAFETY: only `_start` touches STACK, by loading its end into rsp (the copy
// helper thread runs on a stack of its own); Rust code never forms a
// reference to it.
unsafe impl Sync for Stack {}

static STACK: Stack = Stack(UnsafeCell::new([0; STACK_SIZE]));

// The literal 524288 in `_start` must be STACK_SIZE.
const _: () = assert!(STACK_SIZE == 524_288);

core::arch::global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "lea rsp, [rip + {stack} + 524288]",
    "and rsp, -16",
    "call {main}",
    "ud2",
    stack = sym STACK,
    main = sym rust_main,
);

/// Parses a decimal descriptor number.
fn parse_fd(s: &[u8]) -> Option<i32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u64;
    }
    i32::try_from(v).ok()
}

/// Called by `_start` on the .bss stack with the kernel's initial stack
/// pointer (argc, argv..., NULL, envp..., NULL, auxv).
extern "C" fn rust_main(sp: *const usize) -> ! {
    // SAFETY: the kernel put argc at the initial stack pointer.
    let argc = unsafe { sp.read() };
    if argc != 2 {
        sys::Line::new()
            .s("usage: ckpt-restorer PLAN-FD (run by `ckpt restart`, not by hand)")
            .die(restore::EXIT_REFUSED);
    }
    // SAFETY: argc == 2, so argv[1] (at sp + 2 words) is a pointer to a
    // NUL-terminated string on the kernel-provided stack, still mapped.
    let arg = unsafe { (sp.add(2).read() as *const u8).as_ref() };
    let mut len = 0;
    let mut word = [0u8; 32];
    if let Some(p) = arg {
        let p: *const u8 = p;
        while len < word.len() {
            // SAFETY: we stop at the string's NUL, which the kernel guarantees.
            let c = unsafe { p.add(len).read() };
            if c == 0 {
                break;
            }
            word[len] = c;
            len += 1;
        }
    }
    match parse_fd(&word[..len]) {
        Some(fd) => restore::run(fd),
        None => sys::Line::new()
            .s("argument '")
            .b(&word[..len])
            .s("' is not a plan descriptor number (usage: ckpt-restorer PLAN-FD)")
            .die(restore::EXIT_REFUSED),
    }
}

/// The precompiled libcore's unwind tables name a personality routine even
/// though this binary is built with `panic = "abort"` and never unwinds.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut line = sys::Line::new();
    line.s("internal error (panic)");
    if let Some(loc) = info.location() {
        line.s(" at ").s(loc.file()).s(":").dec(loc.line() as u64);
    }
    line.die(restore::exit_code())
}
