//! The control channel, without a thread of ckpt's own: the datagram
//! socket is set up for signal-driven I/O (F_SETOWN + F_SETSIG with the
//! reserved signal), so a request makes the kernel signal the process; the
//! thread that takes the signal runs [`coordinator`] inside the handler
//! (see `ckpt::quiesce`). The periodic timer and `ckpt::checkpoint()` reach
//! the same coordinator with a queued signal.
//!
//! The coordinator runs in signal context on ckpt's own stack, with every
//! allocation routed to the scratch arena: no stdio, no malloc.

use crate::config;
use ckpt::checkpoint::Requester;
use ckpt::control::{self as proto, Request, Response};
use ckpt::quiesce::{self, Wake, REQUEST_MAGIC};
use ckpt::tree::Phase;
use ckpt::{alloc, checkpoint, files, interpose, sys};
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering::*};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

static SOCK: AtomicI32 = AtomicI32::new(-1);
/// The inode of the socket file we bound (0: none): at exit we remove
/// only our own (a restarted program is named after its `ckpt restart`,
/// whose pid another process may have by then).
static SOCK_INO: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// Set once the program's exit has begun ([`remove_socket`], at fini):
/// its socket file is gone, so a tree checkpoint's later words (sent to
/// the file) could never reach it. A request is left unanswered then; the
/// command waits for the process to end (seen in CI: a `sleep` frozen
/// after its fini, its socket gone, the checkpoint failing after 5 s).
static ENDING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// What a tree checkpoint's sync says when the exit began meanwhile.
const ENDING_NOW: &str = "the process is ending";
/// The last tree checkpoint served (its nonce).
static LAST_TREE_NONCE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Open the control socket and arm the periodic timer, if asked.
pub fn start() -> Result<(), String> {
    quiesce::set_coordinator(coordinator);
    open_channel()?;
    // In a tree only the root keeps time: its checkpoints take the tree.
    if let Some(ms) = config::interval_ms().filter(|_| !parent_runs_shim()) {
        arm_periodic(ms)?;
    }
    Ok(())
}

/// Whether this process's parent runs the shim too (it is not the root
/// of its job, then).
fn parent_runs_shim() -> bool {
    // SAFETY: getppid cannot fail.
    let ppid = unsafe { libc::getppid() };
    ppid > 1
        && std::fs::read(format!("/proc/{ppid}/maps"))
            .is_ok_and(|m| m.windows(12).any(|w| w == b"libckpt_shim"))
}

/// Hand a checkpoint of this process's whole tree to the `ckpt checkpoint`
/// command (see `ckpt::tree::request`).
/// A checkpoint into the run's store (`ckpt run --store`) is the
/// command's to make too: it imports the image.
fn delegate(dir: &Path, answer: Option<c_int>) -> Result<i32, String> {
    use ckpt::tree::request::Target;
    let target = match (config::store(), dir == config::dir()) {
        (Some(spec), true) => Target::Store(spec, config::keep()),
        _ => Target::Dir(dir),
    };
    ckpt::tree::request::delegate(&config::get().ckpt_bin, target, answer)
}

/// In a fork child: the socket is shared with the parent and names it;
/// make our own (and our own timer: timers are not inherited).
pub fn restart_in_child() {
    let fd = SOCK.swap(-1, Relaxed);
    if fd >= 0 {
        files::set_own(fd, false);
        sys::close(fd);
    }
    MAILBOX.reset();
    PERIODIC.store(-1, Relaxed);
    let pending = PENDING.swap(-1, Relaxed);
    if pending >= 0 {
        checkpoint::close_verdict(pending); // the parent's to read
    }
    checkpoint::forget_writer();
    if let Err(e) = start() {
        eprintln!("ckpt: checkpoints disabled in child {}: {e}", sys::getpid());
    }
}

