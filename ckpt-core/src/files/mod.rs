//! File descriptors: a fixed table indexed by descriptor number with what
//! the kernel cannot tell later (which call made it, the path as the
//! program passed it, the flags it asked for, what it was duplicated from,
//! the other end of a pipe). At snapshot the kernel's view
//! (/proc/self/fd, fdinfo, fstat) is authoritative for what is open; the
//! table adds the history.
//!
//! Each slot is a tiny seqlock of atomics: writers (the wrappers) never
//! block, a reader that sees a slot mid-write ignores that slot's history.

use crate::image::{Fd, FdKind};
use crate::sys;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering::*};
use std::ffi::CString;

/// Descriptors whose history is recorded; higher ones are still listed
/// from /proc at checkpoint, with origin "unknown".
pub const MAX_FDS: usize = 4096;
/// Bytes of the program's path kept per descriptor.
pub const PATH_LEN: usize = 240;

/// The call that created a descriptor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Origin {
    None = 0,
    Open,
    Openat,
    Creat,
    Fopen,
    Freopen,
    Fdopen,
    Dup,
    Dup2,
    Dup3,
    FcntlDupfd,
    Pipe,
    EventFd,
    MemfdCreate,
    /// Open when the shim started (inherited from the parent).
    Inherited,
    SocketPair,
}

impl Origin {
    fn name(v: u8) -> &'static str {
        const NAMES: [&str; 16] = [
            "unknown",
            "open",
            "openat",
            "creat",
            "fopen",
            "freopen",
            "fdopen",
            "dup",
            "dup2",
            "dup3",
            "fcntl_dupfd",
            "pipe",
            "eventfd",
            "memfd_create",
            "inherited",
            "socketpair",
        ];
        NAMES.get(v as usize).copied().unwrap_or("unknown")
    }
}

struct Slot {
    seq: AtomicU32,
    origin: AtomicU8,
    open_flags: AtomicI32,
    dup_of: AtomicI32,
    pipe_peer: AtomicI32,
    path_len: AtomicU32,
    /// The path's bytes, eight to a word (one store per word on the hot path).
    path: [AtomicU64; PATH_WORDS],
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO64: AtomicU64 = AtomicU64::new(0);
const PATH_WORDS: usize = PATH_LEN / 8;
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    seq: AtomicU32::new(0),
    origin: AtomicU8::new(0),
    open_flags: AtomicI32::new(0),
    dup_of: AtomicI32::new(-1),
    pipe_peer: AtomicI32::new(-1),
    path_len: AtomicU32::new(0),
    path: [ZERO64; PATH_WORDS],
};

static SLOTS: [Slot; MAX_FDS] = [EMPTY; MAX_FDS];

fn slot(fd: i32) -> Option<&'static Slot> {
    usize::try_from(fd).ok().and_then(|i| SLOTS.get(i))
}

/// Write one slot under its seqlock.
fn write(fd: i32, origin: Origin, path: &[u8], flags: i32, dup_of: i32, peer: i32) {
    let Some(s) = slot(fd) else { return };
    // Seqlock without locked instructions: odd while writing. Concurrent
    // writers of one slot (a race the program itself has) at worst leave
    // a history the snapshot rejects as implausible.
    let seq = s.seq.load(Relaxed) | 1;
    s.seq.store(seq, Relaxed);
    core::sync::atomic::fence(Release);
    s.origin.store(origin as u8, Relaxed);
    s.open_flags.store(flags, Relaxed);
    s.dup_of.store(dup_of, Relaxed);
    s.pipe_peer.store(peer, Relaxed);
    // Keep the end of long paths: the file name is the informative part.
    let p = if path.len() > PATH_LEN {
        &path[path.len() - PATH_LEN..]
    } else {
        path
    };
    for (d, chunk) in s.path.iter().zip(p.chunks(8)) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        d.store(u64::from_le_bytes(w), Relaxed);
    }
    s.path_len.store(p.len() as u32, Relaxed);
    s.seq.store(seq.wrapping_add(1), Release);
}

