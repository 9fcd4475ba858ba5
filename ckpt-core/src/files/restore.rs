//! Restore: put every descriptor back at its number.
//!
//! The rule for what comes back how (also in `ckpt restart --help`):
//! - a regular file or directory is reopened by path (never with O_CREAT,
//!   O_TRUNC or O_EXCL) with its status flags, at its offset;
//! - descriptors that shared one open file (dup, fork) share one again;
//! - an in-process pipe is re-created (every open file of it, its ends
//!   found by inode) with its unread bytes; an end whose other ends were
//!   all closed comes back so (its bytes then end of file; EPIPE);
//! - an eventfd is re-created with its counter, an epoll instance with
//!   what it watched, a timerfd with its setting and unread expirations,
//!   a signalfd with its mask, an inotify instance with its watches (at
//!   their wds; unread events are lost);
//! - descriptors 0, 1 and 2 that were a terminal, a pipe to another
//!   process, a socket or a device are connected to the `ckpt restart`
//!   command's own; a terminal is then set as the program had it (`tty`);
//!   so is a file the program wrote at 0, 1 or 2 that is the command's own
//!   descriptor of that number too, open for writing without O_APPEND
//!   (see `shared_stream`);
//! - a named FIFO above 2 is reopened by path (each open file of it, never
//!   blocking) with the bytes it held; one whose path was unlinked (or is
//!   gone) comes back as an anonymous pipe with its bytes;
//! - a device or terminal above 2 is reopened by path;
//! - file locks (fcntl, OFD, flock) the process held are taken again
//!   (never waiting: one another process took meanwhile is a warning);
//! - a memfd or a deleted file is made again (a memfd, an unlinked file)
//!   with the contents it had, at its offset;
//! - a listening socket (or a bound datagram socket) listens again at its
//!   address; a socket never bound nor connected is made again; a connection to another process comes back closed by its
//!   peer (end-of-file, EPIPE), with a warning;
//! - a POSIX message queue is made again by name with its messages (see
//!   `mqueue`);
//! - a namespace descriptor (/proc/self/ns/*) names the restarted
//!   process's own namespace of that kind (a warning when that is not the
//!   one it named: a restart in a new pid namespace, say);
//! - a pidfd names the same process again (itself, or another of the
//!   job in the restart's pid namespace);
//! - anything else (a pipe to another process, a fanotify, an io_uring) cannot
//!   come back: /dev/null takes its number, with a warning.
//!
//! Post-restart context: raw syscalls, scratch allocation, no panics.

use crate::image::{Fd, FdKind};
use crate::restart_report::warn;
use crate::sys;
use crate::tree::Handoff;
use std::ffi::CString;

/// How a descriptor of the image comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passthrough {
    /// Reopened, re-created or shared as recorded.
    Rebuilt,
    /// Connected to the restart command's own descriptor of that number.
    Inherit,
    /// Cannot come back; /dev/null in its place.
    Placeholder,
}

/// The restart command's own descriptors 0, 1 and 2 that are regular
/// files open for writing without O_APPEND: (device, inode) each, zeros
/// for the others. Noted by `note_shared_streams`.
static SHARED_STREAMS: [core::sync::atomic::AtomicU64; 6] =
    [const { core::sync::atomic::AtomicU64::new(0) }; 6];

/// Note which of this process's descriptors 0, 1 and 2 are regular files
/// open for writing without O_APPEND: called by `ckpt restart` as it
/// starts, and by the restarted process before its descriptors are put
/// back (it still holds the command's then). Raw system calls only.
pub fn note_shared_streams() {
    use core::sync::atomic::Ordering::Relaxed;
    for fd in 0..3 {
        // SAFETY: F_GETFL on a descriptor number; an unused one fails.
        let fl = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) } as i32;
        let st = sys::fstat(fd);
        let (dev, ino) = match st {
            Some(st)
                if fl >= 0
                    && fl & libc::O_ACCMODE != libc::O_RDONLY
                    && fl & libc::O_APPEND == 0
                    && st.st_mode & libc::S_IFMT == libc::S_IFREG =>
            {
                (st.st_dev, st.st_ino)
            }
            _ => (0, 0),
        };
        SHARED_STREAMS[2 * fd as usize].store(dev, Relaxed);
        SHARED_STREAMS[2 * fd as usize + 1].store(ino, Relaxed);
    }
}

/// Whether `f`, a file the program had open for writing at 0, 1 or 2, is
/// the restart command's own descriptor of that number, a file open for
/// writing without O_APPEND: the stream its caller writes too (a script's
/// `> log` that every command of it inherits, the program's output among
/// the others'). The program writes on through the command's descriptor,
/// at the caller's offset, as it did through the one it shared; reopened
/// at its old offset and the file cut back to its size at the checkpoint,
/// it would write over (or leave a hole of zeros under) what the others
/// wrote since. (One the command appends to, `ckpt restart ... >> out`, is
/// the program's own output continued: reopened and cut back as any.)
pub fn shared_stream(f: &Fd) -> bool {
    use core::sync::atomic::Ordering::Relaxed;
    (0..=2).contains(&f.fd)
        && f.kind == FdKind::File
        && !f.deleted
        && f.flags & libc::O_ACCMODE != libc::O_RDONLY
        && f.ino != 0
        && SHARED_STREAMS[2 * f.fd as usize].load(Relaxed) == f.dev
        && SHARED_STREAMS[2 * f.fd as usize + 1].load(Relaxed) == f.ino
}

