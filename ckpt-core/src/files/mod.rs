//! File descriptors: a fixed table indexed by descriptor number with what
//! the kernel cannot tell later (which call made it, the path as the
//! program passed it, the flags it asked for, what it was duplicated from,
//! the other end of a pipe). At snapshot the kernel's view
//! (/proc/self/fd, fdinfo, fstat) is authoritative for what is open; the
//! table adds the history.
//!
//! Each slot is a tiny seqlock of atomics: writers (the wrappers) never
//! block, a reader that sees a slot mid-write ignores that slot's history.
//!
//! Verbs: `record_*` here (from the wrappers), `snapshot` (snapshot.rs,
//! with anon.rs for epoll/timerfd/signalfd, inotify.rs for inotify
//! watches, locks.rs for file locks), `restore` (restore.rs).

use crate::sys;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering::*};

/// Descriptors whose history is recorded; higher ones are still listed
/// from /proc at checkpoint, with origin "unknown".
pub const MAX_FDS: usize = 4096;
/// Bytes of the program's path kept per descriptor (a slot is then four
/// cache lines; a path of up to 40 bytes shares the first with the rest).
pub const PATH_LEN: usize = 232;

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
    Inotify,
}

impl Origin {
    fn name(v: u8) -> &'static str {
        const NAMES: [&str; 17] = [
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
            "inotify_init",
        ];
        NAMES.get(v as usize).copied().unwrap_or("unknown")
    }
}

/// One descriptor's history: the fields a wrapper writes first, then the
/// path, so a short path touches one cache line.
#[repr(C, align(64))]
struct Slot {
    seq: AtomicU32,
    open_flags: AtomicI32,
    /// The descriptor this one was duplicated from, plus one (0 = none),
    /// so that an empty table is all zeros (.bss, not 1 MiB of .data).
    dup_of: AtomicI32,
    /// The other end of a pipe or socket pair, plus one (0 = none).
    pipe_peer: AtomicI32,
    path_len: AtomicU32,
    origin: AtomicU8,
    /// The path's bytes, eight to a word (one store per word on the hot path).
    path: [AtomicU64; PATH_WORDS],
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO64: AtomicU64 = AtomicU64::new(0);
const PATH_WORDS: usize = PATH_LEN / 8;
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    seq: AtomicU32::new(0),
    open_flags: AtomicI32::new(0),
    dup_of: AtomicI32::new(0),
    pipe_peer: AtomicI32::new(0),
    path_len: AtomicU32::new(0),
    origin: AtomicU8::new(0),
    path: [ZERO64; PATH_WORDS],
};
const _: () = assert!(core::mem::size_of::<Slot>() == 256);

static SLOTS: [Slot; MAX_FDS] = [EMPTY; MAX_FDS];

fn slot(fd: i32) -> Option<&'static Slot> {
    usize::try_from(fd).ok().and_then(|i| SLOTS.get(i))
}

/// Write one slot under its seqlock; `path` stores the path's words and
/// returns its length.
#[inline(always)]
fn write_with(
    fd: i32,
    origin: Origin,
    flags: i32,
    dup_of: i32,
    peer: i32,
    path: impl FnOnce(&[AtomicU64; PATH_WORDS]) -> usize,
) {
    dnotify::forget(fd);
    let Some(s) = slot(fd) else { return };
    // Seqlock without locked instructions: odd while writing. Concurrent
    // writers of one slot (a race the program itself has) at worst leave
    // a history the snapshot rejects as implausible.
    let seq = s.seq.load(Relaxed) | 1;
    s.seq.store(seq, Relaxed);
    core::sync::atomic::fence(Release);
    s.origin.store(origin as u8, Relaxed);
    s.open_flags.store(flags, Relaxed);
    s.dup_of.store(dup_of.wrapping_add(1), Relaxed);
    s.pipe_peer.store(peer.wrapping_add(1), Relaxed);
    let len = path(&s.path);
    s.path_len.store(len as u32, Relaxed);
    s.seq.store(seq.wrapping_add(1), Release);
}

