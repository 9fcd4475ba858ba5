//! Snapshot: the kernel's view of every open descriptor (/proc/self/fd,
//! fdinfo, fstat), checked against and completed by the recorded history,
//! plus what restart needs to make in-process objects again (pipe and
//! socket-pair bytes, the contents of unnamed files, epoll/timerfd/signalfd
//! state, inotify watches). Runs while the program is frozen: raw syscalls and Rust
//! allocation (routed to the scratch arena) only.

use super::{anon, history, History, Origin};
use crate::image::{Fd, FdKind};
use crate::sys;
use std::ffi::CString;

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
    super::multicast::sweep_interfaces();
    super::packet::sweep();
    // Epoll watches whose file moved or left its number.
    for f in out.iter_mut() {
        if let Some(w) = f.epoll.as_mut() {
            anon::locate_epoll_targets(f.fd, w, &fds);
            anon::probe_epoll_edges(f.fd, w);
        }
    }
    link_shared(&mut out);
    pair_pipes(&mut out);
    super::sockets::pair(&mut out);
    // A message queue's messages are saved once, through its lowest
    // descriptor (taken and put back).
    let mut queues: Vec<(u64, u64)> = Vec::new();
    for f in out.iter_mut().filter(|f| f.kind == FdKind::MQueue) {
        let first = !queues.contains(&(f.dev, f.ino));
        queues.push((f.dev, f.ino));
        f.mqueue = Some(super::mqueue::snapshot(f.fd, first));
    }
    // A pipe's (or FIFO's) bytes are saved once, through its lowest read
    // end (with tee: nothing is consumed).
    let mut peeked: Vec<(u64, u64)> = Vec::new();
    for f in out.iter_mut() {
        let pipe = f.kind == FdKind::Pipe
            && (f.pipe_peer.is_some()
                || f.peer_closed
                || super::in_tree()
                || f.flags & libc::O_ACCMODE == libc::O_RDWR);
        if (pipe || f.kind == FdKind::Fifo)
            && f.flags & libc::O_ACCMODE != libc::O_WRONLY
            && f.shares_with.is_none()
            && !peeked.contains(&(f.dev, f.ino))
        {
            peeked.push((f.dev, f.ino));
            if let Some((data, packets)) = peek_pipe(f.fd, f.pipe_size.unwrap_or(65536)) {
                f.pipe_data = Some(data);
                f.pipe_packets = packets;
            }
        }
        if super::is_unnamed(f) && f.shares_with.is_none() {
            // (A memfd_secret cannot be read: kept empty, said.)
            f.contents = if super::is_secretmem(f) {
                Some(Vec::new())
            } else {
                read_contents(f.fd, f.size)
            };
        }
        // (A TCP connection's bytes too: its other end may be the job's.)
        let tcp = f
            .socket
            .as_ref()
            .is_some_and(super::sockets::is_tcp_connection);
        if f.kind == FdKind::Socket
            && (f.pipe_peer.is_some() || f.peer_closed || tcp || (super::in_tree() && is_unix(f)))
            && f.shares_with.is_none()
        {
            f.socket_type = sock_int(f.fd, libc::SO_TYPE);
            let stream = f.socket_type == Some(libc::SOCK_STREAM);
            if let Some(u) = peek_unread(f.fd, stream) {
                if stream {
                    f.pipe_data = (!u.bytes.is_empty()).then_some(u.bytes);
                } else {
                    let mut messages = u.messages;
                    // The kernel hides an empty message from every peek
                    // once one peek saw it: put the queue back fresh, or
                    // the next checkpoint would lose it without a word.
                    if messages.iter().any(|m| m.is_empty()) {
                        let fresh = (u.with_descriptors == 0)
                            .then(|| f.pipe_peer.and_then(|p| requeue(f.fd, p, &messages)))
                            .flatten();
                        f.empty_hidden = fresh.is_none();
                        if let Some(fresh) = fresh {
                            messages = fresh;
                        }
                    }
                    f.messages = (!messages.is_empty()).then_some(messages);
                }
                f.queued_with_descriptors = u.with_descriptors;
            }
        }
    }
    out
}