/// Which way descriptor `f` comes back.
pub fn stdio_rule(f: &Fd) -> Passthrough {
    // A named FIFO comes back by its path, with its bytes, as at any
    // other number (`writer > fifo &` in a job: the restart command's own
    // stdout took the writer's output, the reader got end of file); one
    // whose path is gone is the restart command's own.
    // A socket at 0, 1 or 2 is the command's own (a connection from
    // outside: inetd's, a supervisor's), but one end of a pair the program
    // held both ends of, or whose other end it closed, comes back with its
    // bytes (a child's stdin made by `socketpair`, as libuv and node do:
    // the command's own stdin would be read instead).
    let inside = (f.pipe_peer.is_some() || f.peer_closed) && f.socket_type.is_some();
    let outside = matches!(f.kind, FdKind::Tty | FdKind::CharDevice)
        || (f.kind == FdKind::Socket && !inside)
        || (f.kind == FdKind::Fifo && f.deleted)
        || (f.kind == FdKind::Pipe && f.pipe_peer.is_none() && !f.peer_closed);
    if f.fd <= 2 && (outside || shared_stream(f)) {
        return Passthrough::Inherit;
    }
    match f.kind {
        FdKind::File | FdKind::Directory if !f.deleted => Passthrough::Rebuilt,
        FdKind::File | FdKind::MemFd if f.contents.is_some() => Passthrough::Rebuilt,
        FdKind::Tty | FdKind::CharDevice | FdKind::BlockDevice | FdKind::Fifo => {
            Passthrough::Rebuilt
        }
        FdKind::Pipe
            if f.pipe_peer.is_some()
                || f.peer_closed
                || f.flags & libc::O_ACCMODE == libc::O_RDWR =>
        {
            Passthrough::Rebuilt
        }
        FdKind::Socket if inside => Passthrough::Rebuilt,
        FdKind::Socket if f.socket.is_some() => Passthrough::Rebuilt,
        FdKind::EventFd => Passthrough::Rebuilt,
        FdKind::Epoll if f.epoll.is_some() => Passthrough::Rebuilt,
        FdKind::TimerFd if f.timerfd.is_some() => Passthrough::Rebuilt,
        FdKind::SignalFd if f.signalfd_mask.is_some() => Passthrough::Rebuilt,
        FdKind::Inotify if f.inotify.is_some() => Passthrough::Rebuilt,
        FdKind::Namespace => Passthrough::Rebuilt,
        FdKind::MQueue if f.mqueue.is_some() => Passthrough::Rebuilt,
        FdKind::PidFd if f.pidfd_pid.is_some_and(|p| p > 0) => Passthrough::Rebuilt,
        _ => Passthrough::Placeholder,
    }
}

/// Close what the restorer left open (but `keep_also`), then rebuild
/// every descriptor of `fds` at its number.
/// Descriptors `handoff` names are the objects a tree's restart made
/// once for all the processes sharing them: they take their numbers.
pub fn restore(fds: &[Fd], keep_also: &[i32], handoff: &Handoff) -> Result<(), String> {
    let keep: Vec<i32> = fds
        .iter()
        .filter(|f| stdio_rule(f) == Passthrough::Inherit && handoff.fd_for(f.fd).is_none())
        .map(|f| f.fd)
        .chain(keep_also.iter().copied())
        .collect();
    close_all_but(&keep);
    // A message queue found made already is then another process's.
    super::set_in_tree(handoff.barrier.is_some());
    let base = fds.iter().map(|f| f.fd).max().unwrap_or(2) + 1;
    // Pass 1: open each object at a temporary number above every target.
    let mut temp: Vec<(i32, i32)> = Vec::new(); // (target, temp)
                                                // TCP connections the process holds both ends of first: one end is
                                                // accepted on its address before the program's own listener there
                                                // is made again.
    for f in fds.iter().filter(|f| handoff.fd_for(f.fd).is_none()) {
        if temp.iter().any(|t| t.0 == f.fd) || f.shares_with.is_some_and(|s| s != f.fd) {
            continue;
        }
        // So are unix socket pairs with names (one end accepted on a path).
        if let Some(peer) = super::sockets::named_unix_peer(f, fds) {
            temp.extend(socket_pair(f, Some(peer), base)?);
            continue;
        }
        let Some(peer) = super::sockets::tcp_peer(f, fds) else {
            continue;
        };
        match super::sockets::make_tcp_pair(f, peer) {
            Ok((a, b, said)) => {
                said.iter().for_each(|w| warn(w));
                temp.push((f.fd, move_to_at_least(a, base)?));
                temp.push((peer.fd, move_to_at_least(b, base)?));
            }
            Err(e) => {
                warn(&format!(
                    "descriptors {} and {} (a TCP connection of the program's own) cannot be \
                     connected again ({e}): both come back closed by their peer",
                    f.fd, peer.fd
                ));
                for g in [f, peer] {
                    let s = g
                        .socket
                        .as_ref()
                        .map_or(libc::SOCK_STREAM, |s| s.socket_type);
                    temp.push((
                        g.fd,
                        move_to_at_least(super::sockets::hung_up(g, s)?, base)?,
                    ));
                }
            }
        }
    }
    for f in fds {
        if f.shares_with.is_some_and(|s| s != f.fd) || temp.iter().any(|t| t.0 == f.fd) {
            continue;
        }
        if let Some(h) = handoff.fd_for(f.fd) {
            // SAFETY: F_DUPFD_CLOEXEC of an inherited descriptor we hold.
            let t = unsafe { libc::syscall(libc::SYS_fcntl, h, libc::F_DUPFD_CLOEXEC, base) };
            if t < 0 {
                return Err(format!("cannot place descriptor {}", f.fd));
            }
            temp.push((f.fd, t as i32));
            continue;
        }
        match stdio_rule(f) {
            Passthrough::Inherit => {}
            Passthrough::Rebuilt => match rebuild(f, fds, base)? {
                Some(pair) => temp.extend(pair),
                None => continue,
            },
            Passthrough::Placeholder => {
                warn(&format!(
                    "descriptor {} ({}) cannot be restored; /dev/null takes its place",
                    f.fd, f.path
                ));
                temp.push((
                    f.fd,
                    open_at_least(c"/dev/null", f.flags & libc::O_ACCMODE, base)?,
                ));
            }
        }
    }
    // Pass 2: move each to its number, then the ones sharing a file.
    for &(target, t) in &temp {
        let cloexec = fds
            .iter()
            .find(|f| f.fd == target)
            .is_some_and(|f| f.cloexec);
        dup_to(t, target, cloexec)?;
        sys::close(t);
    }
    for f in fds {
        if let Some(s) = f.shares_with.filter(|&s| s != f.fd) {
            dup_to(s, f.fd, f.cloexec)?;
        }
    }
    // Every descriptor is at its number: epoll instances watch them again.
    for f in fds
        .iter()
        .filter(|f| f.epoll.is_some() && f.shares_with.is_none())
    {
        let shared = handoff
            .fd_for(f.fd)
            .map(|_| handoff.signal_watches.contains(&f.fd));
        super::anon::refill_epoll(f, fds, shared);
    }
    if !super::in_tree() {
        super::mqueue::unlink_hidden(fds, false);
    }
    super::set_in_tree(false);
    super::sockets::keep_again(fds);
    Ok(())
}