/// Write one slot with a path given as bytes.
fn write(fd: i32, origin: Origin, path: &[u8], flags: i32, dup_of: i32, peer: i32) {
    write_with(fd, origin, flags, dup_of, peer, |words| {
        let p = keep_end(path);
        store_path(words, p);
        p.len()
    });
}

/// Keep the end of long paths: the file name is the informative part.
fn keep_end(path: &[u8]) -> &[u8] {
    &path[path.len().saturating_sub(PATH_LEN)..]
}

/// `p` (at most `words.len() * 8` bytes) into `words`, eight bytes to a
/// store: whole words by plain loads, the tail byte by byte (no memcpy
/// calls on the hot path). Also for inotify's recorded paths.
#[inline(always)]
pub(super) fn store_path(words: &[AtomicU64], p: &[u8]) {
    let chunks = p.chunks_exact(8);
    let tail = chunks.remainder();
    let mut i = 0;
    for (d, c) in words.iter().zip(chunks) {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        d.store(u64::from_le_bytes(w), Relaxed);
        i += 1;
    }
    if !tail.is_empty() {
        let w = tail
            .iter()
            .rev()
            .fold(0u64, |w, &b| (w << 8) | u64::from(b));
        if let Some(d) = words.get(i) {
            d.store(w, Relaxed);
        }
    }
}

/// The first `len` bytes stored in `words` by `store_path`.
pub(super) fn load_path(words: &[AtomicU64], len: usize) -> Vec<u8> {
    words
        .iter()
        .flat_map(|w| w.load(Relaxed).to_le_bytes())
        .take(len)
        .collect()
}

/// open/openat/creat/fopen/... returned `fd` for `path`.
pub fn record_open(fd: i32, origin: Origin, path: &[u8], flags: i32) {
    if fd >= 0 {
        write(fd, origin, path, flags, -1, -1);
    }
}

/// As `record_open`, for the program's C string: read once, copied while
/// looking for its end (the open wrappers' hot path).
///
/// # Safety
/// `path` is null or points to a NUL-terminated string.
#[inline(always)]
pub unsafe fn record_open_c(fd: i32, origin: Origin, path: *const core::ffi::c_char, flags: i32) {
    if fd >= 0 {
        // SAFETY: the caller's contract on `path`.
        write_with(fd, origin, flags, -1, -1, |w| unsafe {
            copy_c_path(w, path.cast())
        });
    }
}

/// Copy the C string `p` into `words` eight bytes at a time, finding its
/// NUL on the way (no separate strlen); a string longer than PATH_LEN
/// keeps its end. Returns the stored length.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string.
#[inline(always)]
unsafe fn copy_c_path(words: &[AtomicU64; PATH_WORDS], p: *const u8) -> usize {
    if p.is_null() {
        return 0;
    }
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    for (i, d) in words.iter().enumerate() {
        // SAFETY: bytes up to the NUL are readable (caller); `load_word`
        // reads past it only within the same page.
        let w = unsafe { load_word(p.add(i * 8)) };
        // The lowest flagged byte is exactly the first zero byte.
        let zero = w.wrapping_sub(LOW) & !w & HIGH;
        if zero == 0 {
            d.store(w, Relaxed);
            continue;
        }
        let n = (zero.trailing_zeros() / 8) as usize;
        d.store(w & !(u64::MAX << (8 * n)), Relaxed);
        return i * 8 + n;
    }
    // Longer than PATH_LEN: keep the end (rare, so strlen is fine here).
    // SAFETY: the caller's contract on `p`.
    let all = unsafe { core::ffi::CStr::from_ptr(p.cast()) }.to_bytes();
    let end = keep_end(all);
    store_path(words, end);
    end.len()
}