/// open/openat/creat/fopen/... returned `fd` for `path`.
pub fn record_open(fd: i32, origin: Origin, path: &[u8], flags: i32) {
    if fd >= 0 {
        write(fd, origin, path, flags, -1, -1);
    }
}

/// `newfd` was made from `oldfd` (dup, dup2, dup3, F_DUPFD).
pub fn record_dup(newfd: i32, oldfd: i32, origin: Origin) {
    if newfd >= 0 && newfd != oldfd {
        write(newfd, origin, &[], 0, oldfd, -1);
    }
}

/// pipe/pipe2 made `fds`.
pub fn record_pipe(fds: [i32; 2], flags: i32) {
    write(fds[0], Origin::Pipe, &[], flags, -1, fds[1]);
    write(fds[1], Origin::Pipe, &[], flags, -1, fds[0]);
}

/// socketpair() returned `fds` (connected to each other).
pub fn record_socketpair(fds: [i32; 2], flags: i32) {
    write(fds[0], Origin::SocketPair, &[], flags, -1, fds[1]);
    write(fds[1], Origin::SocketPair, &[], flags, -1, fds[0]);
}

/// An fd-creating call with no path (eventfd, memfd_create, fdopen of an
/// existing descriptor keeps its own entry).
pub fn record_anon(fd: i32, origin: Origin, name: &[u8], flags: i32) {
    if fd >= 0 {
        write(fd, origin, name, flags, -1, -1);
    }
}

/// `fd` is about to be closed. Cleared *before* the close, so a thread that
/// gets the same number next records after us.
pub fn record_close(fd: i32) {
    if let Some(s) = slot(fd) {
        if s.origin.load(Relaxed) != Origin::None as u8 {
            write(fd, Origin::None, &[], 0, -1, -1);
        }
    }
}

/// close_range(lo, hi) is about to run.
pub fn record_close_range(lo: u32, hi: u32) {
    let hi = (hi as usize).min(MAX_FDS - 1);
    for fd in lo as usize..=hi {
        record_close(fd as i32);
    }
}

/// At start-up: every descriptor already open came from the parent.
pub fn record_inherited() {
    let Ok(dir) = sys::openat(
        libc::AT_FDCWD,
        c"/proc/self/fd",
        libc::O_RDONLY | libc::O_DIRECTORY,
    ) else {
        return;
    };
    sys::for_each_numeric_entry(dir, |fd| {
        let fd = fd as i32;
        if fd != dir && !is_own(fd) {
            write(fd, Origin::Inherited, &[], 0, -1, -1);
        }
    });
    sys::close(dir);
}

/// The history of descriptor `fd`, if recorded and not torn.
struct History {
    origin: u8,
    open_flags: i32,
    dup_of: i32,
    pipe_peer: i32,
    path: Vec<u8>,
}

fn history(fd: i32) -> Option<History> {
    let s = slot(fd)?;
    let before = s.seq.load(Acquire);
    if before & 1 == 1 {
        return None;
    }
    let len = (s.path_len.load(Relaxed) as usize).min(PATH_LEN);
    let h = History {
        origin: s.origin.load(Relaxed),
        open_flags: s.open_flags.load(Relaxed),
        dup_of: s.dup_of.load(Relaxed),
        pipe_peer: s.pipe_peer.load(Relaxed),
        path: s
            .path
            .iter()
            .flat_map(|w| w.load(Relaxed).to_le_bytes())
            .take(len)
            .collect(),
    };
    (s.seq.load(Acquire) == before && h.origin != 0).then_some(h)
}