/// Take every lock the process held again. Once no other descriptor of
/// the restart's own is left to close: closing any descriptor of a file
/// drops the process's fcntl locks on it (a tree's inherited copies are
/// closed after `restore`). Post-restart context.
pub fn take_locks_again(fds: &[Fd]) {
    for f in fds.iter().filter(|f| !f.locks.is_empty()) {
        for w in super::locks::restore(f) {
            warn(&w);
        }
    }
}

/// A pidfd of the process itself, or, in a restart's pid namespace
/// (where each process of the job has its pid again, every one made
/// before any restores its descriptors), of another process of the job.
fn pidfd_again(f: &Fd) -> Result<i32, String> {
    let pid = match f.pidfd_pid {
        _ if f.pidfd_self => sys::getpid(),
        Some(p) if p > 1 && crate::restart::restart_namespace().is_some() => p,
        _ => {
            return Err(
                "its process is not one of the job's, or the restart has no pid namespace".into(),
            )
        }
    };
    // PIDFD_NONBLOCK is O_NONBLOCK.
    let flags = f.flags & libc::O_NONBLOCK;
    // SAFETY: pidfd_open with plain integers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(fd as i32)
}

/// Once the threads are back (an owner may be one of them): who each
/// open file signals (F_SETSIG, F_SETOWN_EX; the process and its threads
/// by their ids now, `pid` being the process's pid at the checkpoint and
/// `tids` its threads' (id, tid) then), the leases the process held and
/// the directories it watched with F_NOTIFY (before their owner is set:
/// F_NOTIFY makes the caller the owner).
/// What the kernel refuses is said. Post-restart context.
pub fn signal_io_again(fds: &[Fd], pid: i32, tids: &[(u32, i32)]) {
    for f in fds
        .iter()
        .filter(|f| f.shares_with.is_none_or(|s| s == f.fd))
    {
        if let Some(mask) = f.dnotify {
            // SAFETY: F_NOTIFY with an integer on the program's descriptor.
            if unsafe { libc::syscall(libc::SYS_fcntl, f.fd, libc::F_NOTIFY, mask) } == 0 {
                super::dnotify::record(f.fd, mask);
            } else {
                warn(&format!(
                    "descriptor {} ({}): cannot watch the directory again (F_NOTIFY: {})",
                    f.fd,
                    f.path,
                    std::io::Error::last_os_error()
                ));
            }
        }
        if let Some(l) = f.lease {
            // SAFETY: F_SETLEASE with an integer on the program's descriptor.
            if unsafe { libc::syscall(libc::SYS_fcntl, f.fd, libc::F_SETLEASE, l) } != 0 {
                warn(&format!(
                    "descriptor {} ({}): cannot take its {} lease again ({})",
                    f.fd,
                    f.path,
                    if l == libc::F_WRLCK { "write" } else { "read" },
                    std::io::Error::last_os_error()
                ));
            }
        }
        let Some(s) = f.signal_io else { continue };
        if f.flags & libc::O_ASYNC != 0 {
            // O_ASYNC was set while the file stood at a temporary number;
            // the kernel names that number in each signal's si_fd until
            // the flag is set again (off, then on) at the program's.
            // SAFETY: F_GETFL/F_SETFL with integers on the program's descriptor.
            unsafe {
                let now = libc::syscall(libc::SYS_fcntl, f.fd, libc::F_GETFL);
                if now >= 0 && now & libc::O_ASYNC as i64 != 0 {
                    libc::syscall(
                        libc::SYS_fcntl,
                        f.fd,
                        libc::F_SETFL,
                        now & !(libc::O_ASYNC as i64),
                    );
                    libc::syscall(libc::SYS_fcntl, f.fd, libc::F_SETFL, now);
                }
            }
        }
        let mut owner = sys::OwnerEx {
            kind: s.owner_type,
            pid: s.owner,
        };
        if s.owner_type == sys::F_OWNER_TID {
            let now = tids
                .iter()
                .find(|t| t.1 == s.owner)
                .and_then(|t| crate::threads::tid_of_id(t.0));
            owner.pid = now.unwrap_or(s.owner);
        } else if s.owner_type == sys::F_OWNER_PID && s.owner == pid {
            owner.pid = sys::getpid();
        }
        // SAFETY: F_SETSIG with an integer, F_SETOWN_EX from a local.
        let ok = unsafe {
            (s.signal == 0 || libc::syscall(libc::SYS_fcntl, f.fd, sys::F_SETSIG, s.signal) == 0)
                && libc::syscall(libc::SYS_fcntl, f.fd, sys::F_SETOWN_EX, &owner) == 0
        };
        if !ok {
            warn(&format!(
                "descriptor {} ({}): cannot signal {} {} on I/O again ({}): it gets no signal",
                f.fd,
                f.path,
                match s.owner_type {
                    sys::F_OWNER_TID => "thread",
                    sys::F_OWNER_PGRP => "process group",
                    _ => "process",
                },
                s.owner,
                std::io::Error::last_os_error()
            ));
        }
    }
}