/// Eight bytes of a C string from `p`, as a little-endian word. Bytes of
/// the word after the string's NUL are unspecified but never 0 before it.
/// A word that would cross into the next page is gathered byte by byte,
/// stopping at the NUL, so nothing past the string's page is touched.
///
/// # Safety
/// The bytes from `p` up to and including the next NUL are readable.
#[inline(always)]
unsafe fn load_word(p: *const u8) -> u64 {
    if (p as usize) & 4095 <= 4096 - 8 {
        let w: u64;
        // SAFETY: the first byte is readable and the 8 bytes lie in its
        // page, so all are mapped; read by an opaque load because the
        // bytes after the NUL may lie outside the program's object.
        unsafe {
            core::arch::asm!("mov {}, qword ptr [{}]", out(reg) w, in(reg) p,
                options(nostack, readonly, preserves_flags, pure))
        };
        return w;
    }
    let mut w = 0u64;
    for j in 0..8 {
        // SAFETY: bytes up to the NUL are readable; we stop at it.
        let b = unsafe { *p.add(j) };
        if b == 0 {
            break;
        }
        w |= u64::from(b) << (8 * j);
    }
    w
}

/// Descriptor `fd` was just opened for writing from `path` (relative to
/// `dirfd`): the first time this process opens that path so, the file
/// goes into its table of written files (`closed`) and the job's log
/// (`joblog`), so a restart rolls it back once it is closed, or once the
/// process ended. Runs on the program's threads (signal-safe).
#[cold]
#[inline(never)]
pub fn record_written(fd: i32, dirfd: i32, path: &[u8]) {
    if fd < 0 || joblog::opened_before(dirfd, path) {
        return;
    }
    remember_written(fd, false);
}

/// What descriptor `fd` names (its /proc/self/fd link) into `buf`: its
/// length. Signal-safe.
fn fd_path(fd: i32, buf: &mut [u8]) -> Option<usize> {
    let mut link = [0u8; 32];
    let mut w = sys::Cursor::new(&mut link);
    core::fmt::Write::write_fmt(&mut w, format_args!("/proc/self/fd/{fd}\0")).ok()?;
    let link = core::ffi::CStr::from_bytes_until_nul(&link).ok()?;
    sys::readlinkat(libc::AT_FDCWD, link, buf)
}

/// The file open at `fd` into the table of written files and the job's
/// log, by its absolute path; `replaced`: it was renamed over a file that
/// was there before (logged so: see [`joblog::REPLACED_MARK`]).
/// Signal-safe.
fn remember_written(fd: i32, replaced: bool) {
    let mut buf = [0u8; 4096];
    let Some(n) = fd_path(fd, &mut buf) else {
        return;
    };
    let mark = joblog::REPLACED_MARK;
    if n + mark.len() >= buf.len() {
        return;
    }
    let p = &buf[..n];
    if p.first() != Some(&b'/')
        || p.starts_with(b"/dev/")
        || p.starts_with(b"/proc/")
        || p.ends_with(b" (deleted)")
    {
        return;
    }
    let logged = joblog::append(p);
    closed::record(fd, p, logged);
    if replaced {
        buf[n..n + mark.len()].copy_from_slice(mark);
        joblog::append(&buf[..n + mark.len()]);
    }
}

/// Whether `path` (relative to `dirfd`) names something now, in a job
/// (not following a last symbolic link): asked before a rename over it.
/// Signal-safe.
///
/// # Safety
/// `path` is null or points to a NUL-terminated string.
pub unsafe fn exists_in_job(dirfd: i32, path: *const core::ffi::c_char) -> bool {
    if path.is_null() || !joblog::in_job() {
        return false;
    }
    // SAFETY: a NUL-terminated path (the caller's contract).
    if joblog::renamed_over_before(dirfd, unsafe { core::ffi::CStr::from_ptr(path) }.to_bytes()) {
        // Logged as replaced already: nothing to ask.
        return true;
    }
    // SAFETY: all-zero is a valid stat; fstatat of a NUL-terminated path
    // into it (the caller's contract).
    unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        libc::syscall(
            libc::SYS_newfstatat,
            dirfd,
            path,
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        ) == 0
    }
}

