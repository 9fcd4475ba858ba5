//! The control thread: answers `ckpt checkpoint` requests arriving on the
//! process's datagram socket, programmatic requests from
//! `ckpt::checkpoint()` (through a mailbox and an eventfd), and the
//! periodic timer. It is ckpt's own thread: internal (wrappers pass
//! through), all signals blocked, never frozen, never listed.

use crate::config;
use ckpt::control::{self as proto, Request, Response};
use ckpt::{checkpoint, files, interpose, quiesce, sys};
use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int};
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering::*};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

static SOCK: AtomicI32 = AtomicI32::new(-1);
static WAKE: AtomicI32 = AtomicI32::new(-1);

/// Create the socket and the wake-up eventfd, then start the thread.
pub fn start() -> Result<(), String> {
    open_channel()?;
    std::thread::Builder::new()
        .name("ckpt-control".into())
        .spawn(run)
        .map_err(|e| format!("cannot start the control thread: {e}"))?;
    Ok(())
}

/// In a fork child: the parent's control thread does not exist here and
/// its socket names the parent. Make our own.
pub fn restart_in_child() {
    for fd in [SOCK.swap(-1, Relaxed), WAKE.swap(-1, Relaxed)] {
        if fd >= 0 {
            files::set_own(fd, false);
            sys::close(fd);
        }
    }
    MAILBOX.reset();
    if let Err(e) = start() {
        eprintln!("ckpt: checkpoints disabled in child {}: {e}", sys::getpid());
    }
}

/// Remove our socket file (at exit).
pub fn remove_socket() {
    // SAFETY: getuid cannot fail.
    let path = proto::socket_path(unsafe { libc::getuid() }, sys::getpid());
    let _ = std::fs::remove_file(path);
}

fn open_channel() -> Result<(), String> {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = proto::runtime_dir(uid);
    proto::ensure_runtime_dir(&dir, uid).map_err(|e| format!("runtime directory {}: {e}", dir.display()))?;
    let path = dir.join(format!("{}.sock", sys::getpid()));
    let _ = std::fs::remove_file(&path);
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    let fd = sys::move_high(fd).map_err(|_| "no free descriptor near the limit".to_string())?;
    files::set_own(fd, true);
    let (addr, len) = proto::sockaddr(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: binding a valid address to our socket.
    if unsafe { libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len) } < 0 {
        return Err(format!("bind {}: {}", path.display(), std::io::Error::last_os_error()));
    }
    let c = proto::c_path(&path);
    // SAFETY: chmod of the socket file we just bound.
    unsafe { libc::chmod(c.as_ptr(), 0o600) };
    proto::pass_credentials(fd).map_err(|e| e.to_string())?;
    SOCK.store(fd, Relaxed);
    // SAFETY: plain eventfd creation.
    let ev = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if ev < 0 {
        return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
    }
    let ev = sys::move_high(ev).map_err(|_| "no free descriptor near the limit".to_string())?;
    files::set_own(ev, true);
    WAKE.store(ev, Relaxed);
    Ok(())
}

fn run() {
    interpose::set_internal(true);
    quiesce::set_control_thread(sys::gettid());
    // SAFETY: blocking every signal on this thread only: process-directed
    // signals must reach the program's threads, not ours.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
    }
    let cfg = config::get();
    let mut next_periodic = cfg.interval_ms.map(|ms| sys::monotonic_ns() + ms * 1_000_000);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let sock = SOCK.load(Relaxed);
        let wake = WAKE.load(Relaxed);
        let mut pfd = [
            libc::pollfd { fd: sock, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: wake, events: libc::POLLIN, revents: 0 },
        ];
        let timeout = next_periodic.map_or(-1, |t| (t.saturating_sub(sys::monotonic_ns()) / 1_000_000) as c_int);
        // SAFETY: polling two descriptors we own.
        let n = unsafe { libc::poll(pfd.as_mut_ptr(), 2, timeout) };
        if n < 0 {
            continue;
        }
        if pfd[0].revents & libc::POLLNVAL != 0 || pfd[1].revents & libc::POLLNVAL != 0 {
            // Closed behind our back (a raw close_range): make new ones.
            let _ = open_channel();
            continue;
        }
        if pfd[1].revents & libc::POLLIN != 0 {
            let mut v = 0u64;
            // SAFETY: reading the 8-byte eventfd counter.
            unsafe { libc::read(wake, (&mut v as *mut u64).cast(), 8) };
            MAILBOX.serve();
        }
        if pfd[0].revents & libc::POLLIN != 0 {
            serve_socket(sock, &mut buf);
        }
        if let Some(t) = next_periodic {
            if sys::monotonic_ns() >= t {
                if let Err(e) = checkpoint::take(&cfg.dir) {
                    eprintln!("ckpt: periodic checkpoint failed: {e}");
                }
                next_periodic = cfg.interval_ms.map(|ms| sys::monotonic_ns() + ms * 1_000_000);
            }
        }
    }
}