/// Reopen or re-create one object; returns (target, temporary) pairs.
pub(crate) fn rebuild(f: &Fd, fds: &[Fd], base: i32) -> Result<Option<Vec<(i32, i32)>>, String> {
    match f.kind {
        FdKind::Pipe => rebuild_pipe(f, fds, base).map(Some),
        FdKind::Fifo => rebuild_fifo(f, fds, base).map(Some),
        FdKind::MemFd | FdKind::File if f.contents.is_some() => {
            let fd = move_to_at_least(make_unnamed(f)?, base)?;
            // SAFETY: lseek on the descriptor we just made.
            unsafe { libc::lseek(fd, f.offset, libc::SEEK_SET) };
            set_status(fd, f.flags);
            Ok(Some(vec![(f.fd, fd)]))
        }
        FdKind::Socket
            if pair_peer(f, fds).is_none() && !(f.peer_closed && f.socket_type.is_some()) =>
        {
            let Some(s) = &f.socket else {
                warn(&format!(
                    "descriptor {} ({}) cannot be restored; /dev/null takes its place",
                    f.fd, f.path
                ));
                let fd = open_at_least(c"/dev/null", f.flags & libc::O_ACCMODE, base)?;
                return Ok(Some(vec![(f.fd, fd)]));
            };
            let fd = if super::sockets::rebuildable(s) {
                super::sockets::rebuild(f, s)?
            } else if super::sockets::fresh(s) {
                super::sockets::make_fresh(f, s)?
            } else {
                super::sockets::hung_up(f, s.socket_type)?
            };
            let fd = move_to_at_least(fd, base)?;
            set_status(fd, f.flags);
            Ok(Some(vec![(f.fd, fd)]))
        }
        FdKind::Socket => socket_pair(f, pair_peer(f, fds), base).map(Some),
        FdKind::Epoll | FdKind::TimerFd | FdKind::SignalFd => {
            let fd = move_to_at_least(super::anon::recreate(f)?, base)?;
            Ok(Some(vec![(f.fd, fd)]))
        }
        FdKind::Inotify => {
            let (fd, warnings) = super::inotify::restore(f)?;
            for w in warnings {
                warn(&w);
            }
            Ok(Some(vec![(f.fd, move_to_at_least(fd, base)?)]))
        }
        FdKind::Namespace => {
            let fd = match namespace_again(f) {
                Ok(fd) => fd,
                Err(e) => {
                    warn(&format!(
                        "descriptor {} ({}) cannot be restored: {e}; /dev/null takes its place",
                        f.fd, f.path
                    ));
                    open_at_least(c"/dev/null", libc::O_RDONLY, base)?
                }
            };
            Ok(Some(vec![(f.fd, move_to_at_least(fd, base)?)]))
        }
        FdKind::PidFd => {
            let fd = match pidfd_again(f) {
                Ok(fd) => fd,
                Err(e) => {
                    warn(&format!(
                        "descriptor {} (a pidfd of process {}) cannot be restored: {e}; /dev/null \
                         takes its place",
                        f.fd,
                        f.pidfd_pid.unwrap_or(0)
                    ));
                    open_at_least(c"/dev/null", libc::O_RDONLY, base)?
                }
            };
            Ok(Some(vec![(f.fd, move_to_at_least(fd, base)?)]))
        }
        FdKind::MQueue => {
            let q = f
                .mqueue
                .as_ref()
                .ok_or_else(|| format!("descriptor {}: no queue state", f.fd))?;
            let fd = move_to_at_least(super::mqueue::restore(f, q)?, base)?;
            Ok(Some(vec![(f.fd, fd)]))
        }
        FdKind::EventFd => {
            let count = f.eventfd_count.unwrap_or(0);
            // SAFETY: eventfd2 with plain integers.
            let flags = if f.eventfd_semaphore {
                libc::EFD_SEMAPHORE
            } else {
                0
            };
            let e = unsafe { libc::syscall(libc::SYS_eventfd2, count.min(u32::MAX as u64), flags) };
            if e < 0 {
                return Err(format!("cannot re-create eventfd {}", f.fd));
            }
            let e = move_to_at_least(e as i32, base)?;
            set_status(e, f.flags);
            Ok(Some(vec![(f.fd, e)]))
        }
        // A pseudo-terminal whose master the process holds: the pair made
        // again (from whichever end comes first).
        FdKind::Tty => match super::tty::master_in(f, fds) {
            Some(m) => super::tty::rebuild_pair(m, fds, base).map(Some),
            None => reopen(f, base).map(Some),
        },
        _ => reopen(f, base).map(Some),
    }
}