/// Who descriptor `fd`'s open file signals (F_GETOWN_EX, F_GETSIG), when
/// anybody. Runs frozen (raw fcntl: it is interposed).
fn signal_io(fd: i32) -> Option<crate::image::SignalIo> {
    let mut owner = sys::OwnerEx { kind: 0, pid: 0 };
    // SAFETY: F_GETOWN_EX writes a f_owner_ex local; F_GETSIG takes no argument.
    let (r, signal) = unsafe {
        (
            libc::syscall(libc::SYS_fcntl, fd, sys::F_GETOWN_EX, &mut owner),
            libc::syscall(libc::SYS_fcntl, fd, sys::F_GETSIG) as i32,
        )
    };
    (r == 0 && (owner.pid != 0 || signal > 0)).then_some(crate::image::SignalIo {
        owner_type: owner.kind,
        owner: owner.pid,
        signal: signal.max(0),
    })
}

/// The lease held through this open file, from its fdinfo ("lock:\t1:
/// LEASE  ACTIVE    READ 15532 fe:00:10117519 0 EOF"): F_RDLCK or
/// F_WRLCK; none while it is being broken.
fn lease(info: &[u8]) -> Option<i32> {
    String::from_utf8_lossy(info).lines().find_map(|l| {
        let f: Vec<&str> = l.strip_prefix("lock:")?.split_whitespace().collect();
        match (f.get(1), f.get(2), f.get(3)) {
            (Some(&"LEASE"), Some(&"ACTIVE"), Some(&"READ")) => Some(libc::F_RDLCK),
            (Some(&"LEASE"), Some(&"ACTIVE"), Some(&"WRITE")) => Some(libc::F_WRLCK),
            _ => None,
        }
    })
}

fn describe(dir: i32, fd: i32) -> Option<Fd> {
    let name = CString::new(fd.to_string()).ok()?;
    let mut buf = [0u8; 4096];
    let n = sys::readlinkat(dir, &name, &mut buf)?;
    let mut path = crate::names::from_bytes(&buf[..n]);
    let mut st: libc::stat = unsafe_zeroed();
    // SAFETY: fstat writes into a live stat.
    if unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st) } < 0 {
        return None;
    }
    // A timerfd's setting is exact only once its count is up to date.
    let timer_now = if path == "anon_inode:[timerfd]" {
        anon::timerfd_settle(fd)
    } else {
        None
    };
    // Whole: an inotify's watches or a file's locks make it long.
    let info = std::fs::read(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
    let ib = &info[..];
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
    // A name that ends so itself (its file is there, the same inode) is
    // not a removed file's.
    let named_so = || {
        crate::names::c(&path)
            .and_then(|c| sys::stat_path(&c, false))
            .is_some_and(|n| (n.st_dev, n.st_ino) == (st.st_dev, st.st_ino))
    };
    let deleted = path.ends_with(" (deleted)") && !named_so();
    if deleted {
        path.truncate(path.len() - " (deleted)".len());
    }
    own_proc_as_self(&mut path);
    let mut kind = kind_of(&st, &path);
    let lease = (kind == FdKind::File).then(|| lease(ib)).flatten();
    let dnotify = (kind == FdKind::Directory)
        .then(|| super::dnotify::mask_of(fd, st.st_dev, st.st_ino))
        .flatten();
    let pidfd_pid = (kind == FdKind::PidFd)
        .then(|| {
            sys::field(ib, b"Pid:").and_then(|v| {
                let v = trim(v);
                match v.strip_prefix(b"-") {
                    Some(n) => sys::parse_i64(n).map(|n| -n),
                    None => sys::parse_i64(v),
                }
            })
        })
        .flatten()
        .map(|p| p as i32);
    if kind == FdKind::File && super::mqueue::is_mqueue(fd, &path) {
        kind = FdKind::MQueue;
    }
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
            .map(|h| crate::names::from_bytes(&h.path)),
        open_flags: h.as_ref().filter(|h| h.dup_of < 0).map(|h| h.open_flags),
        dup_of: h.as_ref().and_then(|h| (h.dup_of >= 0).then_some(h.dup_of)),
        shares_with: None,
        pipe_peer: h
            .as_ref()
            .and_then(|h| (h.pipe_peer >= 0).then_some(h.pipe_peer)),
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        owner: Some((st.st_uid, st.st_gid)),
        // SAFETY: F_GET_SEALS on a descriptor of the program (raw: fcntl is interposed).
        seals: (kind == FdKind::MemFd)
            .then(|| unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GET_SEALS) } as i32)
            .filter(|&s| s >= 0),
        size: st.st_size,
        mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
        mnt_id,
        eventfd_count: if kind == FdKind::EventFd {
            eventfd_count
        } else {
            None
        },
        pipe_data: None,
        peer_closed: false,
        peer_ino: None,
        messages: None,
        queued_with_descriptors: 0,
        empty_hidden: false,
        // TCP's from its connection state; a unix socket's is read with
        // its peer (`sockets::pair`).
        shutdown: if kind == FdKind::Socket {
            super::sockets::tcp_shutdown(fd)
        } else {
            0
        },
        contents: None,
        socket_type: None,
        socket: (kind == FdKind::Socket)
            .then(|| super::sockets::snapshot(fd))
            .flatten(),
        epoll: (kind == FdKind::Epoll).then(|| anon::epoll_watches(fd)),
        timerfd: (kind == FdKind::TimerFd)
            .then(|| anon::timerfd_state(ib))
            .flatten()
            .map(|mut t| {
                if let Some(now) = timer_now {
                    now.apply(&mut t);
                }
                t
            }),
        signalfd_mask: (kind == FdKind::SignalFd)
            .then(|| sys::field(ib, b"sigmask:").and_then(sys::parse_hex))
            .flatten(),
        inotify: (kind == FdKind::Inotify).then(|| super::inotify::snapshot(ib)),
        inotify_unread: if kind == FdKind::Inotify {
            let mut n: i32 = 0;
            // SAFETY: FIONREAD writes an int.
            unsafe { libc::syscall(libc::SYS_ioctl, fd, libc::FIONREAD, &mut n) };
            n.max(0) as u32
        } else {
            0
        },
        locks: super::locks::snapshot(ib),
        eventfd_semaphore: kind == FdKind::EventFd
            && sys::field(ib, b"eventfd-semaphore:").and_then(|v| sys::parse_i64(trim(v)))
                == Some(1),
        // Two system calls per descriptor: only where a signal can matter
        // (signal-driven I/O, a lease's break, SIGURG on a socket once the
        // program gave any descriptor an owner).
        signal_io: (kflags & libc::O_ASYNC != 0
            || lease.is_some()
            || dnotify.is_some()
            || (kind == FdKind::Socket && super::owner_set()))
        .then(|| signal_io(fd))
        .flatten(),
        lease,
        dnotify,
        mqueue: None,
        tty: (kind == FdKind::Tty)
            .then(|| super::tty::snapshot(fd))
            .flatten(),
        pidfd_pid,
        pidfd_self: pidfd_pid.is_some_and(|p| p == sys::getpid()),
        // SAFETY: F_GETPIPE_SZ takes no argument; fails harmlessly on non-pipes.
        pipe_packets: None,
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