fn serve_socket(sock: c_int, buf: &mut [u8]) {
    let Ok(d) = proto::recv_with_creds(sock, buf) else { return };
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    if d.uid != me && d.uid != 0 {
        return; // only our user (or root) may drive us
    }
    let resp = match rmp_serde::from_slice::<Request>(&buf[..d.len]) {
        Ok(Request::Ping) => Response::Pong { pid: sys::getpid() },
        Ok(Request::Checkpoint { dir }) => {
            let dir = dir.map(PathBuf::from).unwrap_or_else(|| config::get().dir.clone());
            match checkpoint::take(&dir) {
                Ok(r) => Response::Checkpointed {
                    path: r.path.display().to_string(),
                    bytes: r.bytes,
                    seq: r.seq,
                    freeze_us: r.freeze_us,
                    total_us: r.total_us,
                },
                Err(message) => Response::Error { message },
            }
        }
        Err(e) => Response::Error {
            message: format!("bad request: {e}"),
        },
    };
    if let Ok(body) = rmp_serde::to_vec_named(&resp) {
        // SAFETY: replying to the address the request came from.
        unsafe {
            libc::sendto(
                sock,
                body.as_ptr().cast(),
                body.len(),
                libc::MSG_DONTWAIT,
                (&d.from as *const libc::sockaddr_un).cast(),
                d.from_len,
            )
        };
    }
}

/// Hand-off between a program thread calling `ckpt::checkpoint()` and the
/// control thread. Plain atomics and fixed buffers, so a fork child can
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
}

// SAFETY: `data` is written by the lock holder before `state` = 1 and by
// the control thread before `state` = 2; each side reads it only after
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
    }),
};

impl Mailbox {
    fn reset(&self) {
        self.lock.store(0, Relaxed);
        self.state.store(0, Relaxed);
    }

    /// Control thread: answer a pending request.
    fn serve(&self) {
        if self.state.load(Acquire) != 1 {
            return;
        }
        // SAFETY: state == 1: the caller finished writing and waits.
        let d = unsafe { &mut *self.data.get() };
        let dir = if d.dir_len == 0 {
            config::get().dir.clone()
        } else {
            PathBuf::from(std::ffi::OsStr::from_bytes(&d.dir[..d.dir_len]))
        };
        let (ok, text) = match checkpoint::take(&dir) {
            Ok(r) => (true, r.path.display().to_string()),
            Err(e) => (false, e),
        };
        let n = text.len().min(d.out.len() - 1);
        d.out[..n].copy_from_slice(&text.as_bytes()[..n]);
        d.out_len = n;
        d.ok = ok;
        self.state.store(2, Release);
        sys::futex_wake_all(&self.state);
    }

    /// Program thread: ask for a checkpoint and wait for the answer.
    fn ask(&self, dir: Option<&Path>, out: &mut [u8]) -> bool {
        while self.lock.compare_exchange(0, 1, Acquire, Relaxed).is_err() {
            sys::futex_wait(&self.lock, 1, 0);
        }
        // SAFETY: we hold the lock and state is 0: nobody else touches data.
        let d = unsafe { &mut *self.data.get() };
        let dir = dir.map(|p| p.as_os_str().as_bytes()).unwrap_or(&[]);
        let n = dir.len().min(d.dir.len());
        d.dir[..n].copy_from_slice(&dir[..n]);
        d.dir_len = n;
        self.state.store(1, Release);
        let one = 1u64;
        // SAFETY: writing 8 bytes to our eventfd wakes the control thread.
        unsafe { libc::write(WAKE.load(Relaxed), (&one as *const u64).cast(), 8) };
        loop {
            let s = self.state.load(Acquire);
            if s == 2 {
                break;
            }
            sys::futex_wait(&self.state, s, 0);
        }
        // SAFETY: state == 2: the control thread finished writing.
        let d = unsafe { &*self.data.get() };
        let n = d.out_len.min(out.len().saturating_sub(1));
        out[..n].copy_from_slice(&d.out[..n]);
        if let Some(z) = out.get_mut(n) {
            *z = 0;
        }
        let ok = d.ok;
        self.state.store(0, Release);
        self.lock.store(0, Release);
        sys::futex_wake_all(&self.lock);
        ok
    }
}

/// `ckpt::checkpoint()` lands here (found with dlsym by the API).
#[no_mangle]
pub unsafe extern "C" fn ckpt_shim_checkpoint(dir: *const c_char, out: *mut c_char, out_len: usize) -> c_int {
    let out = if out.is_null() || out_len == 0 {
        &mut [][..]
    } else {
        // SAFETY: the caller gives a writable buffer of out_len bytes.
        std::slice::from_raw_parts_mut(out as *mut u8, out_len)
    };
    if interpose::is_internal() || WAKE.load(Relaxed) < 0 {
        let msg = b"checkpoint requested from ckpt's own thread or before start-up\0";
        let n = msg.len().min(out.len());
        out[..n].copy_from_slice(&msg[..n]);
        return -1;
    }
    let dir = (!dir.is_null()).then(|| Path::new(std::ffi::OsStr::from_bytes(std::ffi::CStr::from_ptr(dir).to_bytes())));
    if MAILBOX.ask(dir, out) {
        0
    } else {
        -1
    }
}
