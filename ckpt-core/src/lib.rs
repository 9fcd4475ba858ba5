//! ckpt: transparent checkpoint/restart for unmodified Linux x86_64 programs.
//!
//! This crate holds the pieces that live inside the checkpointed process
//! (the recorder tables, quiesce, snapshot, the image writer) and the ones
//! shared with the `ckpt` command (the image format, the control protocol).
//! The preloaded `libckpt_shim.so` links it; a Rust program may link it too
//! and call [`checkpoint()`], under `ckpt run` or started normally (see
//! [`Checkpointer`], [`resume`], [`on_restore`]).

pub mod interpose;

mod api;
#[doc(hidden)]
pub use api::doctest_setup;
pub use api::{
    after_checkpoint, before_checkpoint, checkpoint, checkpoint_to, forget, is_active, load,
    on_restore, restored, resume, stop_periodic, wait_for_image, Checkpoint, Checkpointer, Error,
    ShimEntry, SHIM_ENTRY,
};
pub use image::Codec;

/// The original of an interposed function, callable without recursion:
/// `ckpt::real!(open)(path, flags, mode)` calls libc's `open` even from
/// inside the shim. The argument is the path of the wrapper function.
#[macro_export]
macro_rules! real {
    ($($seg:ident)::+) => {
        $($seg)::+::real
    };
}

pub mod alloc;
pub mod checkpoint;
pub mod companions;
pub mod control;
pub mod cputime;
pub mod files;
pub mod glibc;
pub mod image;
pub mod memory;
pub mod names;
pub mod plugin;
pub mod process;
pub mod quiesce;
pub mod restart;
mod restart_report;
pub mod signals;
pub mod snapshot;
pub mod sys;
pub mod threads;
pub mod timers;
pub mod tree;
pub mod verify;
pub mod writer;
