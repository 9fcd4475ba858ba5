//! A ckpt plugin, in a few lines: it makes programs using `libsession`
//! (examples/session/, a client library whose handle holds a connection
//! to a server) survive a restart, which ckpt alone cannot give them —
//! the server is another program, so the connection comes back as
//! /dev/null.
//!
//! - An `#[interpose]` wrapper of `session_open` remembers each handle
//!   (and one of `session_close` forgets it): plain memory of the plugin,
//!   which every image holds.
//! - An on-restore hook calls the library's own `session_reconnect` on
//!   each remembered handle, before any thread of the program goes on.
//! - A `session_call` under way at the checkpoint (its request sent on
//!   the old connection, its answer never to come) is asked again.
//!
//! ```sh
//! cargo build --release --workspace --examples     # target/release/examples/libsession_plugin.so
//! cd examples/session && cc -shared -fPIC -o libsession.so libsession.c \
//!     && cc -o client client.c -L. -lsession -Wl,-rpath,'$ORIGIN'
//! python3 server.py /tmp/session.sock &
//! ckpt run --plugin ../../target/release/examples/libsession_plugin.so -- ./client /tmp/session.sock 500
//! ```
//! `ckpt checkpoint PID`, `kill -9 PID`, `ckpt restart IMAGE`: the client
//! goes on with a new connection (tests/plugins.rs does exactly this).

use ckpt_macros::interpose;
use libc::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering::*};

ckpt_macros::originals_registry!();
ckpt::plugin!(resolve_all_originals, setup);

/// Open sessions (their handles; 0 = free).
static OPEN: [AtomicUsize; 64] = [const { AtomicUsize::new(0) }; 64];

#[interpose]
unsafe fn session_open(path: *const c_char) -> *mut c_void {
    let _ = path;
    if !ret.is_null() {
        let slot = OPEN
            .iter()
            .find(|h| h.compare_exchange(0, ret as usize, AcqRel, Relaxed).is_ok());
        if slot.is_none() {
            // Not remembered: it could not be reconnected after a restart.
            let msg = b"session plugin: more than 64 sessions; the others are not reconnected\n";
            libc::write(2, msg.as_ptr().cast(), msg.len());
        }
    }
}

#[interpose]
unsafe fn session_close(s: *mut c_void) -> c_int {
    let _ = ret;
    if let Some(h) = OPEN.iter().find(|h| h.load(Acquire) == s as usize) {
        h.store(0, Release);
    }
}

/// A call under way when the checkpoint was taken sent its request on
/// the connection that is gone: its answer never comes (the read fails
/// once the hook closed the old descriptor). Asked again, on the new one.
#[interpose(around)]
unsafe fn session_call(s: *mut c_void, req: *const c_char, out: *mut c_char, len: usize) -> c_int {
    let _ = &guard;
    loop {
        let restores = ckpt::restored();
        let r = real(s, req, out, len);
        if r == 0 || ckpt::restored() == restores {
            return r;
        }
    }
}

fn setup() {
    ckpt::on_restore(reconnect).expect("the session plugin's hook");
}

fn reconnect() {
    // The library's own reset call, found where the program linked it.
    // SAFETY: dlsym with a NUL-terminated name.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"session_reconnect".as_ptr()) };
    if f.is_null() {
        return;
    }
    // SAFETY: libsession's `int session_reconnect(session *)`.
    let f: unsafe extern "C" fn(*mut c_void) -> c_int = unsafe { std::mem::transmute(f) };
    for h in OPEN.iter().map(|h| h.load(Acquire)).filter(|&h| h != 0) {
        // SAFETY: a handle session_open returned and session_close did not free.
        if unsafe { f(h as *mut c_void) } == 0 {
            eprintln!("session plugin: session reconnected");
        } else {
            eprintln!("session plugin: a session could not be reconnected");
        }
    }
}