/// Post-restart: the old socket is gone with the old process; make a new
/// one for the new pid, re-arm the periodic timer, and answer a
/// `ckpt::checkpoint()` call that was waiting when the image was taken.
pub extern "C" fn after_restart() {
    crate::hooks::after_restart();
    // The restart's own mount namespace is where its paths mean what the
    // image says.
    ckpt::process::note_mount_namespace();
    ckpt::process::note_uts_namespace();
    SOCK.store(-1, Relaxed);
    // Kernel timers are per process: ours is made again by start().
    PERIODIC.store(-1, Relaxed);
    // A verdict link of before did not come back.
    PENDING.store(-1, Relaxed);
    checkpoint::forget_writer();
    // SAFETY: the program's threads are not running yet (post-restart,
    // before they resume): nobody else touches the mailbox.
    let d = unsafe { &mut *MAILBOX.data.get() };
    // A caller waiting for a writer's verdict waits on a link that did
    // not come back.
    d.verdict = -1;
    d.restarted_since = true;
    // A tree image holds the caller waiting for the command's verdict:
    // it was restored from that very checkpoint.
    if d.delegated && MAILBOX.state.load(Acquire) == 2 {
        let text = b"restarted";
        d.out[..text.len()].copy_from_slice(text);
        d.out_len = text.len();
        d.ok = true;
        d.restarted = true;
    }
    if MAILBOX.state.load(Acquire) == 1 {
        let text = b"restarted";
        d.out[..text.len()].copy_from_slice(text);
        d.out_len = text.len();
        d.ok = true;
        d.restarted = true;
        MAILBOX.state.store(2, Release);
    }
    if let Err(e) = start() {
        let msg = format!("ckpt restart: warning: checkpoints disabled: {e}\n");
        raw_eprint(&msg);
    }
}

/// Remove our socket file (at exit).
pub fn remove_socket() {
    // Before the file goes: a freeze that began on another thread sees it
    // once every thread stopped (see the TreeCheckpoint request).
    ENDING.store(true, SeqCst);
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let name = format!("{}.sock", ckpt::restart::control_name());
    let path = proto::runtime_dir(uid).join(name);
    let ours = SOCK_INO.load(Relaxed);
    if ours != 0 && std::fs::symlink_metadata(&path).is_ok_and(|m| m.ino() == ours) {
        let _ = std::fs::remove_file(path);
    }
}

/// fcntl straight to the kernel (the shim's own `fcntl` is a wrapper).
fn raw_fcntl(fd: c_int, cmd: c_int, arg: i64) -> i64 {
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, cmd, arg) }
}