/// In a fork child nothing changes: descriptors are inherited as they are.
/// After exec the table starts empty (fresh process image).
///
/// Describe every open descriptor except those `skip` names (ckpt's own).
/// Runs while the program is frozen: raw syscalls and Rust allocation only.
pub fn snapshot(skip: impl Fn(i32) -> bool) -> Vec<Fd> {
    let mut out = Vec::new();
    let Ok(dir) = sys::openat(
        libc::AT_FDCWD,
        c"/proc/self/fd",
        libc::O_RDONLY | libc::O_DIRECTORY,
    ) else {
        return out;
    };
    let mut fds = Vec::new();
    sys::for_each_numeric_entry(dir, |n| fds.push(n as i32));
    fds.retain(|&fd| fd != dir && !skip(fd));
    fds.sort_unstable();
    for &fd in &fds {
        if let Some(e) = describe(dir, fd) {
            out.push(e);
        }
    }
    sys::close(dir);
    link_shared(&mut out);
    for f in out.iter_mut() {
        if f.kind == FdKind::Pipe
            && f.pipe_peer.is_some()
            && f.flags & libc::O_ACCMODE == libc::O_RDONLY
            && f.shares_with.is_none()
        {
            f.pipe_data = peek_pipe(f.fd, f.pipe_size.unwrap_or(65536));
        }
        let unnamed = f.kind == FdKind::MemFd || (f.kind == FdKind::File && f.deleted);
        if unnamed && f.shares_with.is_none() {
            f.contents = read_contents(f.fd, f.size);
        }
        if f.kind == FdKind::Socket && f.pipe_peer.is_some() && f.shares_with.is_none() {
            f.socket_type = socket_type(f.fd);
            f.pipe_data = peek_socket(f.fd);
        }
    }
    out
}

fn describe(dir: i32, fd: i32) -> Option<Fd> {
    let name = CString::new(fd.to_string()).ok()?;
    let mut buf = [0u8; 4096];
    let n = sys::readlinkat(dir, &name, &mut buf)?;
    let mut path = String::from_utf8_lossy(&buf[..n]).into_owned();
    let mut st: libc::stat = unsafe_zeroed();
    // SAFETY: fstat writes into a live stat.
    if unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st) } < 0 {
        return None;
    }
    let info = CString::new(format!("/proc/self/fdinfo/{fd}")).ok()?;
    let mut ib = [0u8; 2048];
    let il = sys::read_small(libc::AT_FDCWD, &info, &mut ib).unwrap_or(0);
    let ib = &ib[..il];
    let offset = sys::field(ib, b"pos:")
        .and_then(|v| sys::parse_i64(trim(v)))
        .unwrap_or(0);
    let kflags = sys::field(ib, b"flags:")
        .and_then(sys::parse_oct)
        .unwrap_or(0) as i32;
    let mnt_id = sys::field(ib, b"mnt_id:")
        .and_then(|v| sys::parse_i64(trim(v)))
        .unwrap_or(0) as i32;
    let eventfd_count = sys::field(ib, b"eventfd-count:").and_then(sys::parse_hex);
    let deleted = path.ends_with(" (deleted)");
    if deleted {
        path.truncate(path.len() - " (deleted)".len());
    }
    let kind = kind_of(&st, &path);
    let h = history(fd).filter(|h| plausible(h, &path, kind));
    let origin = match &h {
        Some(h) => Origin::name(h.origin).to_string(),
        None if fd <= 2 => "inherited".to_string(),
        None => "unknown".to_string(),
    };
    Some(Fd {
        fd,
        kind,
        path,
        deleted,
        offset,
        flags: kflags & !libc::O_CLOEXEC,
        cloexec: kflags & libc::O_CLOEXEC != 0,
        origin,
        opened_as: h
            .as_ref()
            .filter(|h| !h.path.is_empty())
            .map(|h| String::from_utf8_lossy(&h.path).into_owned()),
        open_flags: h.as_ref().filter(|h| h.dup_of < 0).map(|h| h.open_flags),
        dup_of: h.as_ref().and_then(|h| (h.dup_of >= 0).then_some(h.dup_of)),
        shares_with: None,
        pipe_peer: h
            .as_ref()
            .and_then(|h| (h.pipe_peer >= 0).then_some(h.pipe_peer)),
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        size: st.st_size,
        mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
        mnt_id,
        eventfd_count: if kind == FdKind::EventFd {
            eventfd_count
        } else {
            None
        },
        pipe_data: None,
        contents: None,
        socket_type: None,
        epoll: (kind == FdKind::Epoll).then(|| anon::epoll_watches(fd)),
        timerfd: (kind == FdKind::TimerFd)
            .then(|| anon::timerfd_state(ib))
            .flatten(),
        signalfd_mask: (kind == FdKind::SignalFd)
            .then(|| sys::field(ib, b"sigmask:").and_then(sys::parse_hex))
            .flatten(),
        // SAFETY: F_GETPIPE_SZ takes no argument; fails harmlessly on non-pipes.
        pipe_size: (kind == FdKind::Pipe)
            .then(|| unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETPIPE_SZ) } as i32)
            .filter(|&n| n > 0),
    })
}

