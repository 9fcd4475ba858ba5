//! The generated wrappers at run time, in this test executable: it defines
//! `dup`, `dup2`, `umask`, `fcntl` and `fcntl64`, so its own calls through
//! `libc::...` reach the wrappers, which reach the C library's originals.
//!
//! Readiness is process-wide, so the tests take turns (`Ready`); what the
//! hooks see is recorded per thread, so calls made by the harness's other
//! threads cannot disturb a test.

use ckpt::interpose::{errno, set_errno, set_ready, Original};
use ckpt_macros::{interpose, originals_registry};
use libc::{c_int, c_ulong, mode_t};
use std::cell::{Cell, RefCell};
use std::sync::{Mutex, MutexGuard};

originals_registry!();

/// What a hook saw.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Call {
    Dup {
        fd: c_int,
        ret: c_int,
    },
    /// The `dup` hook called `dup` again: that call passed through.
    Reentered {
        ret: c_int,
    },
    Dup2 {
        old: c_int,
        new: c_int,
        ret: c_int,
    },
    Umask {
        mask: mode_t,
        ret: mode_t,
    },
    Fcntl {
        fd: c_int,
        cmd: c_int,
        arg: c_ulong,
        ret: c_int,
    },
}

thread_local! {
    static CALLS: RefCell<Vec<Call>> = const { RefCell::new(Vec::new()) };
    static REENTER: Cell<bool> = const { Cell::new(false) };
}

fn record(call: Call) {
    CALLS.with(|calls| calls.borrow_mut().push(call));
}

fn take_calls() -> Vec<Call> {
    CALLS.with(|calls| calls.take())
}

/// Post-hook form; the hook clobbers `errno`, which the caller must not see.
#[interpose]
unsafe fn dup(fd: c_int) -> c_int {
    record(Call::Dup { fd, ret });
    if REENTER.get() {
        let again = libc::dup(fd);
        record(Call::Reentered { ret: again });
        libc::close(again);
    }
    set_errno(libc::ENOMEM);
}

/// A file descriptor the around form refuses without calling the original.
const REFUSED: c_int = -42;

/// Around form: may skip the original and fail with its own `errno`; what
/// it does after `real` cannot change the `errno` the caller sees.
#[interpose(around)]
unsafe fn dup2(old: c_int, new: c_int) -> c_int {
    if old == REFUSED {
        set_errno(libc::ENOTSUP);
        return -1;
    }
    let ret = real(old, new);
    guard.record(|| record(Call::Dup2 { old, new, ret }));
    set_errno(libc::ENOMEM);
    ret
}

/// Around form that leaves the wrapper early: after `drop(guard)` the
/// thread is outside any wrapper, so its own `dup` is recorded.
#[interpose(around, version = "GLIBC_2.2.5")]
unsafe fn umask(mask: mode_t) -> mode_t {
    let ret = real(mask);
    guard.record(|| record(Call::Umask { mask, ret }));
    drop(guard);
    libc::close(libc::dup(2));
    ret
}

/// A C-variadic original called with a fixed third argument.
#[interpose(variadic = 2, aliases(fcntl64))]
unsafe fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    record(Call::Fcntl { fd, cmd, arg, ret });
}

/// `fcntl64` as C declares it; the `libc` crate does not.
mod c {
    extern "C" {
        pub fn fcntl64(fd: libc::c_int, cmd: libc::c_int, ...) -> libc::c_int;
    }
}

/// Holds the turn of one test, with the interposition layer ready.
struct Ready(#[allow(dead_code)] MutexGuard<'static, ()>);

fn ready() -> Ready {
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    take_calls();
    set_ready(true);
    Ready(turn)
}

impl Drop for Ready {
    fn drop(&mut self) {
        set_ready(false);
    }
}

fn close(fd: c_int) {
    assert_eq!(unsafe { libc::close(fd) }, 0);
}

#[test]
fn post_hook_sees_parameters_and_result() {
    let _ready = ready();
    let fd = unsafe { libc::dup(1) };
    assert!(fd > 2, "dup(1) = {fd}");
    assert_eq!(take_calls(), [Call::Dup { fd: 1, ret: fd }]);
    close(fd);
}

#[test]
fn post_hook_keeps_the_originals_errno() {
    let _ready = ready();
    set_errno(0);
    assert_eq!(unsafe { libc::dup(-1) }, -1);
    assert_eq!(errno(), libc::EBADF);
    // A success leaves errno as it was, whatever the hook did to it.
    set_errno(1234);
    let fd = unsafe { libc::dup(1) };
    assert_eq!(errno(), 1234);
    close(fd);
    assert_eq!(
        take_calls(),
        [Call::Dup { fd: -1, ret: -1 }, Call::Dup { fd: 1, ret: fd }]
    );
}

#[test]
fn passes_through_when_not_ready() {
    let ready = ready();
    set_ready(false);
    set_errno(0);
    assert_eq!(unsafe { libc::dup(-1) }, -1);
    assert_eq!(errno(), libc::EBADF);
    assert_eq!(take_calls(), []);
    drop(ready);
}

#[test]
fn reentrant_call_passes_through() {
    let _ready = ready();
    REENTER.set(true);
    let fd = unsafe { libc::dup(1) };
    REENTER.set(false);
    let calls = take_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], Call::Dup { fd: 1, ret: fd });
    assert!(
        matches!(calls[1], Call::Reentered { ret } if ret > 2),
        "{calls:?}"
    );
    close(fd);
}

