//! Thread creation and exit: recorded into `ckpt::threads`. New threads
//! start in a trampoline that registers them (tid, logical id) first; a
//! pthread key destructor sees every way a thread can end (return,
//! pthread_exit, cancellation).

use ckpt::threads::{self as rec, Attrs};
use ckpt_macros::interpose;
use core::ffi::c_void;
use core::sync::atomic::{AtomicU32, Ordering::*};
use libc::{c_int, pthread_attr_t, pthread_t};

/// 1 + the pthread key whose destructor reports thread exit (0 = none).
static EXIT_KEY: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_thread_exit(v: *mut c_void) {
    rec::record_exit(v as usize - 1);
}

fn exit_key() -> Option<libc::pthread_key_t> {
    let k = EXIT_KEY.load(Acquire);
    if k != 0 {
        return Some(k - 1);
    }
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: creating a key with a destructor that only touches atomics.
    if unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) } != 0 {
        return None;
    }
    match EXIT_KEY.compare_exchange(0, key + 1, AcqRel, Acquire) {
        Ok(_) => Some(key),
        Err(other) => {
            // SAFETY: deleting the key we just made and nobody used.
            unsafe { libc::pthread_key_delete(key) };
            Some(other - 1)
        }
    }
}

/// First code of every thread the program creates.
extern "C" fn start_trampoline(p: *mut c_void) -> *mut c_void {
    let slot = p as usize;
    let (start, arg) = rec::record_started(slot);
    let key = exit_key();
    if let Some(k) = key {
        // SAFETY: setting this thread's value of our key.
        unsafe { libc::pthread_setspecific(k, (slot + 1) as *mut c_void) };
    }
    // SAFETY: `start` is the program's start routine given to pthread_create.
    let f: extern "C" fn(*mut c_void) -> *mut c_void = unsafe { core::mem::transmute(start) };
    let r = f(arg as *mut c_void);
    if let Some(k) = key {
        // SAFETY: clearing our key so its destructor does not run twice.
        unsafe { libc::pthread_setspecific(k, core::ptr::null_mut()) };
    }
    rec::record_exit(slot);
    r
}

/// Read the attributes a thread is being created with.
unsafe fn attrs_of(attr: *const pthread_attr_t) -> Attrs {
    let mut a = Attrs {
        inherit_sched: true,
        ..Attrs::default()
    };
    let mut default: pthread_attr_t = core::mem::zeroed();
    let attr = if attr.is_null() {
        libc::pthread_attr_init(&mut default);
        &default as *const pthread_attr_t
    } else {
        attr
    };
    let mut v: c_int = 0;
    if pthread_attr_getdetachstate(attr, &mut v) == 0 {
        a.detached = v == libc::PTHREAD_CREATE_DETACHED;
    }
    let mut sz: usize = 0;
    if libc::pthread_attr_getstacksize(attr, &mut sz) == 0 {
        a.stack_size = sz as u64;
    }
    if libc::pthread_attr_getguardsize(attr, &mut sz) == 0 {
        a.guard_size = sz as u64;
    }
    if pthread_attr_getschedpolicy(attr, &mut v) == 0 {
        a.sched_policy = v;
    }
    let mut sp: libc::sched_param = core::mem::zeroed();
    if pthread_attr_getschedparam(attr, &mut sp) == 0 {
        a.sched_priority = sp.sched_priority;
    }
    if pthread_attr_getinheritsched(attr, &mut v) == 0 {
        a.inherit_sched = v == 0; // PTHREAD_INHERIT_SCHED
    }
    if core::ptr::eq(attr, &default) {
        libc::pthread_attr_destroy(&mut default);
    }
    a
}

extern "C" {
    fn pthread_attr_getdetachstate(attr: *const pthread_attr_t, state: *mut c_int) -> c_int;
    fn pthread_attr_getschedpolicy(attr: *const pthread_attr_t, policy: *mut c_int) -> c_int;
    fn pthread_attr_getschedparam(
        attr: *const pthread_attr_t,
        param: *mut libc::sched_param,
    ) -> c_int;
    fn pthread_attr_getinheritsched(attr: *const pthread_attr_t, inherit: *mut c_int) -> c_int;
}

#[interpose(around)]
unsafe fn pthread_create(
    thread: *mut pthread_t,
    attr: *const pthread_attr_t,
    start: *mut c_void,
    arg: *mut c_void,
) -> c_int {
    let attrs = attrs_of(attr);
    let Some(slot) = guard.record(|| rec::record_create(start as u64, arg as u64, &attrs)) else {
        return real(thread, attr, start, arg);
    };
    let r = real(
        thread,
        attr,
        start_trampoline as *const () as *mut c_void,
        slot as *mut c_void,
    );
    guard.record(|| {
        if r == 0 {
            rec::record_created(slot, *thread)
        } else {
            rec::record_create_failed(slot)
        }
    });
    r
}

#[interpose]
unsafe fn pthread_detach(thread: pthread_t) -> c_int {
    if ret == 0 {
        rec::record_detach(thread);
    }
}

#[interpose(around)]
unsafe fn pthread_exit(retval: *mut c_void) {
    // The key destructor records the exit; leave the wrapper first, the
    // real call unwinds this frame and never returns.
    drop(guard);
    real(retval)
}

/// Note a cancellation request: from then on open/openat go through the
/// C library (see `direct`). Always false, so that (as the `when` filter
/// below) every call goes straight to the original, whatever state the
/// shim is in: ready or not, on any thread.
fn note_cancel_request() -> bool {
    ckpt::interpose::HOT.cancel_requested.store(true, SeqCst);
    false
}

#[interpose(when = note_cancel_request())]
unsafe fn pthread_cancel(thread: pthread_t) -> c_int {
    // Never runs: the filter sends every call to the original.
    let _ = (ret, thread);
}
