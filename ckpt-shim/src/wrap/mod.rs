//! The interposed functions, one module per kind of kernel state. Each is
//! declared once with `#[interpose]`; aliases and the variadic C ABI are
//! generated.
//!
//! Deliberately *not* wrapped (the kernel holds their state and reports it
//! at checkpoint, and wrapping would tax hot paths for nothing): lseek,
//! timer_gettime, setitimer, alarm, fcntl's F_SETFD/F_SETFL
//! effects (read back from fdinfo). `clock_gettime` and `timer_settime`
//! are wrapped for CPU-time clocks and absolute expiries only; every
//! other call is a compare and a tail jump.
//! `vfork` is not wrapped either: its child shares the caller's stack, so a
//! wrapper frame would be clobbered (exec wrappers still run in the child).

/// Waits the kernel never restarts after a handler (sleeps, poll, sigwait).
pub mod blocking;
/// CPU-time clocks that go on across a restart.
pub mod clocks;
/// System calls the wrappers make themselves (fewer mispredicted returns).
pub mod direct;
pub mod files;
/// Semaphore and System V IPC waits (same reason).
pub mod ipc;
/// madvise advice that keeps memory out of forks.
pub mod memory;
pub mod process;
/// rseq areas the program registers itself (through `syscall()`).
pub mod rseq;
pub mod signals;
pub mod threads;
pub mod timers;
/// Writes and receives a checkpoint would cut short (pipes, sockets).
pub mod transfer;