/// Files larger than this are not copied into the image (restart then
/// warns that the file is gone).
const MAX_CONTENTS: i64 = 256 << 20;

/// The whole of a file no path leads to (memfd, deleted file). Runs frozen.
fn read_contents(fd: i32, size: i64) -> Option<Vec<u8>> {
    if !(0..=MAX_CONTENTS).contains(&size) {
        return None;
    }
    let mut data = vec![0u8; size as usize];
    let mut got = 0;
    while got < data.len() {
        // SAFETY: pread into the unread tail of `data`; the offset the
        // program uses does not move.
        let n = unsafe {
            libc::pread(
                fd,
                data[got..].as_mut_ptr().cast(),
                data.len() - got,
                got as i64,
            )
        };
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    data.truncate(got);
    Some(data)
}

fn socket_type(fd: i32) -> Option<i32> {
    let mut t: i32 = 0;
    let mut len = 4u32;
    // SAFETY: getsockopt(SO_TYPE) into a local int.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut t as *mut i32).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(t)
}

/// What a stream socket of a pair holds unread, without consuming it.
/// Runs frozen.
fn peek_socket(fd: i32) -> Option<Vec<u8>> {
    let mut avail: i32 = 0;
    // SAFETY: FIONREAD (SIOCINQ) writes an int.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut avail) } != 0 || avail <= 0 {
        return None;
    }
    let mut data = vec![0u8; avail as usize];
    // SAFETY: recv into a live buffer; MSG_PEEK leaves the data queued.
    let n = unsafe {
        libc::recv(
            fd,
            data.as_mut_ptr().cast(),
            data.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    data.truncate(n.max(0) as usize);
    (!data.is_empty()).then_some(data)
}

/// Copy (without consuming) what an in-process pipe holds, through a
/// pipe of ckpt's own: `tee` duplicates pipe contents. Runs frozen.
fn peek_pipe(fd: i32, size: i32) -> Option<Vec<u8>> {
    let mut avail: i32 = 0;
    // SAFETY: FIONREAD writes an int.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut avail) } != 0 || avail <= 0 {
        return None;
    }
    let mut p = [0i32; 2];
    // SAFETY: pipe2 into a local array.
    if unsafe {
        libc::syscall(
            libc::SYS_pipe2,
            p.as_mut_ptr(),
            libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    } != 0
    {
        return None;
    }
    // SAFETY: resizing our own pipe so it can hold everything.
    unsafe { libc::syscall(libc::SYS_fcntl, p[1], libc::F_SETPIPE_SZ, size.max(avail)) };
    // SAFETY: tee between two pipes; never blocks (SPLICE_F_NONBLOCK).
    let n = unsafe { libc::tee(fd, p[1], avail as usize, libc::SPLICE_F_NONBLOCK) };
    let mut data = vec![0u8; n.max(0) as usize];
    let mut got = 0;
    while got < data.len() {
        // SAFETY: reading into the unread tail of `data`.
        let r = unsafe { libc::read(p[0], data[got..].as_mut_ptr().cast(), data.len() - got) };
        if r <= 0 {
            break;
        }
        got += r as usize;
    }
    data.truncate(got);
    sys::close(p[0]);
    sys::close(p[1]);
    (!data.is_empty()).then_some(data)
}

fn trim(v: &[u8]) -> &[u8] {
    let end = v
        .iter()
        .position(|c| c.is_ascii_whitespace())
        .unwrap_or(v.len());
    &v[..end]
}

fn unsafe_zeroed<T>() -> T {
    // SAFETY: only used for plain C structs (stat) where all-zero is valid.
    unsafe { core::mem::zeroed() }
}

/// A recorded history is trusted only if it fits what the kernel says is
/// open now (a slot can be stale when two threads raced on one number).
fn plausible(h: &History, path: &str, kind: FdKind) -> bool {
    match h.origin {
        o if o == Origin::Pipe as u8 => kind == FdKind::Pipe,
        o if o == Origin::SocketPair as u8 => kind == FdKind::Socket,
        o if o == Origin::EventFd as u8 => kind == FdKind::EventFd,
        o if o == Origin::MemfdCreate as u8 => kind == FdKind::MemFd,
        _ if h.dup_of >= 0 || h.path.is_empty() => true,
        _ => {
            // Compare the last path component the program passed with
            // what the kernel resolved.
            let name = h
                .path
                .rsplit(|&c| c == b'/')
                .find(|c| !c.is_empty())
                .unwrap_or(&h.path);
            let name = String::from_utf8_lossy(name);
            name == "." || name == ".." || path.ends_with(&*name)
        }
    }
}

fn kind_of(st: &libc::stat, path: &str) -> FdKind {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG if path.starts_with("/memfd:") => FdKind::MemFd,
        libc::S_IFREG => FdKind::File,
        libc::S_IFDIR => FdKind::Directory,
        libc::S_IFIFO if path.starts_with("pipe:") => FdKind::Pipe,
        libc::S_IFIFO => FdKind::Fifo,
        libc::S_IFSOCK => FdKind::Socket,
        libc::S_IFBLK => FdKind::BlockDevice,
        libc::S_IFCHR => {
            let major = libc::major(st.st_rdev);
            if major == 136 || major == 4 || major == 5 {
                FdKind::Tty
            } else {
                FdKind::CharDevice
            }
        }
        _ if path == "anon_inode:[eventfd]" => FdKind::EventFd,
        _ if path == "anon_inode:[eventpoll]" => FdKind::Epoll,
        _ if path == "anon_inode:[timerfd]" => FdKind::TimerFd,
        _ if path == "anon_inode:[signalfd]" => FdKind::SignalFd,
        _ => FdKind::Anon,
    }
}

/// Fill `shares_with` (descriptors sharing one open file description, as
/// after dup: found with kcmp) and pipe peers the wrappers did not see.
fn link_shared(fds: &mut [Fd]) {
    let pid = sys::getpid();
    for i in 0..fds.len() {
        for j in 0..i {
            if fds[j].dev != fds[i].dev || fds[j].ino != fds[i].ino {
                continue;
            }
            // SAFETY: kcmp compares two descriptors of our own process.
            let same = unsafe {
                libc::syscall(
                    libc::SYS_kcmp,
                    pid,
                    pid,
                    0, /* KCMP_FILE */
                    fds[j].fd,
                    fds[i].fd,
                )
            } == 0;
            if same {
                if fds[i].shares_with.is_none() {
                    fds[i].shares_with = Some(fds[j].shares_with.unwrap_or(fds[j].fd));
                }
            } else if fds[i].kind == FdKind::Pipe && fds[i].pipe_peer.is_none() {
                let (a, b) = (
                    fds[j].flags & libc::O_ACCMODE,
                    fds[i].flags & libc::O_ACCMODE,
                );
                if a != b {
                    fds[i].pipe_peer = Some(fds[j].fd);
                    if fds[j].pipe_peer.is_none() {
                        fds[j].pipe_peer = Some(fds[i].fd);
                    }
                }
            }
        }
    }
}

/// ckpt's own descriptors in this process (control socket, image being
/// written, ...): hidden from snapshots and protected from the program's
/// close/dup2.
static OWN: [AtomicI32; 8] = [const { AtomicI32::new(-1) }; 8];
/// For each `OWN` entry, where its owner keeps the number (null: nowhere
/// that outlives the call), so the descriptor can move out of the way.
static OWNER: [AtomicPtr<AtomicI32>; 8] = [const { AtomicPtr::new(core::ptr::null_mut()) }; 8];
/// Lowest descriptor ckpt owns (they sit near the limit), so the common
/// check on the hot path is one comparison.
static OWN_MIN: AtomicI32 = AtomicI32::new(i32::MAX);

/// Mark (or unmark) `fd` as one of ckpt's own.
pub fn set_own(fd: i32, own: bool) {
    if own {
        if is_own(fd) {
            return;
        }
        OWN_MIN.fetch_min(fd, AcqRel);
        for s in OWN.iter() {
            if s.compare_exchange(-1, fd, AcqRel, Relaxed).is_ok() {
                return;
            }
        }
    } else {
        for s in OWN.iter() {
            let _ = s.compare_exchange(fd, -1, AcqRel, Relaxed);
        }
    }
}

/// Mark `fd` as ckpt's own, kept by its owner in `at`: when the program
/// asks for that very number (dup2/dup3), the descriptor moves and `at`
/// follows it.
pub fn set_own_at(fd: i32, at: &'static AtomicI32) {
    set_own(fd, true);
    if let Some(i) = OWN.iter().position(|s| s.load(Acquire) == fd) {
        OWNER[i].store(at as *const AtomicI32 as *mut AtomicI32, Release);
    }
}

/// The program wants descriptor number `fd`, which is ckpt's: move ours
/// elsewhere (near the limit) when its owner can follow. Returns whether
/// the number is free for the program now (the caller's dup2 replaces it).
pub fn make_way(fd: i32) -> bool {
    let Some(i) = OWN.iter().position(|s| s.load(Acquire) == fd) else {
        return true;
    };
    let owner = OWNER[i].load(Acquire);
    if owner.is_null() {
        return false;
    }
    let Ok(moved) = sys::dup_high(fd) else {
        return false;
    };
    // SAFETY: `owner` came from a `&'static AtomicI32` in set_own_at.
    let owner: &'static AtomicI32 = unsafe { &*owner };
    owner.store(moved, Release);
    set_own_at(moved, owner);
    OWNER[i].store(core::ptr::null_mut(), Release);
    set_own(fd, false);
    true
}

/// Whether `fd` may be one of ckpt's own descriptors (one compare: they
/// all sit at or above the lowest one). For filters on hot paths.
#[inline(always)]
pub fn maybe_own(fd: i32) -> bool {
    fd >= OWN_MIN.load(Relaxed)
}

/// Whether `fd` is one of ckpt's own descriptors. Inlined into hot
/// wrappers: the common answer (below every own descriptor) is one compare.
#[inline]
pub fn is_own(fd: i32) -> bool {
    fd >= OWN_MIN.load(Relaxed) && is_own_listed(fd)
}

#[inline(never)]
fn is_own_listed(fd: i32) -> bool {
    OWN.iter().any(|s| s.load(Relaxed) == fd)
}

mod anon;
mod restore;
pub use restore::{restore, stdio_rule, Passthrough};