fn open_channel() -> Result<(), String> {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = proto::runtime_dir(uid);
    proto::ensure_runtime_dir(&dir, uid)
        .map_err(|e| format!("runtime directory {}: {e}", dir.display()))?;
    proto::sweep_stale(&dir);
    // Named by the pid `ckpt checkpoint` is given (see control_name).
    let path = dir.join(format!("{}.sock", ckpt::restart::control_name()));
    let _ = std::fs::remove_file(&path);
    // SAFETY: plain socket creation.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    let fd = sys::move_high(fd).map_err(|_| "no free descriptor near the limit".to_string())?;
    SOCK.store(fd, Relaxed);
    files::set_own_at(fd, &SOCK);
    let (addr, len) = proto::sockaddr(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // Raw: the shim's `bind` records the files a job makes, and a restart
    // would remove this one as the killed run's (it may be another
    // process's by then, its pid reused).
    // SAFETY: binding a valid address to our socket.
    if unsafe {
        libc::syscall(
            libc::SYS_bind,
            fd,
            (&addr as *const libc::sockaddr_un).cast::<libc::sockaddr>(),
            len,
        )
    } < 0
    {
        return Err(format!(
            "bind {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    SOCK_INO.store(
        std::fs::symlink_metadata(&path).map_or(0, |m| m.ino()),
        Relaxed,
    );
    let c = proto::c_path(&path);
    // SAFETY: chmod of the socket file we just bound.
    unsafe { libc::chmod(c.as_ptr(), 0o600) };
    // A restarted program named after its restart command is also found
    // by its pid inside its namespace (by a `ckpt checkpoint` started in
    // there, see `ckpt::tree::request`).
    if let Some(ns) = ckpt::restart::restart_namespace() {
        let alt = dir.join(format!("{}-ns{ns}.sock", sys::getpid()));
        if alt != path {
            let _ = std::fs::remove_file(&alt);
            let (target, link) = (proto::c_path(&path), proto::c_path(&alt));
            // Raw, as the bind above (the shim's `symlink` records it).
            // SAFETY: two NUL-terminated paths that outlive the call.
            unsafe { libc::syscall(libc::SYS_symlink, target.as_ptr(), link.as_ptr()) };
        }
    }
    proto::pass_credentials(fd).map_err(|e| e.to_string())?;
    // Signal-driven I/O: a datagram makes the kernel send us the reserved
    // signal (si_code POLL_IN), process-directed.
    let sig = ckpt::signals::reserved() as i64;
    if raw_fcntl(fd, libc::F_SETOWN, sys::getpid() as i64) < 0
        || raw_fcntl(fd, 10 /* F_SETSIG */, sig) < 0
        || raw_fcntl(fd, libc::F_SETFL, (libc::O_ASYNC | libc::O_NONBLOCK) as i64) < 0
    {
        return Err(format!(
            "signal-driven I/O: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// A kernel timer (not the program's: never recorded) that queues a
/// checkpoint request every `ms` milliseconds.
fn arm_periodic(ms: u64) -> Result<(), String> {
    let old = PERIODIC.load(Relaxed);
    if old >= 0 {
        sys::timer_settime(old, ms * 1_000_000, ms * 1_000_000);
        return Ok(());
    }
    // SAFETY: zeroed sigevent is valid; fields set below.
    let mut sev: libc::sigevent = unsafe { core::mem::zeroed() };
    sev.sigev_notify = libc::SIGEV_SIGNAL;
    sev.sigev_signo = ckpt::signals::reserved();
    sev.sigev_value = libc::sigval {
        sival_ptr: REQUEST_MAGIC as *mut c_void,
    };
    let mut id: c_int = 0;
    // SAFETY: raw timer_create (the kernel's, not glibc's) into a local id.
    if unsafe { libc::syscall(libc::SYS_timer_create, libc::CLOCK_MONOTONIC, &sev, &mut id) } < 0 {
        return Err(format!(
            "periodic timer: {}",
            std::io::Error::last_os_error()
        ));
    }
    ckpt::timers::set_own_timer(id);
    PERIODIC.store(id, Relaxed);
    sys::timer_settime(id, ms * 1_000_000, ms * 1_000_000);
    Ok(())
}

/// `ckpt_set_store(spec, out, out_len)`: checkpoints without a directory
/// of their own go to store `spec` (`sqlite:/ABSOLUTE/PATH`), made by the
/// `ckpt` command this process starts for each; "" (or null): to
/// directories again. 0, or -1 with the reason in `out`.
///
/// # Safety
/// `spec` null or a C string; `out` writable for `out_len` bytes (or null).
#[no_mangle]
pub unsafe extern "C" fn ckpt_set_store(
    spec: *const c_char,
    out: *mut c_char,
    out_len: usize,
) -> c_int {
    let spec = if spec.is_null() {
        std::ffi::CString::default()
    } else {
        std::ffi::CStr::from_ptr(spec).to_owned()
    };
    let b = spec.as_bytes();
    if !b.is_empty() && !b.starts_with(b"sqlite:/") {
        let msg = b"a store is sqlite:/ABSOLUTE/PATH";
        if !out.is_null() && out_len > 0 {
            let n = msg.len().min(out_len - 1);
            core::ptr::copy_nonoverlapping(msg.as_ptr(), out as *mut u8, n);
            *out.add(n) = 0;
        }
        return -1;
    }
    config::set_store(spec);
    0
}

/// The periodic timer's kernel id, or -1.
static PERIODIC: AtomicI32 = AtomicI32::new(-1);

/// `ckpt_configure(dir, keep, interval_ms)`: the program's own
/// settings in place of the environment's (`ckpt::Checkpointer`): `dir`
/// null, `keep` 0 and `interval_ms` 0 leave a setting as it is;
/// `interval_ms` u64::MAX stops periodic checkpoints. 0, or -1 with the
/// reason in `out`.
///
/// # Safety
/// `dir` is null or a C string; `out` writable for `out_len` bytes (or null).
#[no_mangle]
pub unsafe extern "C" fn ckpt_configure(
    dir: *const c_char,
    keep: u32,
    interval_ms: u64,
    out: *mut c_char,
    out_len: usize,
) -> c_int {
    let fail = |msg: &str| {
        if !out.is_null() && out_len > 0 {
            let n = msg.len().min(out_len - 1);
            // SAFETY: the caller gives a writable buffer of out_len bytes.
            unsafe {
                core::ptr::copy_nonoverlapping(msg.as_ptr(), out as *mut u8, n);
                *out.add(n) = 0;
            }
        }
        -1
    };
    if !dir.is_null() {
        let d = PathBuf::from(std::ffi::OsStr::from_bytes(
            std::ffi::CStr::from_ptr(dir).to_bytes(),
        ));
        if !d.is_dir() {
            return fail(&format!("{}: not a directory", d.display()));
        }
        config::set_dir(d);
    }
    if keep > 0 {
        config::set_keep(keep);
    }
    if interval_ms == u64::MAX {
        config::set_interval_ms(u64::MAX);
        let t = PERIODIC.load(Relaxed);
        if t >= 0 {
            sys::timer_settime(t, 0, 0);
        }
    } else if interval_ms > 0 {
        config::set_interval_ms(interval_ms);
        if let Err(e) = arm_periodic(interval_ms) {
            return fail(&e);
        }
    }
    0
}

/// `ckpt_wait_writers(timeout_ms)`: wait until no image of this process
/// is being written any more (0), or `timeout_ms` passed (-1).
#[no_mangle]
pub extern "C" fn ckpt_wait_writers(timeout_ms: u64) -> c_int {
    if ckpt::writer::wait_all(timeout_ms.saturating_mul(1_000_000)) {
        0
    } else {
        -1
    }
}

/// `ckpt_set_compress(codec)`: compress this process's images from now
/// on: 0 none, 1 lz4, 2 zstd (as `ckpt run --compress`). 0, or -1 for a
/// codec it does not know.
#[no_mangle]
pub extern "C" fn ckpt_set_compress(codec: u32) -> c_int {
    match codec {
        0 => ckpt::memory::compress::configure(None),
        c => match u8::try_from(c).ok().and_then(ckpt::image::Codec::from_u8) {
            Some(c) => ckpt::memory::compress::configure(Some(c)),
            None => return -1,
        },
    }
    0
}

/// Serve every pending request. Runs inside the signal handler on ckpt's
/// stack: scratch allocation only, raw writes only.
extern "C" fn coordinator(uc: *mut c_void, why: u32) {
    if alloc::scratch_begin().is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut timer = why == Wake::Timer as u32;
    loop {
        let mut served = false;
        let sock = SOCK.load(Relaxed);
        while let Ok(d) = proto::recv_with_creds(sock, &mut buf) {
            served = true;
            serve_datagram(sock, &d, &buf[..d.len], uc);
        }
        if MAILBOX.state.load(Acquire) == 1 {
            served = true;
            MAILBOX.serve(uc);
        }
        if timer {
            timer = false;
            served = true;
            // A tick while the last image is still being written is
            // skipped: writers must not pile up (each holds a copy of the
            // program's memory).
            if ckpt::tree::request::has_job_children() || config::store().is_some() {
                // The whole tree, by the command (one at a time).
                if !ckpt::tree::request::running() && !checkpoint::writing() {
                    if let Err(e) = delegate(config::dir(), None) {
                        raw_eprint(&format!("ckpt: periodic checkpoint failed: {e}\n"));
                    }
                }
            } else if !checkpoint::writing()
                && !ckpt::tree::request::running()
                && !crate::hooks::defer(Requester::Timer, b"")
            {
                if let Err(e) =
                    checkpoint::take(config::dir(), uc, Requester::Timer, config::keep())
                {
                    raw_eprint(&format!("ckpt: periodic checkpoint failed: {e}\n"));
                }
            }
        }
        if !served {
            break;
        }
    }
    alloc::scratch_end();
}

/// Write to stderr without stdio (signal context).
fn raw_eprint(msg: &str) {
    // SAFETY: write(2) from a live buffer.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

fn serve_datagram(sock: c_int, d: &proto::Datagram, body: &[u8], uc: *mut c_void) {
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    if d.uid != me && d.uid != 0 {
        return; // only our user (or root) may drive us
    }
    let resp = match rmp_serde::from_slice::<Request>(body) {
        Ok(Request::Ping) => Response::Pong {
            pid: sys::getpid(),
            dir: config::dir().to_string_lossy().into_owned(),
            keep: config::keep(),
            store: config::store()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        },
        Ok(Request::Checkpoint {
            dir,
            nonce,
            precopy,
        }) => {
            let dir = dir
                .map(PathBuf::from)
                .unwrap_or_else(|| config::dir().to_path_buf());
            let asker = Requester::Socket {
                sock,
                from: d.from,
                from_len: d.from_len,
                nonce,
            };
            // With hooks around checkpoints, the hook thread takes it
            // (whole: the hooks surround the moment the image holds).
            if crate::hooks::defer(asker, dir.as_os_str().as_bytes()) {
                return;
            }
            let take = if precopy || config::precopy() {
                checkpoint::take_precopy
            } else {
                checkpoint::take
            };
            match take(&dir, uc, asker, config::keep()) {
                // The writer answers once the image is in place.
                Ok(_) => return,
                Err(message) => Response::Error { message, nonce },
            }
        }
        Ok(Request::Precopied { dir, nonce, to }) => {
            // The second half of a pre-copy this process's writer made
            // (a datagram from our own socket: its writer holds a copy).
            // SAFETY: zeroed sockaddr_un is valid; `to` fills at most its size.
            let mut from: libc::sockaddr_un = unsafe { core::mem::zeroed() };
            let n = to.len().min(core::mem::size_of::<libc::sockaddr_un>());
            // SAFETY: copy of `n` bytes into the local sockaddr_un.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    to.as_ptr(),
                    (&mut from as *mut libc::sockaddr_un).cast::<u8>(),
                    n,
                )
            };
            let asker = Requester::Socket {
                sock,
                from,
                from_len: n as libc::socklen_t,
                nonce,
            };
            match checkpoint::take(Path::new(&dir), uc, asker, config::keep()) {
                Ok(_) => return,
                Err(message) => {
                    let resp = Response::Error { message, nonce };
                    if let Ok(out) = rmp_serde::to_vec_named(&resp) {
                        proto::send_to(sock, &out, &from, n as libc::socklen_t, 5_000);
                    }
                    return;
                }
            }
        }
        Ok(Request::TreeCheckpoint {
            dir,
            published,
            seq,
            nonce,
            timeout_ms,
        }) => {
            // The command asks again a process whose command name changed
            // (an exec loses the request): one that was not lost is not
            // served twice.
            if LAST_TREE_NONCE.swap(nonce, Relaxed) == nonce || ENDING.load(SeqCst) {
                return;
            }
            let asker = Requester::Socket {
                sock,
                from: d.from,
                from_len: d.from_len,
                nonce,
            };
            let mut sync = |phase: Phase, _seq: u64| -> Result<(), String> {
                // Every thread is stopped now: one that began the exit
                // before it stopped has removed (or is removing) the
                // socket file.
                if phase == Phase::Frozen && ENDING.load(SeqCst) {
                    return Err(ENDING_NOW.into());
                }
                let said = match phase {
                    Phase::Frozen => Response::Frozen {
                        nonce,
                        pid: sys::getpid(),
                    },
                    Phase::Gathered => Response::Gathered { nonce, writer: 0 },
                };
                reply(sock, d, &said);
                wait_continue(sock, nonce, timeout_ms)
            };
            // (An older command names no published directory.)
            let published = if published.is_empty() {
                &dir
            } else {
                &published
            };
            match checkpoint::take_in_tree(
                Path::new(&dir),
                Path::new(published),
                uc,
                asker,
                seq,
                &mut sync,
            ) {
                // The writer answers once the image is in place.
                Ok(_) => return,
                // Unanswered: the command sees the process end.
                Err(message) if message == ENDING_NOW => return,
                Err(message) => Response::Error { message, nonce },
            }
        }
        // A word for a tree checkpoint that is over: nothing to do.
        Ok(Request::TreeContinue { .. }) => return,
        Err(e) => Response::Error {
            message: format!("bad request: {e}"),
            nonce: 0,
        },
    };
    reply(sock, d, &resp);
}

/// Wait (at most `timeout_ms`) for the tree checkpoint `nonce`'s next word
/// from the command: go on, or give up. Other requests meanwhile are
/// dropped (their senders time out). Signal context, frozen: raw calls and
/// scratch allocation only.
fn wait_continue(sock: c_int, nonce: u64, timeout_ms: u64) -> Result<(), String> {
    let until = sys::monotonic_ns() + timeout_ms.saturating_mul(1_000_000);
    let mut buf = vec![0u8; 4096];
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    loop {
        let now = sys::monotonic_ns();
        if now >= until {
            return Err(format!(
                "no word from `ckpt checkpoint` for {timeout_ms} ms; the checkpoint was given up"
            ));
        }
        let mut p = libc::pollfd {
            fd: sock,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = ((until - now) / 1_000_000).clamp(1, 1000) as i64;
        // SAFETY: poll of one live pollfd (raw: poll is interposed).
        unsafe { libc::syscall(libc::SYS_poll, &mut p as *mut libc::pollfd, 1, ms) };
        while let Ok(d) = proto::recv_with_creds(sock, &mut buf) {
            if d.uid != me && d.uid != 0 {
                continue;
            }
            if let Ok(Request::TreeContinue { nonce: n, go }) =
                rmp_serde::from_slice::<Request>(&buf[..d.len])
            {
                if n == nonce {
                    return if go {
                        Ok(())
                    } else {
                        Err("the tree checkpoint was called off".into())
                    };
                }
            }
        }
    }
}

/// Answer the sender of datagram `d`.
fn reply(sock: c_int, d: &proto::Datagram, resp: &Response) {
    if let Ok(out) = rmp_serde::to_vec_named(resp) {
        proto::send_to(sock, &out, &d.from, d.from_len, 5_000);
    }
}

/// Hand-off between a program thread calling `ckpt::checkpoint()` and the
/// coordinator. Plain atomics and fixed buffers, so a fork child can
/// reset it whatever state the parent's threads left it in.
struct Mailbox {
    /// Serialises callers (0 free, 1 taken).
    lock: AtomicU32,
    /// 0 idle, 1 requested, 2 answered.
    state: AtomicU32,
    data: UnsafeCell<MailData>,
}

struct MailData {
    dir: [u8; 4096],
    dir_len: usize,
    out: [u8; 4096],
    out_len: usize,
    ok: bool,
    restarted: bool,
    /// The writer's verdict link (ckpt's own descriptor), or -1.
    verdict: c_int,
    /// Set by a restart: a verdict link of before is gone.
    restarted_since: bool,
    /// The checkpoint was handed to the `ckpt checkpoint` command (a
    /// tree): the image holds the caller waiting for its verdict.
    delegated: bool,
    /// Asked from outside and handed to the hook thread (see `hooks`):
    /// who to answer. None: `ckpt::checkpoint()`.
    asker: Option<Requester>,
}

// SAFETY: `data` is written by the lock holder before `state` = 1 and by
// the coordinator before `state` = 2; each side reads it only after
// seeing the other's store (Acquire/Release on `state`).
unsafe impl Sync for Mailbox {}

static MAILBOX: Mailbox = Mailbox {
    lock: AtomicU32::new(0),
    state: AtomicU32::new(0),
    data: UnsafeCell::new(MailData {
        dir: [0; 4096],
        dir_len: 0,
        out: [0; 4096],
        out_len: 0,
        ok: false,
        restarted: false,
        verdict: -1,
        restarted_since: false,
        delegated: false,
        asker: None,
    }),
};

impl Mailbox {
    fn reset(&self) {
        self.lock.store(0, Relaxed);
        self.state.store(0, Relaxed);
    }

    /// Coordinator: answer a pending request.
    fn serve(&self, uc: *mut c_void) {
        if self.state.load(Acquire) != 1 {
            return;
        }
        // SAFETY: state == 1: the caller finished writing and waits.
        let d = unsafe { &mut *self.data.get() };
        let dir = if d.dir_len == 0 {
            config::dir().to_path_buf()
        } else {
            PathBuf::from(std::ffi::OsStr::from_bytes(&d.dir[..d.dir_len]))
        };
        let to_store = d.dir_len == 0 && config::store().is_some();
        let tree = d.asker.is_none() && (to_store || ckpt::tree::request::has_job_children());
        let (ok, text, verdict) = if let Some(asker) = d.asker {
            // For the command or the timer: the writer answers them.
            match checkpoint::take(&dir, uc, asker, config::keep()) {
                Ok(r) => (true, r.path.display().to_string(), -1),
                Err(e) => {
                    if let Requester::Socket {
                        sock,
                        from,
                        from_len,
                        nonce,
                    } = asker
                    {
                        let resp = Response::Error {
                            message: e.clone(),
                            nonce,
                        };
                        if let Ok(out) = rmp_serde::to_vec_named(&resp) {
                            proto::send_to(sock, &out, &from, from_len, 5_000);
                        }
                    } else {
                        raw_eprint(&format!("ckpt: periodic checkpoint failed: {e}\n"));
                    }
                    (false, e, -1)
                }
            }
        } else if tree {
            // The whole tree, by the command, which answers on a pipe.
            match delegate_with_answer(&dir) {
                Ok(rd) => (true, String::new(), rd),
                Err(e) => (false, e, -1),
            }
        } else {
            match checkpoint::take(&dir, uc, Requester::Api, config::keep()) {
                Ok(r) => (true, r.path.display().to_string(), r.verdict.unwrap_or(-1)),
                Err(e) => (false, e, -1),
            }
        };
        d.delegated = tree && ok;
        let n = text.len().min(d.out.len() - 1);
        d.out[..n].copy_from_slice(&text.as_bytes()[..n]);
        d.out_len = n;
        d.ok = ok;
        d.restarted = false;
        d.restarted_since = false;
        d.verdict = verdict;
        self.state.store(2, Release);
        sys::futex_wake_all(&self.state);
    }

    /// Program thread: ask for a checkpoint and wait for the answer:
    /// 0 written, 1 restarted from it, -1 failed. With `asker`, on behalf
    /// of the command or the timer (the hook thread): no verdict to wait.
    fn ask(
        &self,
        dir: Option<&Path>,
        out: &mut [u8],
        asker: Option<Requester>,
        wait: bool,
    ) -> c_int {
        while self.lock.compare_exchange(0, 1, Acquire, Relaxed).is_err() {
            sys::futex_wait(&self.lock, 1, 0);
        }
        // SAFETY: we hold the lock and state is 0: nobody else touches data.
        let d = unsafe { &mut *self.data.get() };
        let dir = dir.map(|p| p.as_os_str().as_bytes()).unwrap_or(&[]);
        let n = dir.len().min(d.dir.len());
        d.dir[..n].copy_from_slice(&dir[..n]);
        d.dir_len = n;
        d.asker = asker;
        self.state.store(1, Release);
        // Served right away by this thread's own handler, or by the
        // coordinator that is busy now, before it finishes.
        quiesce::request_self();
        loop {
            let s = self.state.load(Acquire);
            if s == 2 {
                break;
            }
            sys::futex_wait(&self.state, s, 0);
        }
        // SAFETY: state == 2: the coordinator finished writing.
        let d = unsafe { &mut *self.data.get() };
        if d.ok && !d.restarted && d.asker.is_none() {
            if wait {
                // The program runs on; this caller waits for the image.
                wait_verdict(d);
            } else if d.verdict >= 0 {
                // Told later, by ckpt_wait (or the next checkpoint).
                let _ = wait_pending();
                PENDING.store(core::mem::replace(&mut d.verdict, -1), Release);
            }
        }
        d.asker = None;
        let n = d.out_len.min(out.len().saturating_sub(1));
        out[..n].copy_from_slice(&d.out[..n]);
        if let Some(z) = out.get_mut(n) {
            *z = 0;
        }
        let code = match (d.ok, d.restarted) {
            (true, true) => 1,
            (true, false) => 0,
            _ => -1,
        };
        d.delegated = false;
        self.state.store(0, Release);
        self.lock.store(0, Release);
        sys::futex_wake_all(&self.lock);
        code
    }
}

/// Start the command for a tree checkpoint with a pipe for its verdict;
/// returns the read end (one of ckpt's own descriptors).
fn delegate_with_answer(dir: &Path) -> Result<c_int, String> {
    let p = sys::pipe(libc::O_CLOEXEC).map_err(|e| format!("pipe: errno {e}"))?;
    let rd = sys::move_high(p[0]).unwrap_or(p[0]);
    files::set_own(rd, true);
    let r = delegate(dir, Some(p[1]));
    sys::close(p[1]);
    if let Err(e) = r {
        files::set_own(rd, false);
        sys::close(rd);
        return Err(e);
    }
    Ok(rd)
}

/// Wait (in the calling program thread, not in signal context) for the
/// writer's verdict on `d.verdict` and put it in `d`.
fn wait_verdict(d: &mut MailData) {
    let fd = core::mem::replace(&mut d.verdict, -1);
    let Some((ok, text)) = read_verdict(fd, d.restarted_since) else {
        return;
    };
    let n = text.len().min(d.out.len() - 1);
    d.out[..n].copy_from_slice(&text.as_bytes()[..n]);
    d.out_len = n;
    d.ok = ok;
}

/// The verdict of the writer on link `fd` (closed here): image written
/// (true, its path) or not (false, why). None: the process was restarted
/// from a later checkpoint meanwhile (the link did not come back).
fn read_verdict(fd: c_int, restarted_since: bool) -> Option<(bool, String)> {
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while fd >= 0 && len < buf.len() {
        // SAFETY: reading into the unused tail of a local buffer.
        let n = unsafe { libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
        if n > 0 {
            len += n as usize;
        } else if n < 0 && interpose::errno() == libc::EINTR && !restarted_since {
            continue;
        } else {
            break;
        }
    }
    if fd >= 0 {
        checkpoint::close_verdict(fd);
    }
    match rmp_serde::from_slice::<Response>(&buf[..len]) {
        Ok(Response::Checkpointed { path, .. }) => Some((true, path)),
        Ok(Response::Error { message, .. }) => Some((false, message)),
        // The process was restarted from a later checkpoint meanwhile: the
        // writer of this one had finished before that one was published.
        _ if restarted_since => None,
        _ => Some((
            false,
            "the image writer ended without finishing the image".to_string(),
        )),
    }
}

/// The verdict link of a checkpoint taken without waiting (see
/// `ckpt_checkpoint_ex`), or -1.
static PENDING: AtomicI32 = AtomicI32::new(-1);

/// Wait for the image of the last checkpoint taken without waiting.
/// Some((written, path or why)); None when there is none.
fn wait_pending() -> Option<(bool, String)> {
    let fd = PENDING.swap(-1, AcqRel);
    (fd >= 0).then(|| read_verdict(fd, false)).flatten()
}

/// `ckpt_wait(out, out_len)`: wait until the image of the last
/// checkpoint taken without waiting is in place. 0 (its path in `out`),
/// -1 (why in `out`), 2 when no such checkpoint is pending.
///
/// # Safety
/// `out` writable for `out_len` bytes (or null).
#[no_mangle]
pub unsafe extern "C" fn ckpt_wait(out: *mut c_char, out_len: usize) -> c_int {
    let Some((ok, text)) = wait_pending() else {
        return 2;
    };
    if !out.is_null() && out_len > 0 {
        let n = text.len().min(out_len - 1);
        core::ptr::copy_nonoverlapping(text.as_ptr(), out as *mut u8, n);
        *out.add(n) = 0;
    }
    if ok {
        0
    } else {
        -1
    }
}

/// The C API (include/ckpt.h): `ckpt_checkpoint(dir, out, out_len)`, the
/// same call as [`ckpt_shim_checkpoint`].
///
/// # Safety
/// As `ckpt_shim_checkpoint`: `dir` null or a C string, `out` writable for
/// `out_len` bytes (or null).
#[no_mangle]
pub unsafe extern "C" fn ckpt_checkpoint(
    dir: *const c_char,
    out: *mut c_char,
    out_len: usize,
) -> c_int {
    // SAFETY: the caller's guarantees are the ones ckpt_shim_checkpoint needs.
    unsafe { ckpt_shim_checkpoint(dir, out, out_len) }
}

/// `ckpt::checkpoint()` lands here (found with dlsym by the API).
#[no_mangle]
pub unsafe extern "C" fn ckpt_shim_checkpoint(
    dir: *const c_char,
    out: *mut c_char,
    out_len: usize,
) -> c_int {
    // SAFETY: the caller's guarantees are the ones the _ex form needs.
    unsafe { ckpt_checkpoint_ex(dir, 0, out, out_len) }
}

/// `flags` of [`ckpt_checkpoint_ex`]: return once the program goes
/// on, before the image is in place (see `ckpt_wait`).
pub const NO_WAIT: u32 = 1;

/// [`ckpt_shim_checkpoint`] with `flags` ([`NO_WAIT`]).
///
/// # Safety
/// As `ckpt_shim_checkpoint`.
#[no_mangle]
pub unsafe extern "C" fn ckpt_checkpoint_ex(
    dir: *const c_char,
    flags: u32,
    out: *mut c_char,
    out_len: usize,
) -> c_int {
    let out = if out.is_null() || out_len == 0 {
        &mut [][..]
    } else {
        // SAFETY: the caller gives a writable buffer of out_len bytes.
        std::slice::from_raw_parts_mut(out as *mut u8, out_len)
    };
    if interpose::is_internal() || SOCK.load(Relaxed) < 0 {
        let msg = b"checkpoint requested from inside ckpt or before start-up\0";
        let n = msg.len().min(out.len());
        out[..n].copy_from_slice(&msg[..n]);
        return -1;
    }
    let dir = (!dir.is_null()).then(|| {
        Path::new(std::ffi::OsStr::from_bytes(
            std::ffi::CStr::from_ptr(dir).to_bytes(),
        ))
    });
    crate::hooks::run(crate::hooks::BEFORE_CHECKPOINT);
    let code = MAILBOX.ask(dir, out, None, flags & NO_WAIT == 0);
    // Restored (1): the hook thread ran the on-restore hooks already.
    if code != 1 {
        crate::hooks::run(crate::hooks::AFTER_CHECKPOINT);
    }
    code
}

/// The hook thread takes a checkpoint asked from outside (see `hooks`).
pub fn checkpoint_for(asker: Option<Requester>, dir: &[u8]) {
    let mut out = [0u8; 256];
    let dir = (!dir.is_empty()).then(|| Path::new(std::ffi::OsStr::from_bytes(dir)));
    MAILBOX.ask(dir, &mut out, asker, true);
}