/// A socket option of one int (SOL_SOCKET level). Runs frozen.
fn sock_int(fd: i32, name: i32) -> Option<i32> {
    let mut t: i32 = 0;
    let mut len = 4u32;
    // SAFETY: getsockopt of one int into a local.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&mut t as *mut i32).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(t)
}

/// What a socket-pair end holds unread, taken without consuming any
/// (MSG_PEEK stepping through the queue with the socket's peek offset,
/// SO_PEEK_OFF, put back as it was after): a stream's bytes (a plain peek
/// stops at data that came with descriptors or other credentials), or
/// each datagram or seqpacket message whole, in order (MSG_TRUNC tells a
/// message's length, so one larger than the buffer is gathered in
/// pieces). Also counts the pieces that carried descriptors (SCM_RIGHTS),
/// which cannot come back. Runs frozen.
struct Unread {
    bytes: Vec<u8>,
    messages: Vec<serde_bytes::ByteBuf>,
    with_descriptors: u32,
}

fn peek_unread(fd: i32, stream: bool) -> Option<Unread> {
    let int_opt = |name: i32, v: Option<i32>| -> Option<i32> {
        let mut x: i32 = v.unwrap_or(0);
        let mut len = 4u32;
        // SAFETY: get/setsockopt of one int from/into a live local.
        let r = unsafe {
            match v {
                Some(_) => {
                    libc::setsockopt(fd, libc::SOL_SOCKET, name, (&x as *const i32).cast(), 4)
                }
                None => libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    name,
                    (&mut x as *mut i32).cast(),
                    &mut len,
                ),
            }
        };
        (r == 0).then_some(x)
    };
    let mut avail: i32 = 0;
    // SAFETY: FIONREAD (SIOCINQ) writes an int.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut avail) } != 0 {
        return None;
    }
    // A datagram socket tells the length of its first message only (0
    // when that one is empty): look anyway.
    if stream && avail <= 0 {
        return None;
    }
    let Some(was) =
        int_opt(libc::SO_PEEK_OFF, None).filter(|_| int_opt(libc::SO_PEEK_OFF, Some(0)).is_some())
    else {
        // A kernel without peek offsets for this socket: one plain peek
        // (the first message, or the stream up to its first descriptor).
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
        let (bytes, messages) = if stream {
            (data, Vec::new())
        } else {
            (Vec::new(), vec![serde_bytes::ByteBuf::from(data)])
        };
        return Some(Unread {
            bytes,
            messages,
            with_descriptors: 0,
        });
    };
    // Room for the credentials SO_PASSCRED adds to each piece, and none
    // for descriptors: those are then not installed, only flagged
    // (MSG_CTRUNC).
    let passcred = int_opt(libc::SO_PASSCRED, None).unwrap_or(0) != 0;
    // A message, even an empty one, carries credentials when SO_PASSCRED
    // is on; the end of file of a seqpacket end whose receiving side is
    // shut down (a read of 0, again and again) carries none. Turned on
    // for the peeks, off again after.
    let probe = !stream && !passcred && int_opt(libc::SO_PASSCRED, Some(1)).is_some();
    let passcred = passcred || probe;
    let mut control = [0u64; 4];
    let mut buf = vec![0u8; 64 << 10];
    let mut out = Unread {
        bytes: Vec::new(),
        messages: Vec::new(),
        with_descriptors: 0,
    };
    // The message being gathered, and how much of it is still to come.
    let mut cur: Vec<u8> = Vec::new();
    let mut rest = 0usize;
    let trunc = if stream { 0 } else { libc::MSG_TRUNC };
    // Bounded: a socket's queue holds at most its receive buffer, and
    // every step takes a message or a piece of one.
    for _ in 0..1_000_000 {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is valid (no name, no control).
        let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if passcred {
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = core::mem::size_of_val(&control);
        }
        // SAFETY: recvmsg into live buffers; MSG_PEEK consumes nothing.
        let n = unsafe {
            libc::syscall(
                libc::SYS_recvmsg,
                fd,
                &mut msg as *mut libc::msghdr,
                libc::MSG_PEEK | libc::MSG_DONTWAIT | trunc,
            )
        };
        if n < 0 {
            break;
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            out.with_descriptors += 1;
        }
        let n = n as usize;
        let got = n.min(buf.len());
        if stream {
            if n == 0 {
                break;
            }
            out.bytes.extend_from_slice(&buf[..got]);
            if out.bytes.len() >= avail as usize {
                break;
            }
            continue;
        }
        if n == 0 && passcred && msg.msg_controllen == 0 {
            break; // end of file, not a message
        }
        if rest == 0 {
            cur = Vec::with_capacity(n);
        } else if n != rest {
            break; // not the rest of the message being gathered: stop here
        }
        cur.extend_from_slice(&buf[..got]);
        rest = n - got;
        if rest == 0 {
            out.messages
                .push(serde_bytes::ByteBuf::from(core::mem::take(&mut cur)));
        }
    }
    int_opt(libc::SO_PEEK_OFF, Some(was));
    if probe {
        int_opt(libc::SO_PASSCRED, Some(0));
    }
    Some(out)
}