/// Open `f`'s path again, at its offset.
fn reopen(f: &Fd, base: i32) -> Result<Vec<(i32, i32)>, String> {
    let path = crate::names::c(&f.path).ok_or_else(|| format!("descriptor {}: bad path", f.fd))?;
    let mut flags = f.flags & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL);
    if f.kind == FdKind::Tty {
        // Never the restarted process's controlling terminal by chance.
        flags |= libc::O_NOCTTY;
    }
    let t = open_at_least(&path, flags, base).map_err(|e| {
        format!(
            "cannot reopen {} as descriptor {}: {e}",
            crate::names::shown(&f.path),
            f.fd
        )
    })?;
    match f.kind {
        FdKind::File => {
            // SAFETY: lseek on a descriptor we just opened.
            unsafe { libc::lseek(t, f.offset, libc::SEEK_SET) };
        }
        // A directory read part way (getdents) goes on from where it
        // was: its position is the file system's cookie (a hash on
        // ext4), which it takes back; else the program would read the
        // entries it had read again.
        // SAFETY: lseek on a descriptor we just opened.
        FdKind::Directory
            if f.offset != 0 && unsafe { libc::lseek(t, f.offset, libc::SEEK_SET) } != f.offset =>
        {
            warn(&format!(
                "directory {} (descriptor {}) cannot go back to where its reading was ({}): read from its start again",
                crate::names::shown(&f.path),
                f.fd,
                std::io::Error::last_os_error()
            ));
        }
        _ => {}
    }
    Ok(vec![(f.fd, t)])
}

/// A connected unix socket pair, or an end whose peer was closed (alone,
/// then): made again (with the names it had, see
/// [`super::sockets::unix_pair`]), options, unread data, status and
/// shutdowns as each end had them. Returns (target, temporary) numbers.
fn socket_pair(f: &Fd, peer: Option<&Fd>, base: i32) -> Result<Vec<(i32, i32)>, String> {
    let typ = f.socket_type.unwrap_or(libc::SOCK_STREAM);
    let (p, said) = super::sockets::unix_pair(Some(f), peer, typ)
        .map_err(|e| format!("descriptor {}: {e}", f.fd))?;
    said.iter().for_each(|w| warn(w));
    let (a, b) = (move_to_at_least(p[0], base)?, move_to_at_least(p[1], base)?);
    // Buffer sizes first: they must hold what was unread.
    if let Some(s) = &f.socket {
        super::sockets::set_options(a, f, s);
    }
    if let Some((p, s)) = peer.and_then(|p| Some((p, p.socket.as_ref()?))) {
        super::sockets::set_options(b, p, s);
    }
    // What was unread at one end is written into the other.
    refill_socket(b, f)?;
    set_status(a, f.flags);
    let Some(peer) = peer else {
        sys::close(b);
        shut_again(a, f);
        return Ok(vec![(f.fd, a)]);
    };
    refill_socket(a, peer)?;
    set_status(b, peer.flags);
    shut_again(a, f);
    shut_again(b, peer);
    Ok(vec![(f.fd, a), (peer.fd, b)])
}

/// The other end of socket pair `f`, when the image holds it.
pub(super) fn pair_peer<'a>(f: &Fd, fds: &'a [Fd]) -> Option<&'a Fd> {
    f.socket_type?;
    f.pipe_peer.and_then(|p| fds.iter().find(|g| g.fd == p))
}

/// A namespace descriptor: the restarted process's own namespace of the
/// same kind (pid_for_children and time_for_children too, when that is
/// what the program opened), with a warning when it is not the one the
/// descriptor named at the checkpoint (a restart in new pid, mount, time
/// or user namespaces, or another machine).
fn namespace_again(f: &Fd) -> Result<i32, String> {
    let kind = super::namespace_kind(&f.path).ok_or("not a namespace")?;
    // The name under ns/: "pid_for_children" also links as "pid:[...]".
    let name = f
        .opened_as
        .as_deref()
        .and_then(|p| p.rsplit_once("/ns/"))
        .map(|(_, n)| n)
        .filter(|n| n.starts_with(kind) && n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .unwrap_or(kind);
    let path = format!("/proc/self/ns/{name}");
    let c = CString::new(path.as_bytes()).map_err(|_| "bad name")?;
    let fd = open_at_least(&c, libc::O_RDONLY, 0).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: fstat into a zeroed stat of our own.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat on the descriptor we just opened, into a live stat.
    let ino = if unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st) } == 0 {
        st.st_ino
    } else {
        0
    };
    if ino != f.ino {
        warn(&format!(
            "descriptor {} ({}) now refers to the restarted process's own {kind} namespace ({kind}:[{ino}]), not the one it named",
            f.fd, f.path
        ));
    }
    Ok(fd)
}