/// A file was renamed to `path` (relative to `dirfd`): a program that
/// writes a new version and renames it over the old (an "atomic" save)
/// wrote the file now at `path`, as does a job's `mv` of what another of
/// its processes wrote; remembered as `record_written` does. `replaced`:
/// something was at `path` before (see [`exists_in_job`]). Signal-safe.
///
/// # Safety
/// `path` is null or points to a NUL-terminated string.
#[cold]
#[inline(never)]
pub unsafe fn record_renamed(dirfd: i32, path: *const core::ffi::c_char, replaced: bool) {
    if path.is_null() {
        return;
    }
    // SAFETY: the caller's contract.
    let c = unsafe { core::ffi::CStr::from_ptr(path) };
    // Each once per process: the path written, and that it was replaced.
    let written = joblog::opened_before(dirfd, c.to_bytes());
    let replaced = replaced && !joblog::replaced_before(dirfd, c.to_bytes());
    if written && !replaced {
        return;
    }
    // SAFETY: a NUL-terminated path; raw openat (no wrapper, no record).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            dirfd,
            c.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        )
    };
    if fd >= 0 {
        remember_written(fd as i32, replaced);
        sys::close(fd as i32);
    }
}

/// `old` (relative to `olddirfd`) was renamed to `new` (relative to
/// `newdirfd`), over a file there when `replaced`: the job's log gets the
/// rename, every time (see [`joblog::append_rename`]), so a restart can
/// undo it when it came after the checkpoint. Signal-safe.
///
/// # Safety
/// `old` and `new` are null or point to NUL-terminated strings.
#[cold]
#[inline(never)]
pub unsafe fn record_rename_event(
    olddirfd: i32,
    old: *const core::ffi::c_char,
    newdirfd: i32,
    new: *const core::ffi::c_char,
    replaced: bool,
) {
    if old.is_null() || new.is_null() || !joblog::in_job() {
        return;
    }
    let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
    // SAFETY: NUL-terminated strings (the caller's contract).
    let (old, new) = unsafe {
        (
            core::ffi::CStr::from_ptr(old).to_bytes(),
            core::ffi::CStr::from_ptr(new).to_bytes(),
        )
    };
    if let (Some(n), Some(m)) = (
        absolute(olddirfd, old, &mut a),
        absolute(newdirfd, new, &mut b),
    ) {
        joblog::append_rename(&a[..n], &b[..m], replaced);
    }
}

/// Before a removal of `path` (relative to `dirfd`) in a job: its birth
/// time (ns since the epoch; 0 when the file system does not keep it)
/// when it is a regular file; `None` otherwise (not in a job, not a
/// regular file, not there). Signal-safe.
///
/// # Safety
/// `path` is null or points to a NUL-terminated string.
pub unsafe fn born_if_file(dirfd: i32, path: *const core::ffi::c_char) -> Option<u64> {
    if path.is_null() || !joblog::in_job() {
        return None;
    }
    // SAFETY: all-zero is a valid statx.
    let mut stx: libc::statx = unsafe { core::mem::zeroed() };
    // SAFETY: statx of a NUL-terminated path (the caller's contract) into
    // our own buffer; raw (no wrapper).
    let r = unsafe {
        libc::syscall(
            libc::SYS_statx,
            dirfd,
            path,
            libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_TYPE | libc::STATX_BTIME,
            &mut stx,
        )
    };
    if r != 0 || u32::from(stx.stx_mode) & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    if stx.stx_mask & libc::STATX_BTIME == 0 {
        return Some(0);
    }
    let b = stx.stx_btime;
    Some((b.tv_sec.max(0) as u64) * 1_000_000_000 + u64::from(b.tv_nsec))
}