#[test]
fn real_macro_calls_the_original() {
    let _ready = ready();
    let fd = unsafe { ckpt::real!(dup)(1) };
    assert!(fd > 2);
    close(fd);
    assert_eq!(take_calls(), []);
}

#[test]
fn around_form_calls_real_and_keeps_its_errno() {
    let _ready = ready();
    let fd = unsafe { libc::dup(1) };
    let target = unsafe { libc::dup2(1, fd) };
    assert_eq!(target, fd);
    set_errno(0);
    assert_eq!(unsafe { libc::dup2(-1, fd) }, -1);
    assert_eq!(errno(), libc::EBADF);
    close(fd);
    assert_eq!(
        take_calls(),
        [
            Call::Dup { fd: 1, ret: fd },
            Call::Dup2 {
                old: 1,
                new: fd,
                ret: fd
            },
            Call::Dup2 {
                old: -1,
                new: fd,
                ret: -1
            },
        ]
    );
}

#[test]
fn around_form_without_real_keeps_the_bodys_errno() {
    let _ready = ready();
    set_errno(0);
    assert_eq!(unsafe { libc::dup2(REFUSED, 100) }, -1);
    assert_eq!(errno(), libc::ENOTSUP);
    assert_eq!(take_calls(), []);
}

#[test]
fn around_form_can_leave_the_wrapper_early() {
    let _ready = ready();
    let old = unsafe { libc::umask(0o027) };
    let now = unsafe { libc::umask(old) };
    assert_eq!(now, 0o027);
    let calls = take_calls();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(
        calls[0],
        Call::Umask {
            mask: 0o027,
            ret: old
        }
    );
    assert!(matches!(calls[1], Call::Dup { fd: 2, .. }), "{calls:?}");
    assert_eq!(
        calls[2],
        Call::Umask {
            mask: old,
            ret: 0o027
        }
    );
}

#[test]
fn variadic_original_gets_the_extra_argument() {
    let _ready = ready();
    let flags = unsafe { libc::fcntl(1, libc::F_GETFL) };
    assert!(flags >= 0);
    let high = unsafe { libc::fcntl(1, libc::F_DUPFD, 100 as c_ulong) };
    assert!(high >= 100, "F_DUPFD 100 gave {high}");
    let higher = unsafe { c::fcntl64(1, libc::F_DUPFD_CLOEXEC, 200 as c_ulong) };
    assert!(higher >= 200, "F_DUPFD_CLOEXEC 200 gave {higher}");
    assert_eq!(
        unsafe { libc::fcntl(higher, libc::F_GETFD) },
        libc::FD_CLOEXEC
    );
    close(high);
    close(higher);
    let calls = take_calls();
    assert_eq!(calls.len(), 4, "{calls:?}");
    let fcntl = |cmd, arg, ret| Call::Fcntl {
        fd: 1,
        cmd,
        arg,
        ret,
    };
    assert!(matches!(calls[0], Call::Fcntl { fd: 1, cmd: libc::F_GETFL, ret, .. } if ret == flags));
    assert_eq!(calls[1], fcntl(libc::F_DUPFD, 100, high));
    assert_eq!(calls[2], fcntl(libc::F_DUPFD_CLOEXEC, 200, higher));
}

#[test]
fn every_symbol_has_its_own_original() {
    let originals: [&Original; 5] = [
        &dup::ORIGINAL,
        &dup2::ORIGINAL,
        &umask::ORIGINAL,
        &fcntl::ORIGINAL,
        &fcntl64::ORIGINAL,
    ];
    let names: Vec<_> = originals
        .iter()
        .map(|o| o.name().to_str().unwrap())
        .collect();
    assert_eq!(names, ["dup", "dup2", "umask", "fcntl", "fcntl64"]);
    // `fcntl64` resolves to the C library's `fcntl64`, not to `fcntl`.
    let libc_fcntl64 = unsafe { libc::dlsym(libc::RTLD_NEXT, c"fcntl64".as_ptr()) };
    assert!(!libc_fcntl64.is_null());
    assert_eq!(fcntl64::ORIGINAL.get(), libc_fcntl64);
}

#[test]
fn registry_resolves_every_original() {
    assert_eq!(resolve_all_originals(), 5);
    let versioned =
        unsafe { libc::dlvsym(libc::RTLD_NEXT, c"umask".as_ptr(), c"GLIBC_2.2.5".as_ptr()) };
    assert_eq!(umask::ORIGINAL.get(), versioned);
}