/// A memfd (same name), a memfd_secret, or an unlinked file (in the
/// deleted file's directory when it still exists, else /tmp) holding
/// `f`'s contents; as long as it was (zeros past what the image holds,
/// said at checkpoint).
fn make_unnamed(f: &Fd) -> Result<i32, String> {
    let fd = if super::is_secretmem(f) {
        // SAFETY: memfd_secret with flags only: a new descriptor or -1.
        unsafe { libc::syscall(libc::SYS_memfd_secret, libc::O_CLOEXEC) as i32 }
    } else if f.kind == FdKind::MemFd {
        let name = f.path.trim_start_matches("/memfd:");
        let name = crate::names::c(name).unwrap_or_default();
        // Sealing allowed as it was (F_SEAL_SEAL alone: it was not).
        let sealable = f.seals.is_some_and(|s| s != libc::F_SEAL_SEAL);
        let flags = libc::MFD_CLOEXEC | if sealable { libc::MFD_ALLOW_SEALING } else { 0 };
        // SAFETY: memfd_create with a valid name.
        unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) as i32 }
    } else {
        let path = crate::names::path(&f.path);
        let dir = path
            .parent()
            .filter(|d| d.is_dir())
            .unwrap_or(std::path::Path::new("/tmp"));
        let dir = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap_or_default();
        // Linkable (linkat through /proc/self/fd gives it a name) only as
        // it was: an O_TMPFILE opened without O_EXCL. A file unlinked
        // after it was made, or an O_TMPFILE|O_EXCL, never gets a name.
        let linkable = f.flags & (libc::O_TMPFILE & !libc::O_DIRECTORY) != 0
            && f.open_flags.is_none_or(|o| o & libc::O_EXCL == 0);
        let excl = if linkable { 0 } else { libc::O_EXCL };
        // SAFETY: openat with O_TMPFILE in a directory: an unnamed file.
        unsafe {
            libc::syscall(
                libc::SYS_openat,
                libc::AT_FDCWD,
                dir.as_ptr(),
                libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC | excl,
                f.mode & 0o7777,
            ) as i32
        }
    };
    if fd < 0 {
        return Err(format!(
            "cannot make descriptor {} ({}) again: {}",
            f.fd,
            f.path,
            std::io::Error::from_raw_os_error(crate::interpose::errno())
        ));
    }
    let contents = f.contents.as_deref().unwrap_or(&[]);
    write_all(fd, contents, f.fd)?;
    if (contents.len() as i64) < f.size {
        // SAFETY: ftruncate of the descriptor we just made.
        unsafe { libc::ftruncate(fd, f.size) };
    }
    // Mode (memfd_create gives 0777, O_TMPFILE the umask's) and owner.
    // SAFETY: fchmod/fchown of the descriptor we just made.
    unsafe { libc::fchmod(fd, f.mode & 0o7777) };
    if let Some((uid, gid)) = f.owner {
        // SAFETY: as above.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        // SAFETY: fstat into a local.
        unsafe { libc::fstat(fd, &mut st) };
        // SAFETY: fchown of the descriptor we just made.
        if (st.st_uid, st.st_gid) != (uid, gid) && unsafe { libc::fchown(fd, uid, gid) } != 0 {
            warn(&format!(
                "descriptor {} ({}) comes back owned by {}:{} instead of {uid}:{gid} (not privileged to give it back)",
                f.fd, f.path, st.st_uid, st.st_gid
            ));
        }
        // A change of owner clears set-id bits: put the mode back once more.
        // SAFETY: fchmod of the descriptor we just made.
        unsafe { libc::fchmod(fd, f.mode & 0o7777) };
    }
    Ok(fd)
}

/// Seal memfds again as they were. After every mapping of them is back
/// (a write seal would refuse a writable shared mapping). Post-restart
/// context.
pub fn seal_again(fds: &[Fd]) {
    for f in fds.iter().filter(|f| f.kind == FdKind::MemFd) {
        let Some(seals) = f.seals.filter(|&s| s != 0 && s != libc::F_SEAL_SEAL) else {
            continue;
        };
        // SAFETY: F_ADD_SEALS on the restored descriptor (raw: fcntl is interposed).
        if unsafe { libc::syscall(libc::SYS_fcntl, f.fd, libc::F_ADD_SEALS, seals) } != 0 {
            warn(&format!(
                "descriptor {} ({}): its seals {seals:#x} cannot be put back: {}",
                f.fd,
                f.path,
                std::io::Error::from_raw_os_error(crate::interpose::errno())
            ));
        }
    }
}

/// Make a pipe again, with every open file of it the image holds (all
/// descriptors of its inode that come back; the ones sharing an open file
/// follow later by dup), its capacity and its bytes. An end whose other
/// ends were all closed comes back so: a read end gives its bytes then end
/// of file, a write end EPIPE. Returns (target, temporary) pairs.
fn rebuild_pipe(f: &Fd, fds: &[Fd], base: i32) -> Result<Vec<(i32, i32)>, String> {
    let members = pipe_members(f, fds);
    // Non-blocking while it is filled (a pipe that cannot be made as
    // large as it was fails the restart instead of hanging it); every end
    // kept gets its own flags after.
    let p = sys::pipe(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .map_err(|_| format!("cannot re-create the pipe of descriptor {}", f.fd))?;
    let (rd, wr) = (move_to_at_least(p[0], base)?, move_to_at_least(p[1], base)?);
    if let Some(size) = members.iter().find_map(|g| g.pipe_size) {
        // SAFETY: F_SETPIPE_SZ on our own new pipe.
        unsafe { libc::syscall(libc::SYS_fcntl, rd, libc::F_SETPIPE_SZ, size) };
    }
    if let Some(g) = members.iter().find(|g| g.pipe_data.is_some()) {
        refill_pipe(wr, g)?;
    }
    let mut out = Vec::new();
    let (mut rd_used, mut wr_used) = (false, false);
    for g in &members {
        let (end, used) = match g.flags & libc::O_ACCMODE {
            libc::O_RDONLY => (rd, &mut rd_used),
            libc::O_WRONLY => (wr, &mut wr_used),
            // Read-write (a FIFO's): an open file of its own.
            _ => (rd, &mut true),
        };
        let fd = if *used {
            another_open_file(end, g, base)?
        } else {
            *used = true;
            end
        };
        set_status(fd, g.flags);
        out.push((g.fd, fd));
    }
    // An end nobody holds any more is closed, as it was.
    for (end, used) in [(rd, rd_used), (wr, wr_used)] {
        if !used {
            sys::close(end);
        }
    }
    Ok(out)
}

/// The open files of the pipe or FIFO `f` belongs to that come back
/// (one descriptor each; the ones sharing them follow by dup).
fn pipe_members<'a>(f: &Fd, fds: &'a [Fd]) -> Vec<&'a Fd> {
    fds.iter()
        .filter(|g| {
            g.kind == f.kind
                && g.ino == f.ino
                && g.dev == f.dev
                && g.shares_with.is_none_or(|s| s == g.fd)
                && stdio_rule(g) == Passthrough::Rebuilt
        })
        .collect()
}