/// A regular file born at `born` (see [`born_if_file`]) was removed
/// from `path` (relative to `dirfd`): the job's log gets it, every time,
/// so a restart can say which files there at the checkpoint the killed
/// run removed after it. Signal-safe.
///
/// # Safety
/// `path` is null or points to a NUL-terminated string.
#[cold]
#[inline(never)]
pub unsafe fn record_removed(dirfd: i32, path: *const core::ffi::c_char, born: u64) {
    if path.is_null() {
        return;
    }
    let mut a = [0u8; 4096];
    // SAFETY: a NUL-terminated string (the caller's contract).
    let p = unsafe { core::ffi::CStr::from_ptr(path) }.to_bytes();
    if let Some(n) = absolute(dirfd, p, &mut a) {
        joblog::append_removed(&a[..n], born);
    }
}

/// The absolute path of `path` (relative to `dirfd`) into `out`, as the
/// descriptors of the image name files: its directory as the kernel
/// resolves it (`./x`, `a/../b/x`, a directory through a symbolic link:
/// the directory opened and its /proc/self/fd link read), then its last
/// component. A bare name follows the working directory's path (or
/// `dirfd`'s): one readlink, no open. Its last component need not exist
/// (the old name of a rename). Its length. Signal-safe.
fn absolute(dirfd: i32, path: &[u8], out: &mut [u8; 4096]) -> Option<usize> {
    // "dir/" names "dir": trailing slashes are not a component.
    let end = path.iter().rposition(|&b| b != b'/').map_or(1, |i| i + 1);
    let path = &path[..end.min(path.len())];
    if path.is_empty() {
        return None;
    }
    let (mut n, last) = match path.iter().rposition(|&b| b == b'/') {
        None if dirfd == libc::AT_FDCWD => (
            sys::readlinkat(libc::AT_FDCWD, c"/proc/self/cwd", &mut out[..])?,
            path,
        ),
        None => (fd_path(dirfd, &mut out[..])?, path),
        Some(i) => {
            let mut dir = [0u8; 4096];
            let d = &path[..i.max(1)];
            if d.len() >= dir.len() {
                return None;
            }
            dir[..d.len()].copy_from_slice(d);
            let dir = core::ffi::CStr::from_bytes_until_nul(&dir).ok()?;
            // O_PATH opens without side effects; raw (no wrapper, no record).
            let fd = sys::openat(dirfd, dir, libc::O_PATH | libc::O_DIRECTORY).ok()?;
            let n = fd_path(fd, &mut out[..]);
            sys::close(fd);
            (n?, &path[i + 1..])
        }
    };
    if n == 0 || n >= out.len() - 1 || out[0] != b'/' || out[..n].ends_with(b" (deleted)") {
        return None;
    }
    if n > 1 {
        out[n] = b'/';
        n += 1;
    }
    if n + last.len() >= out.len() {
        return None;
    }
    out[n..n + last.len()].copy_from_slice(last);
    Some(n + last.len())
}

/// Something was made at `path` (relative to `dirfd`) other than by
/// opening it for writing: a directory (`dir`), a FIFO, a device node, a
/// symbolic or hard link, a unix socket's file. Logged for the job, so a
/// restart removes what the killed run made after the checkpoint (the
/// restarted run's `mkdir`, `mkfifo`, `ln -s` or `bind` would fail with
/// EEXIST or EADDRINUSE). Signal-safe.
///
/// # Safety
/// `path` is null or points to a NUL-terminated string.
#[cold]
#[inline(never)]
pub unsafe fn record_made(dirfd: i32, path: *const core::ffi::c_char, dir: bool) {
    if path.is_null() || !joblog::in_job() {
        return;
    }
    // SAFETY: a NUL-terminated path (the caller's contract).
    if joblog::made_before(dirfd, unsafe { core::ffi::CStr::from_ptr(path) }.to_bytes()) {
        return;
    }
    let only_dir = if dir { libc::O_DIRECTORY } else { 0 };
    // SAFETY: a NUL-terminated path (the caller's contract); raw openat
    // (no wrapper, no record); O_PATH opens a link, a FIFO or a socket
    // itself without side effects.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            dirfd,
            path,
            libc::O_PATH | only_dir | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    let n = fd_path(fd as i32, &mut buf);
    sys::close(fd as i32);
    let Some(n) = n.filter(|&n| n > 1 && n < buf.len() - 1) else {
        return;
    };
    if buf[0] == b'/'
        && !buf[..n].ends_with(b" (deleted)")
        && !joblog::is_own_control_socket(&buf[..n])
    {
        let mut len = n;
        if dir {
            buf[n] = joblog::DIR_MARK;
            len += 1;
        }
        joblog::append(&buf[..len]);
    }
}

