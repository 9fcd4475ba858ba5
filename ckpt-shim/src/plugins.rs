//! The shim's side of plugins (see `ckpt::plugin`): a plugin's
//! constructor may run before the shim's, so it asks to be called back
//! once the shim is ready; its wrappers then share the shim's per-thread
//! state and freeze hook.

use ckpt::interpose;
use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering::*};

const MAX: usize = 32;
static WAITING: [AtomicUsize; MAX] = [const { AtomicUsize::new(0) }; MAX];

/// `ckpt_shim_on_ready(f)`: call `f` once the shim is ready (now, if it
/// is). 0, or -1 when too many plugins wait.
#[no_mangle]
pub extern "C" fn ckpt_shim_on_ready(f: extern "C" fn()) -> i32 {
    if interpose::is_ready() {
        f();
        return 0;
    }
    for w in WAITING.iter() {
        if w.compare_exchange(0, f as usize, AcqRel, Relaxed).is_ok() {
            return 0;
        }
    }
    -1
}

/// Call the plugins that waited for the shim (from its constructor, once
/// ready, as the program's code: not inside ckpt).
pub fn run_waiting() {
    for w in WAITING.iter() {
        let f = w.swap(0, AcqRel);
        if f != 0 {
            // SAFETY: only ckpt_shim_on_ready stores here, an `extern "C" fn()`.
            let f: extern "C" fn() = unsafe { core::mem::transmute(f) };
            f();
        }
    }
}

/// This thread's interposition state, shared with plugins. Signal-safe.
#[no_mangle]
pub extern "C" fn ckpt_shim_thread_state() -> *const c_void {
    interpose::thread_state_ptr()
}

/// The hook a plugin's wrapper calls to park a thread whose freeze was
/// deferred while it recorded.
#[no_mangle]
pub extern "C" fn ckpt_shim_freeze_hook() -> *mut c_void {
    interpose::freeze_hook()
}
