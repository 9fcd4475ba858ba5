//! Plugins: a user's own library (a cdylib) with `#[interpose]` wrappers
//! for functions of the user's libraries and hooks that put back what ckpt
//! cannot (a library handle to reopen, a session to re-establish), loaded
//! with the shim by `ckpt run --plugin LIB.so`.
//!
//! A plugin is a few lines:
//!
//! ```ignore
//! use ckpt_macros::interpose;
//! ckpt_macros::originals_registry!();
//! ckpt::plugin!(resolve_all_originals, setup);
//!
//! #[interpose]
//! unsafe fn session_open(path: *const c_char) -> *mut c_void {
//!     remember(ret, path); // record what a restart needs, in plain memory
//! }
//!
//! fn setup() {
//!     ckpt::on_restore(|| reopen_every_remembered_session()).unwrap();
//! }
//! ```
//!
//! Its records need no saving of their own: they are the plugin's memory,
//! which every image holds and every restart brings back; the on-restore
//! hook reads them and reconnects, before any thread of the program goes
//! on. The plugin's wrappers share the shim's per-thread state, so a
//! checkpoint never freezes a thread half-way through a plugin's record.
//! `examples/session_plugin.rs` is a whole one, tested in tests/plugins.rs.

use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering::*};

/// The plugin's `setup`, run once the shim is ready.
static SETUP: AtomicUsize = AtomicUsize::new(0);

type OnReady = unsafe extern "C" fn(extern "C" fn()) -> i32;

fn shim_symbol(name: &core::ffi::CStr) -> *mut c_void {
    // SAFETY: dlsym with a valid NUL-terminated name.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

/// Called from the plugin's constructor by [`crate::plugin!`]: resolve the
/// plugin's originals, then, once the shim is ready (constructors of
/// preloaded libraries run in no fixed order), share its per-thread state,
/// turn the plugin's wrappers on and run `setup`. Without the shim (the
/// library loaded by a program not under `ckpt run`) the wrappers pass
/// straight through and `setup` does not run.
pub fn attach(resolve: fn() -> usize, setup: fn()) {
    resolve();
    SETUP.store(setup as usize, Release);
    let on_ready = shim_symbol(c"ckpt_shim_on_ready");
    if on_ready.is_null() {
        eprintln!("ckpt plugin: not loaded with ckpt's shim (use `ckpt run --plugin`); its wrappers do nothing");
        return;
    }
    // SAFETY: the shim exports ckpt_shim_on_ready with this signature.
    let on_ready: OnReady = unsafe { core::mem::transmute(on_ready) };
    // SAFETY: `ready` is a plain extern "C" fn of this library.
    if unsafe { on_ready(ready) } != 0 {
        eprintln!("ckpt plugin: the shim takes no more plugins; this one does nothing");
    }
}

extern "C" fn ready() {
    let state = shim_symbol(c"ckpt_shim_thread_state");
    let hook = shim_symbol(c"ckpt_shim_freeze_hook");
    if state.is_null() || hook.is_null() {
        eprintln!("ckpt plugin: the shim is of another version; this plugin does nothing");
        return;
    }
    // SAFETY: the shim exports ckpt_shim_freeze_hook as `extern "C" fn() -> *mut c_void`.
    let hook: extern "C" fn() -> *mut c_void = unsafe { core::mem::transmute(hook) };
    crate::interpose::share_shim_state(state, hook());
    crate::interpose::set_ready(true);
    let setup = SETUP.load(Acquire);
    if setup != 0 {
        // SAFETY: only `attach` stores here, always a `fn()`.
        let setup: fn() = unsafe { core::mem::transmute(setup) };
        setup();
    }
}

/// Make the enclosing cdylib a ckpt plugin: `ckpt::plugin!(resolve, setup)`
/// with `resolve` the `resolve_all_originals` that
/// `ckpt_macros::originals_registry!()` defines and `setup` a `fn()` run
/// once ckpt is ready (register hooks there). See [`crate::plugin`].
#[macro_export]
macro_rules! plugin {
    ($resolve:path, $setup:path) => {
        #[used]
        #[link_section = ".init_array"]
        static CKPT_PLUGIN_INIT: extern "C" fn() = {
            extern "C" fn ckpt_plugin_init() {
                $crate::plugin::attach($resolve, $setup);
            }
            ckpt_plugin_init
        };
    };
}