/// Take every message queued at socket-pair end `fd` and send each again,
/// in order, from its other end `peer` (held by this process): the queue
/// is as it was, its messages not marked peeked. Only where each send is
/// sure to succeed: neither end shut down, and room in `peer`'s send
/// buffer for all of `seen` (what a peek found) with room to spare.
/// Returns what was queued (an empty message an earlier peek had hidden
/// included), or None when nothing was touched. Runs frozen.
fn requeue(fd: i32, peer: i32, seen: &[serde_bytes::ByteBuf]) -> Option<Vec<serde_bytes::ByteBuf>> {
    let ino = |fd: i32| {
        let mut st: libc::stat = unsafe_zeroed();
        // SAFETY: fstat writes into a live stat.
        (unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st) } == 0).then_some(st.st_ino)
    };
    let diag = super::sockets::UnixDiag::open()?;
    if diag.shutdown(ino(fd)?)? != 0 || diag.shutdown(ino(peer)?)? != 0 {
        return None;
    }
    let sndbuf = sock_int(peer, libc::SO_SNDBUF)?.max(0);
    let need: usize = seen.iter().map(|m| m.len() + 4096).sum();
    if (sndbuf as usize) < need {
        return None;
    }
    // Room for any message `peer` can send (the kernel refuses one longer
    // than its send buffer): nothing taken is ever cut short.
    let largest = seen.iter().map(|m| m.len()).max().unwrap_or(0);
    let mut buf = vec![0u8; largest.max(sndbuf as usize) + 1];
    let mut taken = Vec::new();
    for _ in 0..seen.len() + 4096 {
        // SAFETY: recv into a live buffer of its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n < 0 {
            break;
        }
        let n = (n as usize).min(buf.len());
        taken.push(serde_bytes::ByteBuf::from(buf[..n].to_vec()));
    }
    let mut lost = 0;
    for m in &taken {
        // SAFETY: send from a live buffer; never blocks, never SIGPIPE.
        let n = unsafe {
            libc::send(
                peer,
                m.as_ptr().cast(),
                m.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n != m.len() as isize {
            lost += 1;
        }
    }
    // Checked above so that this cannot happen; if it does, the running
    // program must not lose messages without a word.
    super::say_not_put_back(lost, taken.len(), fd);
    Some(taken)
}

/// Copy (without consuming) what an in-process pipe holds, through a
/// pipe of ckpt's own: `tee` duplicates pipe contents, each buffer with
/// its packet flag. Also the lengths of the packets it starts with (a
/// packet pipe's: each read of one gives that packet alone, so a short
/// read with bytes left ends one; whether the last piece is a packet is
/// asked of a second copy, read all but one byte of it: a packet's rest
/// is dropped). Runs frozen.
fn peek_pipe(fd: i32, size: i32) -> Option<(Vec<u8>, Option<Vec<u32>>)> {
    let mut avail: i32 = 0;
    // SAFETY: FIONREAD writes an int.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut avail) } != 0 || avail <= 0 {
        return None;
    }
    let copy = || -> Option<[i32; 2]> {
        let p = sys::pipe(libc::O_CLOEXEC | libc::O_NONBLOCK).ok()?;
        // SAFETY: resizing our own pipe so it can hold everything.
        unsafe { libc::syscall(libc::SYS_fcntl, p[1], libc::F_SETPIPE_SZ, size.max(avail)) };
        // SAFETY: tee between two pipes; never blocks (SPLICE_F_NONBLOCK).
        unsafe { libc::tee(fd, p[1], avail as usize, libc::SPLICE_F_NONBLOCK) };
        Some(p)
    };
    let close = |p: [i32; 2]| {
        sys::close(p[0]);
        sys::close(p[1]);
    };
    let p = copy()?;
    let mut data = vec![0u8; avail as usize];
    let mut pieces: Vec<u32> = Vec::new();
    let mut got = 0;
    while got < data.len() {
        // SAFETY: reading into the unread tail of `data`.
        let r = unsafe { libc::read(p[0], data[got..].as_mut_ptr().cast(), data.len() - got) };
        if r <= 0 {
            break;
        }
        got += r as usize;
        pieces.push(r as u32);
    }
    close(p);
    data.truncate(got);
    if data.is_empty() {
        return None;
    }
    // Plain bytes come in one read; more pieces are packets, and so may
    // be the last.
    let last = *pieces.last()? as usize;
    let last_is_packet = if last < 2 {
        pieces.len() > 1
    } else {
        copy().is_some_and(|q| {
            let mut buf = vec![0u8; got];
            let mut left = got - last;
            for &n in &pieces[..pieces.len() - 1] {
                // SAFETY: reading one packet into a local buffer.
                unsafe { libc::read(q[0], buf.as_mut_ptr().cast(), n as usize) };
                left -= n as usize;
            }
            let r = if left == 0 {
                // SAFETY: as above, all of the last piece but one byte.
                unsafe { libc::read(q[0], buf.as_mut_ptr().cast(), last - 1) }
            } else {
                -1
            };
            let mut rest: i32 = 0;
            // SAFETY: FIONREAD writes an int.
            unsafe { libc::ioctl(q[0], libc::FIONREAD, &mut rest) };
            close(q);
            r == last as isize - 1 && rest == 0
        })
    };
    if !last_is_packet {
        pieces.pop();
    }
    Some((data, (!pieces.is_empty()).then_some(pieces)))
}