/// A unix socket was bound to `addr` (`len` bytes): its file, when it has
/// one, was made (see [`record_made`]). Signal-safe.
///
/// # Safety
/// `addr` is null or points to `len` readable bytes.
#[cold]
#[inline(never)]
pub unsafe fn record_bound(addr: *const libc::sockaddr, len: u32) {
    let family = core::mem::size_of::<libc::sa_family_t>();
    if addr.is_null() || (len as usize) <= family || !joblog::in_job() {
        return;
    }
    // SAFETY: at least the family's bytes are readable (len > family).
    if unsafe { (*addr).sa_family } != libc::AF_UNIX as libc::sa_family_t {
        return;
    }
    let mut path = [0u8; 112];
    let n = (len as usize - family).min(path.len() - 1);
    // SAFETY: `n` bytes after the family are within the caller's `len`.
    unsafe { core::ptr::copy_nonoverlapping(addr.cast::<u8>().add(family), path.as_mut_ptr(), n) };
    // An abstract name (a leading NUL) has no file.
    if path[0] != 0 {
        // SAFETY: `path` holds a NUL within it (its last byte at least).
        unsafe { record_made(libc::AT_FDCWD, path.as_ptr().cast(), false) };
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

/// Messages a checkpoint takes to save them (a socket pair's queue put
/// back fresh, a message queue's) and could not put back: `lost` of
/// `total`, of descriptor `fd`. Said on the program's stderr, in one
/// line, while it is frozen.
pub(crate) fn say_not_put_back(lost: usize, total: usize, fd: i32) {
    if lost == 0 {
        return;
    }
    let line = format!(
        "ckpt: {lost} of the {total} messages queued on descriptor {fd} could not be put back \
         while checkpointing: the running program will not read them (a restart from this \
         image will)\n"
    );
    // SAFETY: write(2) from a live buffer.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

/// `fd` is about to be closed. Cleared *before* the close, so a thread that
/// gets the same number next records after us.
pub fn record_close(fd: i32) {
    dnotify::forget(fd);
    if let Some(s) = slot(fd) {
        let origin = s.origin.load(Relaxed);
        if origin != Origin::None as u8 {
            // No origin means no history: the other fields need no write.
            let seq = s.seq.load(Relaxed) | 1;
            s.seq.store(seq, Relaxed);
            core::sync::atomic::fence(Release);
            s.origin.store(Origin::None as u8, Relaxed);
            s.seq.store(seq.wrapping_add(1), Release);
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
    for fd in sys::open_fds() {
        if !is_own(fd) {
            write(fd, Origin::Inherited, &[], 0, -1, -1);
        }
    }
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
        dup_of: s.dup_of.load(Relaxed).wrapping_sub(1),
        pipe_peer: s.pipe_peer.load(Relaxed).wrapping_sub(1),
        path: load_path(&s.path, len),
    };
    (s.seq.load(Acquire) == before && h.origin != 0).then_some(h)
}

/// ckpt's own descriptors in this process (control socket, image being
/// written, ...): hidden from snapshots and protected from the program's
/// close/dup2.
static OWN: [AtomicI32; 16] = [const { AtomicI32::new(-1) }; 16];
/// For each `OWN` entry, where its owner keeps the number (null: nowhere
/// that outlives the call), so the descriptor can move out of the way.
static OWNER: [AtomicPtr<AtomicI32>; 16] = [const { AtomicPtr::new(core::ptr::null_mut()) }; 16];
/// Lowest descriptor ckpt owns (they sit near the limit), so the common
/// check on the hot path is one comparison; kept with the wrappers' other
/// hot words.
use crate::interpose::HOT;

/// Set while this process gathers its part of a tree checkpoint: pipes
/// and socket pairs whose other end lives in another process of the tree
/// have their unread bytes saved too (that process is frozen as well, and
/// restart makes the object once for both).
static IN_TREE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

pub fn set_in_tree(on: bool) {
    IN_TREE.store(on, Release);
}

pub(crate) fn in_tree() -> bool {
    IN_TREE.load(Acquire)
}

/// Mark (or unmark) `fd` as one of ckpt's own.
pub fn set_own(fd: i32, own: bool) {
    if own {
        if is_own(fd) {
            return;
        }
        HOT.own_min.fetch_min(fd, AcqRel);
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

/// Some descriptor was given an owner through ckpt's wrappers (F_SETOWN,
/// F_SETOWN_EX, FIOSETOWN, SIOCSPGRP). From then on the snapshot asks
/// every socket who owns it, not only files with O_ASYNC: a socket's
/// owner gets SIGURG without it, and the kernel shows the owner nowhere
/// but in F_GETOWN_EX. Sticky (one load per checkpoint); a fork child
/// shares its parent's open files, owners included.
static OWNER_SET: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// A descriptor was given an owner (see [`OWNER_SET`]). Signal-safe.
pub fn record_owner_set() {
    OWNER_SET.store(true, Relaxed);
}

/// Whether any descriptor was ever given an owner through the wrappers.
pub(crate) fn owner_set() -> bool {
    OWNER_SET.load(Relaxed)
}

/// Whether `fd` may be one of ckpt's own descriptors (one compare: they
/// all sit at or above the lowest one). For filters on hot paths.
#[inline(always)]
pub fn maybe_own(fd: i32) -> bool {
    fd >= HOT.own_min.load(Relaxed)
}

/// Whether `fd` is one of ckpt's own descriptors. Inlined into hot
/// wrappers: the common answer (below every own descriptor) is one compare.
#[inline]
pub fn is_own(fd: i32) -> bool {
    fd >= HOT.own_min.load(Relaxed) && is_own_listed(fd)
}

#[inline(never)]
fn is_own_listed(fd: i32) -> bool {
    OWN.iter().any(|s| s.load(Relaxed) == fd)
}

/// Namespace kinds as /proc/PID/ns names them (and their links: "net:[ino]").
const NAMESPACES: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

/// The namespace kind a descriptor's link names ("net" for "net:[4026531833]").
pub(crate) fn namespace_kind(link: &str) -> Option<&'static str> {
    let (kind, rest) = link.split_once(":[")?;
    let ino = rest.strip_suffix(']')?;
    if ino.is_empty() || !ino.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NAMESPACES.iter().copied().find(|&k| k == kind)
}

mod anon;
pub mod closed;
pub mod dnotify;
mod inotify;
pub mod joblog;
mod locks;
pub(crate) mod mqueue;
pub(crate) mod multicast;
pub use multicast::{
    record_interface as record_multicast_interface, INTERFACES as MULTICAST_INTERFACES_KEPT,
};
pub mod across_exec;
pub mod packet;
pub use packet::record as record_packet_option;
pub(crate) mod restore;
mod snapshot;
pub(crate) mod sockets;
pub mod tty;
pub mod written;
pub use inotify::{record_unwatch, record_watch};
pub use restore::{
    note_shared_streams, restore, seal_again, shared_stream, stdio_rule, Passthrough,
};
pub use snapshot::snapshot;
pub use sockets::check_address;
pub use sockets::endpoint;
pub use sockets::set_options as set_socket_options;

/// Whether `f` is a memfd_secret ("/secretmem (deleted)" in /proc): the
/// kernel keeps its memory from every process, ckpt's reads included.
pub fn is_secretmem(f: &crate::image::Fd) -> bool {
    f.kind == crate::image::FdKind::File && f.deleted && f.path == "/secretmem"
}

/// Whether no path leads to `f`'s file (a memfd, a deleted file, a
/// memfd_secret): its contents are kept in the image.
pub fn is_unnamed(f: &crate::image::Fd) -> bool {
    f.kind == crate::image::FdKind::MemFd || (f.kind == crate::image::FdKind::File && f.deleted)
}

/// How many bytes of unnamed file `f` (memfd, deleted file, memfd_secret)
/// the image lacks: a restart has zeros there. `None` when its contents
/// are not kept at all (or it is not unnamed, or a duplicate).
pub fn unnamed_shortfall(f: &crate::image::Fd) -> Option<i64> {
    let kept = f
        .contents
        .as_ref()
        .filter(|_| is_unnamed(f) && f.shares_with.is_none())?;
    Some(f.size - kept.len() as i64).filter(|&n| n > 0)
}

/// Whether descriptor `f` of the image `fds` comes back cut off from a
/// peer it had in another process (a connection, an unlinked FIFO): it
/// then reads end of file and gets EPIPE, as if that peer had closed.
/// Both ends of a pair the program holds itself come back connected.
pub fn loses_its_peer(f: &crate::image::Fd, fds: &[crate::image::Fd]) -> bool {
    sockets::hangs_up(f, fds) || restore::unlinked_fifo_to_outside(f, fds)
}

#[cfg(test)]
mod tests {
    use super::{absolute, namespace_kind};

    /// The job's log names removed and renamed files as the image's
    /// descriptors do (a restart compares them): `sort -T .` removes
    /// `./sortXXXX`, which was called a file the image lacks.
    #[test]
    fn logged_paths_name_the_directory_as_the_kernel_resolves_it() {
        let base = std::env::temp_dir().join(format!("ckpt-absolute-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("real/sub")).unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).unwrap();
        let canon = std::fs::canonicalize(base.join("real")).unwrap();
        let want = format!("{}/x", canon.display());
        let dir = std::fs::File::open(base.join("real")).unwrap();
        let dirfd = std::os::fd::AsRawFd::as_raw_fd(&dir);
        let mut out = [0u8; 4096];
        let mut got = |fd: i32, p: &str| {
            let n = absolute(fd, p.as_bytes(), &mut out).unwrap();
            String::from_utf8(out[..n].to_vec()).unwrap()
        };
        let b = base.display();
        for p in [
            format!("{b}/real/x"),
            format!("{b}/real/./x"),
            format!("{b}/real/sub/../x"),
            format!("{b}/link/x"),
            format!("{b}//real//x"),
        ] {
            assert_eq!(got(libc::AT_FDCWD, &p), want, "{p}");
        }
        for p in ["x", "./x", "sub/../x", "sub/..//x"] {
            assert_eq!(got(dirfd, p), want, "{p} under the directory");
        }
        assert_eq!(got(dirfd, "sub/"), format!("{}/sub", canon.display()));
        assert!(absolute(dirfd, b"gone/x", &mut out).is_none());
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn namespace_links_are_told_from_other_links() {
        assert_eq!(namespace_kind("net:[4026531833]"), Some("net"));
        assert_eq!(namespace_kind("pid:[4026531836]"), Some("pid"));
        assert_eq!(namespace_kind("pipe:[1234]"), None);
        assert_eq!(namespace_kind("anon_inode:[eventfd]"), None);
        assert_eq!(namespace_kind("widget:[12]"), None);
        assert_eq!(namespace_kind("net:[12x]"), None);
        assert_eq!(namespace_kind("/tmp/net:[1]"), None);
    }
}
