//! libckpt_shim.so — preloaded into every program started by `ckpt run`.
//!
//! It interposes the libc calls that create kernel state (see `wrap/`),
//! records them in ckpt-core's tables, and takes checkpoints on request
//! (see `control`: no thread of its own, a signal-driven socket). Everything the program can observe stays as it
//! would be without ckpt: results, errno, descriptor numbers, signal masks.

#![allow(clippy::missing_safety_doc)]

mod config;
mod control;
mod hooks;
mod init;
mod own_thread;
mod plugins;
mod timer_threads;
mod wrap;

/// The shim's own Rust allocations: malloc normally, a private arena while
/// the program is frozen (see `ckpt::alloc`).
#[global_allocator]
static ALLOC: ckpt::alloc::ShimAllocator = ckpt::alloc::ShimAllocator;
