//! Signal dispositions and masks. Handlers are recorded and replaced in the
//! kernel by ckpt's trampoline (see `ckpt::signals`). The reserved
//! checkpoint signal cannot be blocked, and the kernel keeps ckpt's handler
//! for it; a handler the program sets for it is recorded and run for every
//! delivery that is not ckpt's own. The kernel's handler keeps ckpt's
//! SA_RESTART, so such a delivery interrupts a blocking call only where
//! ckpt's wrappers see it (sleeps, poll, waits), not an unwrapped read:
//! the default signal (SIGRTMAX-7) is one programs rarely take.

use ckpt::signals::{self as rec, Action};
use ckpt_macros::interpose;
use libc::{c_int, sigset_t};

type SigHandler = libc::sighandler_t;

/// The disposition change behind sigaction, signal and bsd_signal.
unsafe fn change(
    guard: &ckpt::interpose::Guard,
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    if ckpt::process::in_vfork_child() {
        // A vfork child runs on its parent's memory until it execs: the
        // table is the parent's, so the child's change is the kernel's
        // alone (CPython's subprocess resets every handled signal there;
        // recorded, the parent's handlers were gone).
        let before = rec::recorded(sig);
        let r = ckpt::real!(sigaction)(sig, act, old);
        if r == 0 && !old.is_null() && (*old).sa_sigaction == rec::trampoline as *const () as usize
        {
            if let Some(b) = before {
                rec::to_raw(&b, &mut *old);
            }
        }
        return r;
    }
    if sig == rec::reserved() {
        // Shared with ckpt: recorded only (see the module's comment).
        let before = rec::recorded(sig);
        if !act.is_null() {
            let a = Action::from_raw(&*act);
            guard.record(|| rec::record(sig, &a));
        }
        if !old.is_null() {
            *old = core::mem::zeroed(); // "SIG_DFL", as for an unused signal
            if let Some(b) = before {
                rec::to_raw(&b, &mut *old);
            }
        }
        return 0;
    }
    let before = rec::recorded(sig);
    // Record first: once the kernel has the trampoline, a delivery must
    // find the program's handler in the table.
    if !act.is_null() {
        guard.record(|| rec::record(sig, &Action::from_raw(&*act)));
    }
    let kact = (!act.is_null()).then(|| rec::kernel_action(&*act));
    let kptr = kact
        .as_ref()
        .map_or(core::ptr::null(), |k| k as *const libc::sigaction);
    let r = ckpt::real!(sigaction)(sig, kptr, old);
    if r != 0 {
        if let Some(b) = before {
            guard.record(|| rec::record(sig, &b));
        }
        return r;
    }
    if !old.is_null() {
        if let Some(b) = before {
            rec::to_raw(&b, &mut *old);
        }
        rec::hide_reserved(&mut (*old).sa_mask);
    }
    r
}

#[interpose(around)]
unsafe fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int {
    let _ = real;
    change(&guard, sig, act, old)
}

/// signal() with BSD semantics, as glibc's: SA_RESTART, the signal itself
/// blocked while its handler runs.
unsafe fn bsd(guard: &ckpt::interpose::Guard, sig: c_int, handler: SigHandler) -> SigHandler {
    let mut act: libc::sigaction = core::mem::zeroed();
    act.sa_sigaction = handler;
    act.sa_flags = libc::SA_RESTART;
    libc::sigemptyset(&mut act.sa_mask);
    if sig > 0 && sig < 65 {
        libc::sigaddset(&mut act.sa_mask, sig);
    }
    let mut old: libc::sigaction = core::mem::zeroed();
    if change(guard, sig, &act, &mut old) < 0 {
        return libc::SIG_ERR;
    }
    old.sa_sigaction
}

#[interpose(around, aliases(bsd_signal))]
unsafe fn signal(sig: c_int, handler: SigHandler) -> SigHandler {
    let _ = real;
    bsd(&guard, sig, handler)
}

/// A mask change with the reserved signal taken out of `set` and out of
/// the old mask the program reads back.
unsafe fn change_mask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
    real: impl FnOnce(c_int, *const sigset_t, *mut sigset_t) -> c_int,
) -> c_int {
    let filtered = rec::without_reserved(set);
    let r = real(
        how,
        filtered.as_ref().map_or(set, |f| f as *const sigset_t),
        old,
    );
    rec::hide_reserved(old);
    r
}

#[interpose(around)]
unsafe fn sigprocmask(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int {
    change_mask(how, set, old, real)
}

#[interpose(around)]
unsafe fn pthread_sigmask(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int {
    change_mask(how, set, old, real)
}

#[interpose(around)]
unsafe fn signalfd(fd: c_int, mask: *const sigset_t, flags: c_int) -> c_int {
    let filtered = rec::without_reserved(mask);
    real(
        fd,
        filtered.as_ref().map_or(mask, |f| f as *const sigset_t),
        flags,
    )
}

#[interpose(around)]
unsafe fn sigpending(set: *mut sigset_t) -> c_int {
    let r = real(set);
    rec::hide_reserved(set);
    r
}