/// A file of the process's own /proc directory (`/proc/PID/status` held
/// open to be read again) is named through /proc/self: a restarted
/// process opens its own, not the killed one's, gone.
fn own_proc_as_self(path: &mut String) {
    let mut buf = [0u8; 32];
    let Some(n) = sys::readlinkat(libc::AT_FDCWD, c"/proc/self", &mut buf) else {
        return;
    };
    let Ok(pid) = core::str::from_utf8(&buf[..n]) else {
        return;
    };
    let own = format!("/proc/{pid}");
    if path
        .strip_prefix(&own)
        .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    {
        path.replace_range(..own.len(), "/proc/self");
    }
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
        o if o == Origin::Inotify as u8 => kind == FdKind::Inotify,
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
            // An O_TMPFILE names its directory; the kernel, "DIR/#ino".
            let tmpfile = h.open_flags & (libc::O_TMPFILE & !libc::O_DIRECTORY) != 0;
            let path = match path.rsplit_once('/') {
                Some((dir, _)) if tmpfile => dir,
                _ => path,
            };
            name == "." || name == ".." || path.ends_with(&*name)
        }
    }
}

fn kind_of(st: &libc::stat, path: &str) -> FdKind {
    if !path.starts_with('/') {
        // Not a path: "pipe:[ino]", "socket:[ino]", "anon_inode:...",
        // "net:[ino]", or a kind not met yet (never reopened as a path).
        match st.st_mode & libc::S_IFMT {
            libc::S_IFIFO if path.starts_with("pipe:") => return FdKind::Pipe,
            libc::S_IFSOCK => return FdKind::Socket,
            _ if path.starts_with("anon_inode:") => {}
            _ if super::namespace_kind(path).is_some() => return FdKind::Namespace,
            _ => return FdKind::Anon,
        }
    }
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
        _ if path == "anon_inode:inotify" => FdKind::Inotify,
        _ if path == "anon_inode:[pidfd]" => FdKind::PidFd,
        _ => FdKind::Anon,
    }
}