/// Whether `f` is an unlinked FIFO whose other ends were in another
/// process: it comes back as a pipe without them (end of file, EPIPE).
pub(super) fn unlinked_fifo_to_outside(f: &Fd, fds: &[Fd]) -> bool {
    f.kind == FdKind::Fifo
        && f.deleted
        && stdio_rule(f) == Passthrough::Rebuilt
        && pipe_members(f, fds).iter().all(|g| {
            g.pipe_peer.is_none() && !g.peer_closed && g.flags & libc::O_ACCMODE != libc::O_RDWR
        })
}

/// A named FIFO: every open file of it the image holds is opened again by
/// its path (never blocking: a read-write open file of ckpt's own holds
/// both sides meanwhile), and the bytes it held are put back. One whose
/// path was unlinked (or is gone now) comes back as an anonymous pipe
/// with its bytes, its ends connected as they were.
fn rebuild_fifo(f: &Fd, fds: &[Fd], base: i32) -> Result<Vec<(i32, i32)>, String> {
    if f.deleted {
        if unlinked_fifo_to_outside(f, fds) {
            warn(&format!(
                "descriptor {} ({}, an unlinked FIFO) led to another process: it comes back as a pipe without it",
                f.fd, f.path
            ));
        }
        return rebuild_pipe(f, fds, base);
    }
    let members = pipe_members(f, fds);
    let path = crate::names::c(&f.path).ok_or_else(|| format!("descriptor {}: bad path", f.fd))?;
    let holder = match open_at_least(&path, libc::O_RDWR | libc::O_NONBLOCK, base) {
        Ok(h) if is_fifo(h) => h,
        other => {
            let why = match other {
                Ok(h) => {
                    sys::close(h);
                    "it is not a FIFO any more".to_string()
                }
                Err(e) => e,
            };
            warn(&format!(
                "descriptor {} ({}): the FIFO cannot be opened again ({why}); it comes back as an anonymous pipe with its bytes",
                f.fd, f.path
            ));
            return rebuild_pipe(f, fds, base);
        }
    };
    let mut out = Vec::new();
    for g in &members {
        let fd = match open_at_least(&path, g.flags & libc::O_ACCMODE | libc::O_NONBLOCK, base) {
            Ok(fd) => fd,
            Err(e) => {
                sys::close(holder);
                for (_, t) in out {
                    sys::close(t);
                }
                warn(&format!(
                    "descriptor {} ({}): the FIFO cannot be opened again ({e}); it comes back as an anonymous pipe with its bytes",
                    g.fd, g.path
                ));
                return rebuild_pipe(f, fds, base);
            }
        };
        set_status(fd, g.flags);
        out.push((g.fd, fd));
    }
    if let Some(size) = members.iter().find_map(|g| g.pipe_size) {
        // SAFETY: F_SETPIPE_SZ on the FIFO we hold.
        unsafe { libc::syscall(libc::SYS_fcntl, holder, libc::F_SETPIPE_SZ, size) };
    }
    if let Some(g) = members.iter().find(|g| g.pipe_data.is_some()) {
        let mut avail: i32 = 0;
        // SAFETY: FIONREAD writes an int.
        unsafe { libc::ioctl(holder, libc::FIONREAD, &mut avail) };
        if avail > 0 {
            // Another process kept it open: what it holds is not ours to add to.
            warn(&format!(
                "FIFO {} (descriptor {}) already holds {avail} bytes (another process keeps it open): the bytes it held at the checkpoint are not put back",
                g.path, g.fd
            ));
        } else {
            refill_pipe(holder, g)?;
        }
    }
    sys::close(holder);
    // An end whose partner was another process's: is anyone there now?
    for (g, &(_, fd)) in members.iter().zip(&out) {
        let acc = g.flags & libc::O_ACCMODE;
        if acc != libc::O_RDWR
            && g.pipe_peer.is_none()
            && !g.peer_closed
            && super::snapshot::other_ends_closed(fd, acc == libc::O_RDONLY)
        {
            warn(&format!(
                "FIFO {} (descriptor {}): the other process that had it open is not there now ({})",
                g.path,
                g.fd,
                if acc == libc::O_RDONLY {
                    "end of file once its bytes are read"
                } else {
                    "writes get EPIPE"
                }
            ));
        }
    }
    Ok(out)
}

fn is_fifo(fd: i32) -> bool {
    // SAFETY: fstat into a zeroed stat of our own.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat on a descriptor we own, into a live stat.
    unsafe {
        libc::syscall(libc::SYS_fstat, fd, &mut st) == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFIFO
    }
}

/// A second open file of the pipe `end` belongs to (own status flags),
/// for descriptor `g`: opened again through /proc/self/fd.
pub(crate) fn another_open_file(end: i32, g: &Fd, base: i32) -> Result<i32, String> {
    let path = CString::new(format!("/proc/self/fd/{end}")).unwrap_or_default();
    let acc = g.flags & libc::O_ACCMODE;
    open_at_least(&path, acc | libc::O_NONBLOCK, base).or_else(|e| {
        warn(&format!(
            "descriptor {} ({}) cannot be a pipe's open file of its own ({e}): it shares its status flags with another",
            g.fd, g.path
        ));
        move_to_at_least(dup_cloexec(end)?, base)
    })
}

fn dup_cloexec(fd: i32) -> Result<i32, String> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor we own.
    let n = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, 0) } as i32;
    if n < 0 {
        return Err("no free descriptor".into());
    }
    Ok(n)
}

