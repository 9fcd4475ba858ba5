//! The kernel's keyrings a program made for itself (keyctl(2), add_key:
//! Kerberos credential caches, ecryptfs and NFS helpers, programs keeping
//! secrets out of their memory): its process keyring, a thread's thread
//! keyring, a session keyring it joined. Their keys cannot be read back
//! (a key may refuse to be read, and its permissions and expiry cannot
//! all be set again by another process), and a restarted process has none
//! of them: the checkpoint says so. The session keyring the program
//! started in, and the user's keyrings, are its surroundings, as files are:
//! they are where the restart finds them.
//!
//! Verbs: `note_session` (at start-up, and after a restart: the session
//! keyring it has then is its own from there on), `snapshot` (frozen:
//! raw system calls only), `thread_has_one` (on a thread as it parks).

use core::sync::atomic::{AtomicI64, Ordering::Relaxed};

const KEYCTL_GET_KEYRING_ID: i64 = 0;
const KEY_SPEC_THREAD_KEYRING: i64 = -1;
const KEY_SPEC_PROCESS_KEYRING: i64 = -2;
const KEY_SPEC_SESSION_KEYRING: i64 = -3;

/// The session keyring the program had at start-up (or since its last
/// restart); 0: not known.
static SESSION: AtomicI64 = AtomicI64::new(0);

/// The calling thread's keyring of `spec`, without making one: its id,
/// or None (none, or keyctl refused: a seccomp filter). Signal-safe.
fn keyring(spec: i64) -> Option<i64> {
    // SAFETY: KEYCTL_GET_KEYRING_ID takes integers only.
    let id = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_GET_KEYRING_ID, spec, 0) };
    (id > 0).then_some(id)
}

/// Note the session keyring the program runs in now.
pub fn note_session() {
    SESSION.store(keyring(KEY_SPEC_SESSION_KEYRING).unwrap_or(0), Relaxed);
}

/// Whether the calling thread has a thread keyring. Signal-safe (the
/// freeze handler).
pub fn thread_has_one() -> bool {
    keyring(KEY_SPEC_THREAD_KEYRING).is_some()
}

/// Whether the process has a process keyring, and whether it joined a
/// session keyring other than the one it started in. Frozen context.
pub fn snapshot() -> (bool, bool) {
    let process = keyring(KEY_SPEC_PROCESS_KEYRING).is_some();
    let was = SESSION.load(Relaxed);
    let session = was != 0 && keyring(KEY_SPEC_SESSION_KEYRING).is_some_and(|id| id != was);
    (process, session)
}