/// Pair pipe ends by inode (what the numbers pipe() returned hold may
/// have changed since: closed, reused, moved by dup2): `pipe_peer` names
/// the lowest open file of the other direction; an end with none in the
/// process whose other ends are closed everywhere is `peer_closed`. An
/// end whose partner lives in another process has neither. Runs frozen.
fn pair_pipes(fds: &mut [Fd]) {
    // What an open file of a pipe or FIFO can do: (read, write).
    let can = |g: &Fd| {
        let acc = g.flags & libc::O_ACCMODE;
        (acc != libc::O_WRONLY, acc != libc::O_RDONLY)
    };
    for i in 0..fds.len() {
        let f = &fds[i];
        if !matches!(f.kind, FdKind::Pipe | FdKind::Fifo) {
            continue;
        }
        let (reads, writes) = can(f);
        let peer = fds
            .iter()
            .find(|g| {
                let (r, w) = can(g);
                g.kind == f.kind
                    && g.ino == f.ino
                    && g.dev == f.dev
                    && g.fd != f.fd
                    && g.shares_with.is_none()
                    && ((reads && w) || (writes && r))
            })
            .map(|g| g.fd);
        // A read-write open file is its own other end.
        let closed = peer.is_none() && reads != writes && other_ends_closed(f.fd, reads);
        fds[i].pipe_peer = peer;
        fds[i].peer_closed = closed;
    }
}

/// Whether every other end of pipe end `fd` is closed, in any process:
/// poll says POLLHUP on a read end without writers, POLLERR on a write
/// end without readers. Runs frozen: one raw syscall. (Also asked at
/// restart about a reopened FIFO.)
pub(super) fn other_ends_closed(fd: i32, reads: bool) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: if reads { libc::POLLIN } else { libc::POLLOUT },
        revents: 0,
    };
    // SAFETY: poll on one live pollfd, without waiting.
    let n = unsafe { libc::syscall(libc::SYS_poll, &mut p as *mut libc::pollfd, 1, 0) };
    let mark = if reads { libc::POLLHUP } else { libc::POLLERR };
    n == 1 && p.revents & mark != 0
}

/// Fill `shares_with` (descriptors sharing one open file description, as
/// after dup: found with kcmp).
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
            if same && fds[i].shares_with.is_none() {
                fds[i].shares_with = Some(fds[j].shares_with.unwrap_or(fds[j].fd));
            }
        }
    }
}

/// One end of a unix socket pair or connection whose other end is still
/// open (in this process or another).
fn is_unix(f: &Fd) -> bool {
    f.socket
        .as_ref()
        .is_some_and(|s| s.domain == libc::AF_UNIX && !s.listening)
        && f.peer_ino.is_some_and(|p| p > 0)
}