/// Put what socket-pair end `f` had unread back, sent through `fd` (the
/// other end of its new pair): a stream's bytes, or each message again.
pub(crate) fn refill_socket(fd: i32, f: &Fd) -> Result<(), String> {
    if f.queued_with_descriptors > 0 {
        warn(&format!(
            "descriptor {}: {} unread message(s) carried descriptors (SCM_RIGHTS): their data comes back, the descriptors do not",
            f.fd, f.queued_with_descriptors
        ));
    }
    let Some(msgs) = &f.messages else {
        let data = f.pipe_data.as_deref().unwrap_or(&[]);
        let mut done = 0;
        while done < data.len() {
            // SAFETY: send from a live slice on our own new socket; never
            // waits (socket buffers smaller than the program had set
            // cannot take everything back).
            let n = unsafe {
                libc::send(
                    fd,
                    data[done..].as_ptr().cast(),
                    data.len() - done,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                warn(&format!(
                    "descriptor {}: {} of its {} unread bytes cannot be queued again ({}); they are lost",
                    f.fd,
                    data.len() - done,
                    data.len(),
                    std::io::Error::from_raw_os_error(crate::interpose::errno())
                ));
                break;
            }
            done += n as usize;
        }
        return Ok(());
    };
    for (i, m) in msgs.iter().enumerate() {
        // SAFETY: send from a live slice on our own new socket; never
        // waits (a queue that held these messages holds them again).
        let n = unsafe { libc::send(fd, m.as_ptr().cast(), m.len(), libc::MSG_DONTWAIT) };
        if n != m.len() as isize {
            warn(&format!(
                "descriptor {}: {} of its {} unread messages cannot be queued again ({}); they are lost",
                f.fd,
                msgs.len() - i,
                msgs.len(),
                std::io::Error::from_raw_os_error(crate::interpose::errno())
            ));
            break;
        }
    }
    Ok(())
}

/// Shut socket `fd` down as the end `f` was at the checkpoint (after its
/// unread data is queued again: a shut-down end takes no more). For a
/// stream or seqpacket pair the kernel mirrors it on the other end, as
/// it did when the program called shutdown(2).
pub(crate) fn shut_again(fd: i32, f: &Fd) {
    let how = match f.shutdown & 3 {
        1 => libc::SHUT_RD,
        2 => libc::SHUT_WR,
        3 => libc::SHUT_RDWR,
        _ => return,
    };
    // SAFETY: shutdown(2) on a socket this restart made.
    if unsafe { libc::shutdown(fd, how) } != 0 {
        warn(&format!(
            "descriptor {}: cannot shut it down again as it was ({}): reads and writes on it \
             may wait where they ended",
            f.fd,
            std::io::Error::last_os_error()
        ));
    }
}

/// Put the bytes descriptor `owner` had unread back, through `fd`.
/// Put a pipe's (or FIFO's) unread bytes back through its write end
/// `wr`: its packets first, each one write with O_DIRECT (one packet
/// each, as the program's packet pipe held them), then its plain bytes.
pub(crate) fn refill_pipe(wr: i32, g: &Fd) -> Result<(), String> {
    let data = g.pipe_data.as_deref().unwrap_or(&[]);
    let mut done = 0;
    if let Some(packets) = &g.pipe_packets {
        // SAFETY: F_GETFL/F_SETFL on the write end we hold (raw: fcntl is
        // interposed).
        let flags = unsafe { libc::syscall(libc::SYS_fcntl, wr, libc::F_GETFL) } as i32;
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_fcntl, wr, libc::F_SETFL, flags | libc::O_DIRECT) };
        for &n in packets {
            let end = (done + n as usize).min(data.len());
            write_all(wr, &data[done..end], g.fd)?;
            done = end;
        }
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_fcntl, wr, libc::F_SETFL, flags) };
    }
    write_all(wr, &data[done..], g.fd)
}

pub(crate) fn write_all(fd: i32, data: &[u8], owner: i32) -> Result<(), String> {
    let mut done = 0;
    while done < data.len() {
        // SAFETY: writing from a live slice into our own new pipe or
        // socket, which has room for everything it held before.
        let n = unsafe { libc::write(fd, data[done..].as_ptr().cast(), data.len() - done) };
        if n <= 0 {
            return Err(format!(
                "cannot put the unread data of descriptor {owner} back"
            ));
        }
        done += n as usize;
    }
    Ok(())
}

fn open_at_least(path: &core::ffi::CStr, flags: i32, base: i32) -> Result<i32, String> {
    // SAFETY: openat with a valid C path; mode unused without O_CREAT.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            0,
        )
    } as i32;
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(crate::interpose::errno()).to_string());
    }
    move_to_at_least(fd, base)
}

pub(crate) fn move_to_at_least(fd: i32, base: i32) -> Result<i32, String> {
    if fd >= base {
        return Ok(fd);
    }
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor we own.
    let n = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_DUPFD_CLOEXEC, base) } as i32;
    sys::close(fd);
    if n < 0 {
        return Err("no free descriptor".into());
    }
    Ok(n)
}

pub(crate) fn set_status(fd: i32, flags: i32) {
    // SAFETY: fcntl(F_SETFL) on a descriptor we own.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_SETFL, flags & !libc::O_ACCMODE) };
}

fn dup_to(from: i32, to: i32, cloexec: bool) -> Result<(), String> {
    if from == to {
        return Ok(());
    }
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: dup3 between descriptors of this process.
    if unsafe { libc::syscall(libc::SYS_dup3, from, to, flags) } < 0 {
        return Err(format!("cannot place descriptor {to}"));
    }
    Ok(())
}

/// Close every descriptor except `keep`.
fn close_all_but(keep: &[i32]) {
    for fd in sys::open_fds() {
        if !keep.contains(&fd) {
            sys::close(fd);
        }
        super::set_own(fd, false);
    }
}
