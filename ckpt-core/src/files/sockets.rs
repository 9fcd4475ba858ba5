//! Sockets to the outside. A listening socket (or a bound datagram socket)
//! comes back: same family, type, address and options, listening again, so
//! a server keeps serving after a restart. A connection cannot come back
//! (its peer is gone): its number gets a socket whose other end is closed,
//! so the program reads end-of-file and gets EPIPE on writes — the way a
//! peer hanging up looks — instead of /dev/null silently taking its data.

use crate::image::{Fd, SockOpt, SocketState};
use crate::restart_report::warn;
use std::os::unix::ffi::OsStrExt;

/// Socket options kept across a restart (level, name, shown as). Those a
/// socket's family lacks are not there to save.
const KEPT: [(i32, i32, &str); 74] = [
    (libc::SOL_SOCKET, libc::SO_SNDBUF, "SO_SNDBUF"),
    (libc::SOL_SOCKET, libc::SO_RCVBUF, "SO_RCVBUF"),
    (libc::SOL_SOCKET, libc::SO_KEEPALIVE, "SO_KEEPALIVE"),
    (libc::SOL_SOCKET, libc::SO_BROADCAST, "SO_BROADCAST"),
    (libc::SOL_SOCKET, libc::SO_OOBINLINE, "SO_OOBINLINE"),
    (libc::SOL_SOCKET, libc::SO_PASSCRED, "SO_PASSCRED"),
    (libc::SOL_SOCKET, libc::SO_PRIORITY, "SO_PRIORITY"),
    (libc::SOL_SOCKET, libc::SO_RCVLOWAT, "SO_RCVLOWAT"),
    (libc::SOL_SOCKET, libc::SO_RCVTIMEO, "SO_RCVTIMEO"),
    (libc::SOL_SOCKET, libc::SO_SNDTIMEO, "SO_SNDTIMEO"),
    (libc::SOL_SOCKET, libc::SO_LINGER, "SO_LINGER"),
    (libc::IPPROTO_TCP, libc::TCP_NODELAY, "TCP_NODELAY"),
    (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, "TCP_KEEPIDLE"),
    (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, "TCP_KEEPINTVL"),
    (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, "TCP_KEEPCNT"),
    (
        libc::IPPROTO_TCP,
        libc::TCP_USER_TIMEOUT,
        "TCP_USER_TIMEOUT",
    ),
    (libc::IPPROTO_IP, libc::IP_TOS, "IP_TOS"),
    (libc::IPPROTO_IP, libc::IP_TTL, "IP_TTL"),
    (libc::IPPROTO_IPV6, libc::IPV6_TCLASS, "IPV6_TCLASS"),
    (libc::SOL_SOCKET, libc::SO_MARK, "SO_MARK"),
    (libc::SOL_SOCKET, libc::SO_BINDTODEVICE, "SO_BINDTODEVICE"),
    (libc::SOL_NETLINK, 3, "NETLINK_PKTINFO"),
    (libc::SOL_NETLINK, 4, "NETLINK_BROADCAST_ERROR"),
    (libc::SOL_NETLINK, 5, "NETLINK_NO_ENOBUFS"),
    (libc::SOL_NETLINK, 8, "NETLINK_LISTEN_ALL_NSID"),
    (libc::SOL_NETLINK, 10, "NETLINK_CAP_ACK"),
    (libc::SOL_NETLINK, 11, "NETLINK_EXT_ACK"),
    (libc::SOL_NETLINK, 12, "NETLINK_GET_STRICT_CHK"),
    (libc::SOL_SOCKET, libc::SO_DONTROUTE, "SO_DONTROUTE"),
    (libc::SOL_SOCKET, libc::SO_PEEK_OFF, "SO_PEEK_OFF"),
    (libc::SOL_SOCKET, libc::SO_TIMESTAMP, "SO_TIMESTAMP"),
    (libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, "SO_TIMESTAMPNS"),
    (libc::SOL_SOCKET, libc::SO_PASSSEC, "SO_PASSSEC"),
    (libc::SOL_SOCKET, libc::SO_ZEROCOPY, "SO_ZEROCOPY"),
    (libc::SOL_SOCKET, libc::SO_BUSY_POLL, "SO_BUSY_POLL"),
    (libc::SOL_SOCKET, libc::SO_RXQ_OVFL, "SO_RXQ_OVFL"),
    (
        libc::SOL_SOCKET,
        libc::SO_SELECT_ERR_QUEUE,
        "SO_SELECT_ERR_QUEUE",
    ),
    (libc::IPPROTO_TCP, libc::TCP_MAXSEG, "TCP_MAXSEG"),
    (libc::IPPROTO_TCP, libc::TCP_CORK, "TCP_CORK"),
    (libc::IPPROTO_TCP, libc::TCP_SYNCNT, "TCP_SYNCNT"),
    (libc::IPPROTO_TCP, libc::TCP_LINGER2, "TCP_LINGER2"),
    (
        libc::IPPROTO_TCP,
        libc::TCP_DEFER_ACCEPT,
        "TCP_DEFER_ACCEPT",
    ),
    (
        libc::IPPROTO_TCP,
        libc::TCP_WINDOW_CLAMP,
        "TCP_WINDOW_CLAMP",
    ),
    (libc::IPPROTO_TCP, libc::TCP_CONGESTION, "TCP_CONGESTION"),
    (libc::IPPROTO_TCP, libc::TCP_FASTOPEN, "TCP_FASTOPEN"),
    (
        libc::IPPROTO_TCP,
        libc::TCP_NOTSENT_LOWAT,
        "TCP_NOTSENT_LOWAT",
    ),
    (libc::IPPROTO_IP, libc::IP_PKTINFO, "IP_PKTINFO"),
    (libc::IPPROTO_IP, libc::IP_RECVERR, "IP_RECVERR"),
    (libc::IPPROTO_IP, libc::IP_RECVTTL, "IP_RECVTTL"),
    (libc::IPPROTO_IP, libc::IP_RECVTOS, "IP_RECVTOS"),
    (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, "IP_MTU_DISCOVER"),
    (libc::IPPROTO_IP, libc::IP_FREEBIND, "IP_FREEBIND"),
    (libc::IPPROTO_IP, libc::IP_TRANSPARENT, "IP_TRANSPARENT"),
    (libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, "IP_MULTICAST_TTL"),
    (
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_LOOP,
        "IP_MULTICAST_LOOP",
    ),
    (libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, "IP_MULTICAST_ALL"),
    // (By its address; one given by interface index alone reads 0: the
    // wrapper kept it, see `multicast::interface`.)
    (libc::IPPROTO_IP, libc::IP_MULTICAST_IF, "IP_MULTICAST_IF"),
    (
        libc::IPPROTO_IPV6,
        libc::IPV6_MULTICAST_IF,
        "IPV6_MULTICAST_IF",
    ),
    (
        libc::IPPROTO_IPV6,
        libc::IPV6_RECVPKTINFO,
        "IPV6_RECVPKTINFO",
    ),
    (libc::IPPROTO_IPV6, libc::IPV6_RECVERR, "IPV6_RECVERR"),
    (
        libc::IPPROTO_IPV6,
        libc::IPV6_UNICAST_HOPS,
        "IPV6_UNICAST_HOPS",
    ),
    (
        libc::IPPROTO_IPV6,
        libc::IPV6_MULTICAST_HOPS,
        "IPV6_MULTICAST_HOPS",
    ),
    (
        libc::IPPROTO_IPV6,
        libc::IPV6_MULTICAST_LOOP,
        "IPV6_MULTICAST_LOOP",
    ),
    (libc::SOL_SOCKET, SO_LOCK_FILTER, "SO_LOCK_FILTER"),
    (libc::SOL_PACKET, 8, "PACKET_AUXDATA"),
    (libc::SOL_PACKET, 9, "PACKET_ORIGDEV"),
    (libc::SOL_PACKET, 10, "PACKET_VERSION"),
    (libc::SOL_PACKET, 12, "PACKET_RESERVE"),
    (libc::SOL_PACKET, 14, "PACKET_LOSS"),
    (libc::SOL_PACKET, 15, "PACKET_VNET_HDR"),
    (libc::SOL_PACKET, 17, "PACKET_TIMESTAMP"),
    (libc::SOL_PACKET, 20, "PACKET_QDISC_BYPASS"),
    (libc::SOL_PACKET, 23, "PACKET_IGNORE_OUTGOING"),
    // Read back as set (id, type, flags); a group of BPF steering: said
    // at checkpoint (`packet::fanout_by_program`). Set after the bind.
    (libc::SOL_PACKET, 18, "PACKET_FANOUT"),
];

/// Whether option `o` is the program's own setting on a socket like `s`:
/// on a connection, the segment size and window clamp are what the
/// connection negotiated (and deferred accept, fast open a listener's);
/// multicast options mean nothing to a stream socket (the kernel refuses
/// to set them there).
fn applies(o: &SockOpt, s: &SocketState) -> bool {
    let tcp_setup = o.level == libc::IPPROTO_TCP
        && matches!(
            o.name,
            libc::TCP_MAXSEG | libc::TCP_WINDOW_CLAMP | libc::TCP_DEFER_ACCEPT | libc::TCP_FASTOPEN
        );
    let multicast = (o.level == libc::IPPROTO_IP
        && matches!(
            o.name,
            libc::IP_MULTICAST_TTL
                | libc::IP_MULTICAST_LOOP
                | libc::IP_MULTICAST_ALL
                | libc::IP_MULTICAST_IF
        ))
        || (o.level == libc::IPPROTO_IPV6
            && matches!(
                o.name,
                libc::IPV6_MULTICAST_HOPS | libc::IPV6_MULTICAST_LOOP | libc::IPV6_MULTICAST_IF
            ));
    !(tcp_setup && s.connected || multicast && s.socket_type == libc::SOCK_STREAM)
}

/// SO_LOCK_FILTER: set once the filter is attached again (a locked
/// socket refuses a new one).
const SO_LOCK_FILTER: i32 = 44;

/// The classic BPF filter attached to socket `fd` (SO_ATTACH_FILTER),
/// as its instructions (8 bytes each); None when it has none. An eBPF
/// program (SO_ATTACH_BPF) cannot be read back: `Some(empty)` then, said
/// at the checkpoint. Runs frozen (the Vec is the scratch arena's).
fn filter(fd: i32) -> Option<Vec<u8>> {
    let mut n: u32 = 0;
    // SAFETY: with a zero length, SO_GET_FILTER only writes the count.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            core::ptr::null_mut(),
            &mut n,
        )
    };
    if r != 0 {
        let e = crate::interpose::errno();
        return (e == libc::EACCES || e == libc::EPERM).then(Vec::new);
    }
    if n == 0 {
        return None;
    }
    let mut code = vec![0u8; n as usize * 8];
    let mut len = n;
    // SAFETY: SO_GET_FILTER writes `len` instructions of 8 bytes into `code`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            code.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 || len != n {
        return Some(Vec::new());
    }
    Some(code)
}

/// Attach the saved classic filter `code` to `fd` again. Post-restart.
fn attach_filter(fd: i32, code: &[u8]) -> bool {
    let prog = libc::sock_fprog {
        len: (code.len() / 8) as u16,
        filter: code.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: SO_ATTACH_FILTER reads `len` instructions from a live buffer.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            core::mem::size_of::<libc::sock_fprog>() as u32,
        ) == 0
    }
}

/// NETLINK_ADD_MEMBERSHIP and NETLINK_LIST_MEMBERSHIPS (linux/netlink.h).
const NETLINK_ADD_MEMBERSHIP: i32 = 1;
const NETLINK_LIST_MEMBERSHIPS: i32 = 9;

/// A netlink address's port id and groups (`sockaddr_nl`: family, pad,
/// nl_pid, nl_groups); zeros when it is not one.
fn netlink_parts(addr: &[u8]) -> (u32, u32) {
    let word = |at: usize| {
        addr.get(at..at + 4)
            .map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap_or([0; 4])))
    };
    (word(4), word(8))
}

/// The multicast groups netlink socket `fd` is a member of (see
/// `SocketState::memberships`). Runs frozen.
fn memberships(fd: i32) -> Vec<u32> {
    let mut words = [0u32; 32];
    let mut len = core::mem::size_of_val(&words) as u32;
    // SAFETY: getsockopt into a local buffer of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_NETLINK,
            NETLINK_LIST_MEMBERSHIPS,
            words.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Vec::new();
    }
    let n = (len as usize / 4).min(words.len());
    let used = words[..n]
        .iter()
        .rposition(|&w| w != 0)
        .map_or(0, |k| k + 1);
    words[..used].to_vec()
}

/// The options of [`KEPT`] socket `fd` has. Runs frozen.
fn options(fd: i32) -> Vec<SockOpt> {
    let mut out = Vec::new();
    for (level, name, _) in KEPT {
        let mut v = [0u8; 16];
        let mut len = v.len() as u32;
        // SAFETY: getsockopt into a local buffer of `len` bytes.
        let r = unsafe { libc::getsockopt(fd, level, name, v.as_mut_ptr().cast(), &mut len) };
        if r == 0 {
            let mut value = v[..(len as usize).min(v.len())].to_vec();
            if (level, name) == (libc::IPPROTO_IP, libc::IP_MULTICAST_IF) {
                // Named by index: set again with its struct ip_mreqn.
                if let Some(m) = super::multicast::interface(fd) {
                    value = m.to_vec();
                } else if super::multicast::interfaces_lost() && value.iter().all(|&b| b == 0) {
                    // Perhaps one of those not kept: said at checkpoint.
                    value.clear();
                }
            }
            out.push(SockOpt { level, name, value });
        }
    }
    out
}

/// Set the saved options of `s` on `fd`, a socket made again for
/// descriptor `f` (before anything is written into it: a pair's buffers
/// must hold what was unread). Buffer sizes are given as half of what
/// getsockopt said (the kernel doubles them), forced past the system's
/// limits when privileged; whatever does not come back is said.
/// Post-restart.
pub fn set_options(fd: i32, f: &Fd, s: &SocketState) {
    for why in super::multicast::restore(fd, s.domain, &s.groups) {
        warn(&format!(
            "descriptor {} ({}): cannot join {why}",
            f.fd, f.path
        ));
    }
    for why in super::packet::restore(fd, &s.options) {
        warn(&format!(
            "descriptor {} ({}): cannot take {why} again",
            f.fd, f.path
        ));
    }
    match s.filter.as_deref() {
        Some(code) if !code.is_empty() && !attach_filter(fd, code) => warn(&format!(
            "descriptor {} ({}): its socket filter could not be attached again: {}",
            f.fd,
            f.path,
            std::io::Error::last_os_error()
        )),
        _ => {}
    }
    // The lock last: a locked socket takes no filter.
    let mut options: Vec<&SockOpt> = s.options.iter().collect();
    options.sort_by_key(|o| o.level == libc::SOL_SOCKET && o.name == SO_LOCK_FILTER);
    for o in options.into_iter().filter(|o| applies(o, s)) {
        let Some(&(_, _, shown)) = KEPT.iter().find(|k| k.0 == o.level && k.1 == o.name) else {
            continue;
        };
        let now = || {
            let mut v = [0u8; 16];
            let mut len = v.len() as u32;
            // SAFETY: getsockopt into a local buffer of `len` bytes.
            let r =
                unsafe { libc::getsockopt(fd, o.level, o.name, v.as_mut_ptr().cast(), &mut len) };
            (r == 0).then(|| v[..(len as usize).min(v.len())].to_vec())
        };
        // IP_MULTICAST_IF kept as a struct ip_mreqn (named by index):
        // set whole, read back as its address only. Empty: not known,
        // said at checkpoint.
        let mc_if = (o.level, o.name) == (libc::IPPROTO_IP, libc::IP_MULTICAST_IF);
        if mc_if && o.value.is_empty() {
            continue;
        }
        let expect = match o.value.get(4..8) {
            Some(addr) if mc_if && o.value.len() == 12 => addr,
            _ => o.value.as_slice(),
        };
        if now().as_deref() == Some(expect) && !(mc_if && o.value.len() == 12) {
            continue;
        }
        let set = |name: i32, bytes: &[u8]| {
            // SAFETY: setsockopt from a live buffer of its length.
            unsafe {
                libc::setsockopt(fd, o.level, name, bytes.as_ptr().cast(), bytes.len() as u32)
            };
        };
        let buffer = o.level == libc::SOL_SOCKET
            && (o.name == libc::SO_SNDBUF || o.name == libc::SO_RCVBUF)
            && o.value.len() == 4;
        if buffer {
            let was = i32::from_ne_bytes(o.value[..4].try_into().unwrap_or([0; 4]));
            let half = (was / 2).to_ne_bytes();
            set(o.name, &half);
            if now().as_deref() != Some(o.value.as_slice()) {
                let force = if o.name == libc::SO_SNDBUF {
                    libc::SO_SNDBUFFORCE
                } else {
                    libc::SO_RCVBUFFORCE
                };
                set(force, &half);
            }
        } else {
            set(o.name, &o.value);
        }
        if now().as_deref() != Some(expect) {
            warn(&format!(
                "descriptor {} ({}): socket option {shown} could not be set as it was",
                f.fd, f.path
            ));
        }
    }
}

fn opt(fd: i32, level: i32, name: i32) -> Option<i32> {
    let mut v: i32 = 0;
    let mut len = 4u32;
    // SAFETY: getsockopt into a local int.
    let r = unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut i32).cast(), &mut len) };
    (r == 0).then_some(v)
}

/// The path a unix socket address names, NUL-terminated in `buf` (None:
/// unnamed, abstract, or too long). No allocation: runs frozen.
fn unix_path<'a>(addr: &[u8], buf: &'a mut [u8; 112]) -> Option<&'a [u8]> {
    let path = addr.get(2..)?;
    let path = &path[..path.iter().position(|&c| c == 0).unwrap_or(path.len())];
    if path.is_empty() || path.len() >= buf.len() {
        return None;
    }
    buf[..path.len()].copy_from_slice(path);
    buf[path.len()] = 0;
    Some(&buf[..path.len()])
}

/// The modes of the socket file a unix address names and of its
/// directory. Runs frozen: stack buffers only.
fn unix_path_modes(addr: &[u8]) -> Option<(u32, u32)> {
    let mut buf = [0u8; 112];
    let path = unix_path(addr, &mut buf)?;
    let n = path.len();
    let mode = |p: *const u8| {
        // SAFETY: stat of a NUL-terminated path into a zeroed local.
        unsafe {
            let mut st: libc::stat = core::mem::zeroed();
            (libc::stat(p.cast(), &mut st) == 0).then_some(st.st_mode & 0o7777)
        }
    };
    let file = mode(buf.as_ptr())?;
    let dir = match buf[..n].iter().rposition(|&c| c == b'/') {
        Some(0) => mode(c"/".as_ptr().cast())?,
        Some(at) => {
            buf[at] = 0;
            mode(buf.as_ptr())?
        }
        None => mode(c".".as_ptr().cast())?,
    };
    Some((file, dir))
}

/// Whether the path a unix address names was removed (ENOENT): the
/// program unlinked it after binding. Runs frozen: stack buffers only.
fn unix_path_absent(addr: &[u8]) -> bool {
    let mut buf = [0u8; 112];
    if unix_path(addr, &mut buf).is_none() {
        return false;
    }
    // SAFETY: lstat of a NUL-terminated path into a zeroed local.
    unsafe {
        let mut st: libc::stat = core::mem::zeroed();
        libc::lstat(buf.as_ptr().cast(), &mut st) != 0 && *libc::__errno_location() == libc::ENOENT
    }
}

/// Whether `fd` has something to read (a connection to accept). Raw poll,
/// no wait.
fn readable(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll of one live pollfd, without waiting.
    let r = unsafe { libc::syscall(libc::SYS_poll, &mut p as *mut libc::pollfd, 1, 0) };
    r == 1 && p.revents & libc::POLLIN != 0
}

/// What a socket is and where it is bound. Runs frozen.
pub fn snapshot(fd: i32) -> Option<SocketState> {
    let domain = opt(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    let typ = opt(fd, libc::SOL_SOCKET, libc::SO_TYPE)?;
    let protocol = opt(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL).unwrap_or(0);
    let listening = opt(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN).unwrap_or(0) != 0;
    let mut addr = [0u8; 128];
    let mut len = addr.len() as u32;
    // SAFETY: getsockname into a local buffer of `len` bytes.
    let bound = unsafe { libc::getsockname(fd, addr.as_mut_ptr().cast(), &mut len) } == 0;
    let mut peer = [0u8; 128];
    let mut plen = peer.len() as u32;
    // SAFETY: getpeername into a local buffer of `plen` bytes.
    let connected = unsafe { libc::getpeername(fd, peer.as_mut_ptr().cast(), &mut plen) } == 0
        // A netlink socket always has a peer: the kernel (port 0, no
        // group) unless the program connected it elsewhere.
        && (domain != libc::AF_NETLINK || netlink_parts(&peer[..plen as usize]) != (0, 0));
    let netlink = domain == libc::AF_NETLINK;
    Some(SocketState {
        domain,
        socket_type: typ,
        protocol,
        listening,
        connected,
        address: if bound {
            addr[..len as usize].to_vec()
        } else {
            Vec::new()
        },
        reuse_address: opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR).unwrap_or(0) != 0,
        reuse_port: opt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT).unwrap_or(0) != 0,
        v6_only: domain == libc::AF_INET6
            && opt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY).unwrap_or(0) != 0,
        options: {
            let mut o = options(fd);
            if domain == libc::AF_PACKET {
                super::packet::snapshot(fd, &mut o);
            }
            o
        },
        filter: filter(fd),
        waiting: (listening || typ == libc::SOCK_DGRAM || netlink || domain == libc::AF_PACKET)
            && bound
            && readable(fd),
        peer: if connected {
            peer[..plen as usize].to_vec()
        } else {
            Vec::new()
        },
        unsent: if connected && typ == libc::SOCK_STREAM && domain != libc::AF_UNIX {
            let mut n: i32 = 0;
            // Not SIOCOUTQ: on loopback, bytes the peer has in its queue
            // (saved with it) may not be acknowledged yet.
            // SAFETY: SIOCOUTQNSD writes an int.
            unsafe { libc::ioctl(fd, SIOCOUTQNSD, &mut n) };
            n.max(0) as u32
        } else {
            0
        },
        path_modes: if domain == libc::AF_UNIX && bound {
            unix_path_modes(&addr[..len as usize])
        } else {
            None
        },
        path_absent: domain == libc::AF_UNIX && bound && unix_path_absent(&addr[..len as usize]),
        memberships: if netlink { memberships(fd) } else { Vec::new() },
        urgent: typ == libc::SOCK_STREAM && !listening && urgent_waiting(fd),
        groups: super::multicast::snapshot(fd, domain, typ),
    })
}

/// Whether stream socket `fd` has an urgent byte waiting (a peek of
/// MSG_OOB consumes nothing). Runs frozen: raw call, stack buffer.
fn urgent_waiting(fd: i32) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: recvfrom into a one-byte local buffer, no address.
    let n = unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd,
            b.as_mut_ptr(),
            1,
            libc::MSG_OOB | libc::MSG_PEEK | libc::MSG_DONTWAIT,
            core::ptr::null_mut::<u8>(),
            core::ptr::null_mut::<u32>(),
        )
    };
    n == 1
}

/// Bytes of a TCP socket's send queue not sent yet (linux/sockios.h).
const SIOCOUTQNSD: libc::c_ulong = 0x894B;

/// Whether `s` is an end of an established TCP connection.
pub fn is_tcp_connection(s: &SocketState) -> bool {
    matches!(s.domain, libc::AF_INET | libc::AF_INET6)
        && s.socket_type == libc::SOCK_STREAM
        && s.connected
        && !s.listening
        && !s.peer.is_empty()
}

/// The other end of TCP connection `f` among `fds` (a process that talks
/// to itself over TCP): the socket whose addresses are `f`'s swapped.
pub fn tcp_peer<'a>(f: &Fd, fds: &'a [Fd]) -> Option<&'a Fd> {
    let s = f.socket.as_ref().filter(|s| is_tcp_connection(s))?;
    fds.iter().find(|g| {
        g.fd != f.fd
            && g.shares_with.is_none_or(|x| x == g.fd)
            && g.socket
                .as_ref()
                .is_some_and(|t| is_tcp_connection(t) && t.address == s.peer && t.peer == s.address)
    })
}

/// Whether a unix socket address names something (a path or an abstract
/// name), rather than being unnamed.
fn named(addr: &[u8]) -> bool {
    addr.len() > 2
}

/// The other end of a connected unix socket pair the image holds, when
/// either end had a name (bound to a path or abstract name, or accepted
/// from a listener that was): such a pair is made again through those
/// names, before the listeners are (see [`unix_pair`]).
pub fn named_unix_peer<'a>(f: &Fd, fds: &'a [Fd]) -> Option<&'a Fd> {
    let peer = super::restore::pair_peer(f, fds)?;
    let (s, t) = (f.socket.as_ref()?, peer.socket.as_ref()?);
    (s.domain == libc::AF_UNIX && (named(&s.address) || named(&t.address))).then_some(peer)
}

/// Bind `fd` to unix address `addr`, clearing a socket file the killed
/// run left there first.
fn bind_unix(fd: i32, addr: &[u8]) -> Result<(), std::io::Error> {
    clear_stale_unix_path(addr);
    bind_to(fd, addr)
}

/// The two sockets of a connected unix pair (`a`'s end, then `b`'s), of
/// type `typ`. When the image gives either end a name, they are made with
/// the same names as before — each datagram end bound to its address and
/// connected to the other's; a stream's accepted end from a listener of
/// a moment on its address, the other end connecting to it from its own
/// — so getsockname, getpeername and recvfrom's source say what they
/// said. Otherwise, or when a name is in use (the program's own listener
/// already there), a socketpair, with the names said lost. Returns the
/// pair and what is not as it was. Post-restart, before the program's
/// listeners are made again.
pub fn unix_pair(
    a: Option<&Fd>,
    b: Option<&Fd>,
    typ: i32,
) -> Result<([i32; 2], Vec<String>), String> {
    fn sock(f: Option<&Fd>) -> Option<&SocketState> {
        f.and_then(|f| f.socket.as_ref())
            .filter(|s| s.domain == libc::AF_UNIX)
    }
    let mut said = Vec::new();
    if let (Some(fa), Some(fb), Some(sa), Some(sb)) = (a, b, sock(a), sock(b)) {
        if named(&sa.address) || named(&sb.address) {
            // A listener's directory the program removed since (a python
            // multiprocessing Manager's, at its end): made again first.
            make_unix_dir_again(fa, sa);
            make_unix_dir_again(fb, sb);
            match named_pair(sa, sb, typ) {
                Ok(p) => return Ok((p, said)),
                Err(e) => said.push(format!(
                    "descriptors {} and {} (a unix socket pair with names {} and {}) come back \
                     connected but unnamed: {e}",
                    fa.fd,
                    fb.fd,
                    endpoint(&sa.address).unwrap_or_else(|| "(none)".into()),
                    endpoint(&sb.address).unwrap_or_else(|| "(none)".into()),
                )),
            }
        }
    }
    let mut p = [0i32; 2];
    // SAFETY: socketpair into a local array.
    if unsafe { libc::socketpair(libc::AF_UNIX, typ | libc::SOCK_CLOEXEC, 0, p.as_mut_ptr()) } != 0
    {
        return Err(format!(
            "cannot make a socket pair: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok((p, said))
}

/// [`unix_pair`] through the ends' names.
fn named_pair(sa: &SocketState, sb: &SocketState, typ: i32) -> Result<[i32; 2], std::io::Error> {
    let socket = || {
        // SAFETY: socket with plain integers.
        let fd = unsafe { libc::socket(libc::AF_UNIX, typ | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(fd)
        }
    };
    let close = |fd: i32| {
        // SAFETY: closing a socket made here.
        unsafe { libc::close(fd) };
    };
    let connect = |fd: i32, addr: &[u8]| {
        // SAFETY: connect to a sockaddr of its recorded length.
        if unsafe { libc::connect(fd, addr.as_ptr().cast(), addr.len() as u32) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let made: Result<[i32; 2], std::io::Error> = if typ == libc::SOCK_DGRAM {
        let x = socket()?;
        let y = socket().inspect_err(|_| close(x))?;
        let r = (|| {
            for (fd, s) in [(x, sa), (y, sb)] {
                if named(&s.address) {
                    bind_unix(fd, &s.address)?;
                }
            }
            for (fd, s) in [(x, sa), (y, sb)] {
                if s.connected && named(&s.peer) {
                    connect(fd, &s.peer)?;
                }
            }
            Ok([x, y])
        })();
        r.inspect_err(|_| {
            close(x);
            close(y);
        })
    } else {
        // The accepted end is the one whose name the other's peer is.
        let (server, client, swapped) = if named(&sa.address) && sa.address == sb.peer {
            (sa, sb, false)
        } else if named(&sb.address) && sb.address == sa.peer {
            (sb, sa, true)
        } else {
            return Err(std::io::Error::other(
                "neither end was accepted under the other's name",
            ));
        };
        let l = socket()?;
        let r = (|| {
            bind_unix(l, &server.address)?;
            // SAFETY: listen on our own bound socket.
            if unsafe { libc::listen(l, 1) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let c = socket()?;
            let joined = (|| {
                if named(&client.address) {
                    bind_unix(c, &client.address)?;
                }
                connect(c, &server.address)
            })();
            if let Err(e) = joined {
                close(c);
                return Err(e);
            }
            // SAFETY: accept4 on our own listener, which holds exactly the
            // connection just made.
            let s = unsafe {
                libc::accept4(
                    l,
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            if s < 0 {
                let e = std::io::Error::last_os_error();
                close(c);
                return Err(e);
            }
            Ok(if swapped { [c, s] } else { [s, c] })
        })();
        close(l);
        r
    };
    let made = made?;
    for s in [sa, sb] {
        path_as_it_was(s);
    }
    Ok(made)
}

/// A socket of `s`'s family and protocol, with SO_REUSEADDR (the killed
/// run's connections may linger on the port in TIME_WAIT).
fn tcp_socket(s: &SocketState) -> Result<i32, String> {
    // SAFETY: socket with plain integers.
    let fd = unsafe { libc::socket(s.domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, s.protocol) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    let on: i32 = 1;
    // SAFETY: setsockopt from local ints on our own socket.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&on as *const i32).cast(),
            4,
        );
        if s.domain == libc::AF_INET6 {
            let v6: i32 = s.v6_only.into();
            libc::setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                (&v6 as *const i32).cast(),
                4,
            );
        }
    }
    Ok(fd)
}

fn bind_to(fd: i32, addr: &[u8]) -> Result<(), std::io::Error> {
    // SAFETY: bind to a sockaddr of its recorded length.
    if unsafe { libc::bind(fd, addr.as_ptr().cast(), addr.len() as u32) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `addr` with port 0 (the kernel then chooses one).
fn any_port(addr: &[u8]) -> Vec<u8> {
    let mut a = addr.to_vec();
    if a.len() >= 4 {
        a[2..4].copy_from_slice(&[0, 0]);
    }
    a
}

/// A TCP connection whose two ends (`a` and `b`, descriptors of the image)
/// the job holds, made again between the same addresses: `b`'s end is
/// accepted from a listener of a moment on its address, `a`'s connects to
/// it from its own (from another port when the killed run's connection
/// still holds it: said). Options, unread bytes and status flags as each
/// end had them. Returns (a's socket, b's socket, what is not as it was).
/// Post-restart, before the program's own listener on that address is
/// made (it then shares the port with `b`'s end).
pub fn make_tcp_pair(a: &Fd, b: &Fd) -> Result<(i32, i32, Vec<String>), String> {
    // The killed run's connection may linger in TIME_WAIT at either end.
    // At a client's end (a socket without SO_REUSEADDR) it holds the port
    // against any bind: end it first, as its own peer would.
    if let (Some(sa), Some(sb)) = (a.socket.as_ref(), b.socket.as_ref()) {
        end_time_wait(sa, &sa.address, &sb.address);
        end_time_wait(sb, &sb.address, &sa.address);
    }
    // Either end may be the accepted one: the same two addresses either
    // way. The one whose port is still held cannot listen.
    match accepted_as(a, b) {
        Ok(made) => Ok(made),
        Err(first) => match accepted_as(b, a) {
            Ok((sb, sa, said)) => Ok((sa, sb, said)),
            Err(_) => Err(first),
        },
    }
}

/// End the killed run's connection from `local` to `remote` (both this
/// machine's: the job held both ends) if it lingers in TIME_WAIT holding
/// `local`'s port. A socket on `remote` sends a SYN to `local`: the
/// TIME_WAIT end answers with an ACK of its old sequence, which the new
/// socket refuses with a reset at exactly that sequence, and a TIME_WAIT
/// socket ends on an in-window reset (net.ipv4.tcp_rfc1337 = 0, the
/// default). Nothing else hears of it: the tuple is the job's own. Does
/// nothing when the port can be bound already, or `remote` cannot be
/// (its port in use by a listener). Post-restart, before the pair is made.
fn end_time_wait(s: &SocketState, local: &[u8], remote: &[u8]) {
    let bindable = || -> bool {
        let Ok(probe) = tcp_socket(s) else {
            return true;
        };
        let ok = bind_to(probe, local).is_ok();
        // SAFETY: closing the probe made here.
        unsafe { libc::close(probe) };
        ok
    };
    if bindable() {
        return;
    }
    let Ok(knock) = tcp_socket(s) else { return };
    // SAFETY: our own socket made non-blocking; connect to a sockaddr of
    // its recorded length (EINPROGRESS: the SYN is on its way).
    unsafe {
        libc::fcntl(knock, libc::F_SETFL, libc::O_NONBLOCK);
        if bind_to(knock, remote).is_ok() {
            libc::connect(knock, local.as_ptr().cast(), local.len() as u32);
        }
    }
    // On loopback the exchange takes microseconds; give it 50 ms.
    for _ in 0..50 {
        if bindable() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // SAFETY: closing our socket (in SYN_SENT: it sends nothing more).
    unsafe { libc::close(knock) };
}

/// [`make_tcp_pair`] with `b`'s end accepted from a listener of a moment
/// on its address.
fn accepted_as(a: &Fd, b: &Fd) -> Result<(i32, i32, Vec<String>), String> {
    let (Some(sa), Some(sb)) = (a.socket.as_ref(), b.socket.as_ref()) else {
        return Err("not sockets".into());
    };
    let mut said = Vec::new();
    let close = |fd: i32| {
        // SAFETY: closing a socket made here.
        unsafe { libc::close(fd) };
    };
    let l = tcp_socket(sb)?;
    // SAFETY: listen on our own bound socket.
    if let Err(e) = bind_to(l, &sb.address).and_then(|_| {
        if unsafe { libc::listen(l, 1) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }) {
        close(l);
        return Err(format!(
            "{} cannot be listened on again: {e}",
            endpoint(&sb.address).unwrap_or_default()
        ));
    }
    let connect_from = |from: &[u8]| -> Result<i32, std::io::Error> {
        let c = tcp_socket(sa).map_err(std::io::Error::other)?;
        let r = bind_to(c, from).and_then(|_| {
            // SAFETY: connect to a sockaddr of its recorded length; on
            // loopback a listener's backlog answers at once.
            if unsafe { libc::connect(c, sb.address.as_ptr().cast(), sb.address.len() as u32) } == 0
            {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
        r.map(|_| c).inspect_err(|_| close(c))
    };
    let c = match connect_from(&sa.address) {
        Ok(c) => c,
        Err(first) => match connect_from(&any_port(&sa.address)) {
            Ok(c) => {
                let mut now = [0u8; 128];
                let mut len = now.len() as u32;
                // SAFETY: getsockname into a local buffer of `len` bytes.
                unsafe { libc::getsockname(c, now.as_mut_ptr().cast(), &mut len) };
                said.push(format!(
                    "descriptor {}: its TCP connection to {} comes back from {} instead of {} \
                     ({first}: the killed run's connection still holds that port)",
                    a.fd,
                    endpoint(&sb.address).unwrap_or_default(),
                    endpoint(&now[..len as usize]).unwrap_or_default(),
                    endpoint(&sa.address).unwrap_or_default(),
                ));
                c
            }
            Err(e) => {
                close(l);
                return Err(format!(
                    "cannot connect to {} again: {e}",
                    endpoint(&sb.address).unwrap_or_default()
                ));
            }
        },
    };
    // SAFETY: accept4 on our own listener, which holds exactly the
    // connection just made (nothing else knows of it yet).
    let s = unsafe {
        libc::accept4(
            l,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    };
    close(l);
    if s < 0 {
        close(c);
        return Err(format!("accept: {}", std::io::Error::last_os_error()));
    }
    set_options(c, a, sa);
    set_options(s, b, sb);
    // What each end had not read is sent to it by the other.
    super::restore::refill_socket(s, a)?;
    super::restore::refill_socket(c, b)?;
    super::restore::set_status(c, a.flags);
    super::restore::set_status(s, b.flags);
    // An end that had sent its FIN (shutdown(SHUT_WR), or closed by a
    // half-close) sends it again, after the data it had sent before it:
    // the other reads that data, then end of file, as it would have.
    super::restore::shut_again(c, a);
    super::restore::shut_again(s, b);
    Ok((c, s, said))
}

/// The shutdown(2) state of a TCP socket as its connection's state shows
/// it (SEND_SHUTDOWN, 2: this end sent its FIN); 0 for other sockets. A
/// shutdown for reading alone changes nothing on the wire and is not
/// seen here. Frozen: one getsockopt.
pub fn tcp_shutdown(fd: i32) -> u8 {
    let mut info = [0u8; 8];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: TCP_INFO into a local buffer of `len` bytes (the kernel
    // copies at most that much; its first byte is the state).
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    // FIN_WAIT1 4, FIN_WAIT2 5, TIME_WAIT 6, LAST_ACK 9, CLOSING 11.
    if r == 0 && len >= 1 && matches!(info[0], 4 | 5 | 6 | 9 | 11) {
        2
    } else {
        0
    }
}

/// A socket address as people write it: `1.2.3.4:80`, `[::1]:80`, a unix
/// path or `@abstract`; None when empty or of another family.
pub fn endpoint(addr: &[u8]) -> Option<String> {
    let family = u16::from_ne_bytes(addr.get(..2)?.try_into().ok()?) as i32;
    let port = || addr.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
    match family {
        libc::AF_INET => {
            let a: [u8; 4] = addr.get(4..8)?.try_into().ok()?;
            Some(format!("{}:{}", std::net::Ipv4Addr::from(a), port()?))
        }
        libc::AF_INET6 => {
            let a: [u8; 16] = addr.get(8..24)?.try_into().ok()?;
            Some(format!("[{}]:{}", std::net::Ipv6Addr::from(a), port()?))
        }
        libc::AF_UNIX => {
            let path = addr.get(2..)?;
            match path.split_first() {
                Some((0, name)) => Some(format!("@{}", String::from_utf8_lossy(name))),
                Some(_) => {
                    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                    Some(String::from_utf8_lossy(&path[..end]).into_owned())
                }
                None => None,
            }
        }
        _ => None,
    }
}

/// The kernel's socket diagnostics (a NETLINK_SOCK_DIAG socket), asked
/// which socket is at the other end of a unix socket: the one sure way to
/// pair the ends of a socket pair (the numbers socketpair() returned may
/// have been moved, closed or reused since, or never seen by a wrapper).
pub struct UnixDiag(i32);

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const UDIAG_SHOW_PEER: u32 = 4;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_SHUTDOWN: u16 = 6;

impl UnixDiag {
    /// Runs frozen: raw syscalls only.
    pub fn open() -> Option<UnixDiag> {
        // SAFETY: socket() with plain integers.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_socket,
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        (fd >= 0).then_some(UnixDiag(fd as i32))
    }

    /// What is connected to unix socket `ino`, or None when the kernel
    /// does not say. Runs frozen.
    pub fn peer(&self, ino: u64) -> Option<Peer> {
        let ino32 = u32::try_from(ino).ok()?;
        self.ask(ino, |msg| parse_peer(msg, ino32))
    }

    /// Unix socket `ino`'s shutdown(2) state (RCV_SHUTDOWN 1, SEND_SHUTDOWN
    /// 2), or None when the kernel does not say. Runs frozen.
    pub fn shutdown(&self, ino: u64) -> Option<u8> {
        let ino32 = u32::try_from(ino).ok()?;
        self.ask(ino, |msg| {
            attribute(msg, ino32, UNIX_DIAG_SHUTDOWN)?.and_then(|v| v.first().copied())
        })
    }

    /// The kernel's answer about unix socket `ino`, read by `parse`.
    fn ask<T>(&self, ino: u64, parse: impl Fn(&[u8]) -> Option<T>) -> Option<T> {
        let ino = u32::try_from(ino).ok()?;
        // struct nlmsghdr, then struct unix_diag_req.
        let mut req = [0u8; 40];
        req[0..4].copy_from_slice(&40u32.to_ne_bytes());
        req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
        req[8..12].copy_from_slice(&ino.to_ne_bytes());
        req[16] = libc::AF_UNIX as u8;
        req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
        req[24..28].copy_from_slice(&ino.to_ne_bytes());
        req[28..32].copy_from_slice(&UDIAG_SHOW_PEER.to_ne_bytes());
        // No cookie: look the socket up by inode alone.
        req[32..40].fill(0xff);
        // SAFETY: an all-zero sockaddr_nl is the kernel's address.
        let mut to: libc::sockaddr_nl = unsafe { core::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: sendto from a live buffer to a live address.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_sendto,
                self.0,
                req.as_ptr(),
                req.len(),
                0,
                &to as *const libc::sockaddr_nl,
                core::mem::size_of::<libc::sockaddr_nl>(),
            )
        };
        if sent != req.len() as i64 {
            return None;
        }
        let mut buf = [0u8; 1024];
        // The kernel answers before sendto returns: never blocks.
        // SAFETY: recvfrom into a live buffer.
        let n = unsafe {
            libc::syscall(
                libc::SYS_recvfrom,
                self.0,
                buf.as_mut_ptr(),
                buf.len(),
                libc::MSG_DONTWAIT,
                core::ptr::null_mut::<u8>(),
                core::ptr::null_mut::<u32>(),
            )
        };
        parse(buf.get(..usize::try_from(n).ok()?)?)
    }
}

impl Drop for UnixDiag {
    fn drop(&mut self) {
        crate::sys::close(self.0);
    }
}

/// What a unix socket is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Nothing (never connected).
    None,
    /// A socket closed since (in any process): the socket has only its
    /// unread data and end of file left.
    Closed,
    /// The socket with this inode.
    Inode(u64),
}

/// The peer in a SOCK_DIAG_BY_FAMILY answer about socket `ino`.
fn parse_peer(msg: &[u8], ino: u32) -> Option<Peer> {
    let u32_at = |v: &[u8]| Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?));
    Some(match attribute(msg, ino, UNIX_DIAG_PEER)? {
        // A peer released since has no inode any more.
        Some(v) => match u32_at(v)? {
            0 => Peer::Closed,
            p => Peer::Inode(p.into()),
        },
        None => Peer::None,
    })
}

/// Attribute `kind` of the kernel's answer `msg` about socket `ino`:
/// None when `msg` is not that answer, Some(None) when it lacks `kind`.
fn attribute(msg: &[u8], ino: u32, kind: u16) -> Option<Option<&[u8]>> {
    let u16_at = |i: usize| Some(u16::from_ne_bytes(msg.get(i..i + 2)?.try_into().ok()?));
    let u32_at = |i: usize| Some(u32::from_ne_bytes(msg.get(i..i + 4)?.try_into().ok()?));
    let len = (u32_at(0)? as usize).min(msg.len());
    // struct unix_diag_msg: family, type, state, pad, ino, cookie[2].
    if u16_at(4)? != SOCK_DIAG_BY_FAMILY || u32_at(20)? != ino {
        return None;
    }
    let mut at = 32;
    while at + 4 <= len {
        let alen = u16_at(at)? as usize;
        if alen < 4 {
            break;
        }
        if u16_at(at + 2)? == kind {
            return Some(msg.get(at + 4..(at + alen).min(len)));
        }
        at += (alen + 3) & !3;
    }
    Some(None)
}

/// Whether a unix socket's address is unnamed (a socket pair's ends are).
pub(crate) fn unnamed(s: &SocketState) -> bool {
    s.domain == libc::AF_UNIX && s.address.len() <= 2
}

/// Pair the ends of unix socket connections the process holds both of,
/// by the peers the kernel reports (`Fd::peer_ino`): `pipe_peer` names
/// the other end's lowest descriptor. Socket pairs, and connections to a
/// socket bound to a name the process accepted itself (a server and its
/// client in one process): both come back as a pair with their unread
/// data (without the name: getsockname/getpeername then give none), as
/// a tree's restart makes them across processes. An end whose peer was
/// closed is `peer_closed` (it comes back alone, with its unread data).
/// Where the kernel told nothing, the recorded history stays. Runs
/// frozen.
pub fn pair(fds: &mut [Fd]) {
    let diag = UnixDiag::open();
    // Each unix connection end's peer, as the kernel reports it.
    let mut peers: Vec<(usize, Peer)> = Vec::new();
    for (i, f) in fds.iter().enumerate() {
        // A connection accepted from a named socket has a name too.
        let connection = f.socket.as_ref().is_some_and(|s| {
            s.domain == libc::AF_UNIX && !s.listening && (s.connected || unnamed(s))
        });
        if f.kind != crate::image::FdKind::Socket || !connection {
            continue;
        }
        if let Some(peer) = diag.as_ref().and_then(|d| d.peer(f.ino)) {
            peers.push((i, peer));
        }
    }
    for &(i, peer) in &peers {
        let ino = fds[i].ino;
        // The other end, when this process holds it and it is connected
        // back to this one (a datagram socket connected to a bound one
        // is not: that one stays bound, alone).
        let other = match peer {
            Peer::Inode(p) => peers
                .iter()
                .map(|&(j, q)| (&fds[j], q))
                .find(|(g, q)| g.ino == p && g.shares_with.is_none() && *q == Peer::Inode(ino))
                .map(|(g, _)| g.fd),
            _ => None,
        };
        fds[i].shutdown = diag.as_ref().and_then(|d| d.shutdown(ino)).unwrap_or(0);
        let f = &mut fds[i];
        f.pipe_peer = other;
        f.peer_closed = peer == Peer::Closed && f.socket.as_ref().is_some_and(unnamed);
        f.peer_ino = match peer {
            Peer::None => None,
            Peer::Closed => Some(0),
            Peer::Inode(p) => Some(p),
        };
    }
}

/// Whether a socket of the image comes back as a connection closed by its
/// peer (restart warns then): neither one end of a pair the process holds
/// both ends of, nor a socket that listens again.
pub fn hangs_up(f: &Fd, fds: &[Fd]) -> bool {
    f.kind == crate::image::FdKind::Socket
        && super::stdio_rule(f) == super::Passthrough::Rebuilt
        && f.shares_with.is_none_or(|s| s == f.fd)
        && super::restore::pair_peer(f, fds).is_none()
        && tcp_peer(f, fds).is_none()
        && !(f.peer_closed && f.socket_type.is_some())
        && f.socket
            .as_ref()
            .is_some_and(|s| !rebuildable(s) && !fresh(s))
}

/// Whether a socket was never bound nor connected (made, options set at
/// most): a new one is then exactly what it was.
pub fn fresh(s: &SocketState) -> bool {
    let unbound = match s.domain {
        libc::AF_UNIX => s.address.len() <= 2,
        // Port 0 (sockaddr_in and sockaddr_in6 keep it at bytes 2..4).
        libc::AF_INET | libc::AF_INET6 => s.address.get(2..4).is_none_or(|p| p == [0, 0]),
        // No port id yet (a send or a bind gives one), no group.
        libc::AF_NETLINK => netlink_parts(&s.address) == (0, 0) && s.memberships.is_empty(),
        // No interface (sockaddr_ll's ifindex at bytes 4..8): a new
        // socket of its protocol takes every interface's, as it did.
        libc::AF_PACKET => s.address.get(4..8).is_none_or(|i| i == [0; 4]),
        _ => false,
    };
    unbound && !s.listening && !s.connected
}

/// Make a socket that was never bound nor connected again, with its
/// recorded options. Post-restart.
pub fn make_fresh(f: &Fd, s: &SocketState) -> Result<i32, String> {
    // SAFETY: socket with plain integers.
    let fd = unsafe { libc::socket(s.domain, s.socket_type | libc::SOCK_CLOEXEC, s.protocol) };
    if fd < 0 {
        return Err(format!("cannot make socket {} again", f.fd));
    }
    let set = |level: i32, name: i32, on: bool| {
        let v: i32 = on.into();
        // SAFETY: setsockopt from a local int.
        unsafe { libc::setsockopt(fd, level, name, (&v as *const i32).cast(), 4) };
    };
    set(libc::SOL_SOCKET, libc::SO_REUSEADDR, s.reuse_address);
    set(libc::SOL_SOCKET, libc::SO_REUSEPORT, s.reuse_port);
    if s.domain == libc::AF_INET6 {
        set(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, s.v6_only);
    }
    set_options(fd, f, s);
    Ok(fd)
}

/// Whether restart can make this socket again (listening, a bound
/// datagram socket, or a datagram socket connected to an address: UDP,
/// or a unix path such as /dev/log; a connection of datagrams is only a
/// default destination, made again by connect).
/// A netlink socket (requests to the kernel, replies and events from it)
/// is made again bound to its port id and groups.
pub fn rebuildable(s: &SocketState) -> bool {
    let datagram = s.socket_type == libc::SOCK_DGRAM && (!s.connected || reconnectable(s));
    let netlink = s.domain == libc::AF_NETLINK && !fresh(s);
    // A packet socket, raw or datagram, is bound to an interface again.
    let packet = s.domain == libc::AF_PACKET && !fresh(s);
    (s.listening || datagram || netlink || packet) && !s.address.is_empty()
}

/// A connected datagram socket whose peer has an address to connect to
/// again.
fn reconnectable(s: &SocketState) -> bool {
    match s.domain {
        libc::AF_INET | libc::AF_INET6 => s.peer.len() > 2,
        libc::AF_UNIX => named(&s.peer),
        libc::AF_NETLINK => s.peer.len() > 2,
        _ => false,
    }
}

/// Make a listening (or bound datagram) socket again. Post-restart.
pub fn rebuild(f: &Fd, s: &SocketState) -> Result<i32, String> {
    // SAFETY: socket with plain integers.
    let fd = unsafe { libc::socket(s.domain, s.socket_type | libc::SOCK_CLOEXEC, s.protocol) };
    if fd < 0 {
        return Err(format!("cannot make socket {} again", f.fd));
    }
    let set = |level: i32, name: i32, on: bool| {
        let v: i32 = on.into();
        // SAFETY: setsockopt from a local int.
        unsafe { libc::setsockopt(fd, level, name, (&v as *const i32).cast(), 4) };
    };
    // The killed process's connections may linger in TIME_WAIT on the port.
    set(libc::SOL_SOCKET, libc::SO_REUSEADDR, true);
    set(libc::SOL_SOCKET, libc::SO_REUSEPORT, s.reuse_port);
    if s.domain == libc::AF_INET6 {
        set(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, s.v6_only);
    }
    if s.domain == libc::AF_UNIX {
        clear_stale_unix_path(&s.address);
        make_unix_dir_again(f, s);
    }
    // SAFETY: bind to the recorded address (a sockaddr of its recorded
    // length), then listen on our own socket; errno is read before
    // anything else can change it.
    // An unnamed unix socket stays unnamed (a bind of the family alone
    // would give it an abstract name).
    let bind = s.domain != libc::AF_UNIX || named(&s.address);
    let failed = unsafe {
        if (bind && bind_again(fd, f, s) != 0)
            || (s.listening && libc::listen(fd, libc::SOMAXCONN) != 0)
        {
            Some(std::io::Error::last_os_error())
        } else {
            None
        }
    };
    if let Some(e) = failed {
        // SAFETY: closing the socket we made.
        unsafe { libc::close(fd) };
        if s.domain == libc::AF_NETLINK {
            return Err(format!("cannot bind netlink socket {} again: {e}", f.fd));
        }
        return Err(format!(
            "cannot listen again where socket {} listened: {e}{}",
            f.fd,
            in_use_why(&e, s)
        ));
    }
    if !s.reuse_address {
        set(libc::SOL_SOCKET, libc::SO_REUSEADDR, false);
    }
    path_as_it_was(s);
    set_options(fd, f, s);
    // SAFETY: connect our own datagram socket to the recorded peer (a
    // sockaddr of its recorded length): only its default destination.
    if s.connected
        && reconnectable(s)
        && unsafe { libc::connect(fd, s.peer.as_ptr().cast(), s.peer.len() as u32) } != 0
    {
        warn(&format!(
            "descriptor {}: its datagrams went to {}, which cannot be connected to now ({}): \
             it comes back unconnected",
            f.fd,
            endpoint(&s.peer).unwrap_or_default(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(fd)
}

/// Bind `fd`, made again for descriptor `f`, to the address of `s`; 0 or
/// -1 (errno set) as bind. A netlink socket whose port id another socket
/// holds now is given a new one (said), and joins its groups past 32.
/// Post-restart.
fn bind_again(fd: i32, f: &Fd, s: &SocketState) -> i32 {
    let addr = bind_address(s);
    // SAFETY: bind to the recorded address (a sockaddr of its length).
    let r = unsafe { libc::bind(fd, addr.as_ptr().cast(), addr.len() as u32) };
    if s.domain != libc::AF_NETLINK {
        return r;
    }
    let (port, _) = netlink_parts(&s.address);
    if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EADDRINUSE) {
        let mut any = s.address.clone();
        any[4..8].fill(0);
        // SAFETY: as above, with port id 0 (the kernel picks one).
        if unsafe { libc::bind(fd, any.as_ptr().cast(), any.len() as u32) } != 0 {
            return -1;
        }
        let mut now = [0u8; 16];
        let mut len = now.len() as u32;
        // SAFETY: getsockname into a local buffer of `len` bytes.
        unsafe { libc::getsockname(fd, now.as_mut_ptr().cast(), &mut len) };
        warn(&format!(
            "descriptor {} (a netlink socket): its port id {port} is another socket's now: it \
             comes back as {} (a program matching replies to {port} will not find them)",
            f.fd,
            netlink_parts(&now[..len as usize]).0
        ));
    } else if r != 0 {
        return r;
    }
    for (k, &word) in s.memberships.iter().enumerate().skip(1) {
        for bit in (0..32).filter(|b| word & (1 << b) != 0) {
            let group = (k * 32 + bit + 1) as u32;
            // SAFETY: setsockopt from a local u32.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_NETLINK,
                    NETLINK_ADD_MEMBERSHIP,
                    (&group as *const u32).cast(),
                    4,
                )
            };
            if r != 0 {
                warn(&format!(
                    "descriptor {} (a netlink socket): cannot join multicast group {group} \
                     again: {}",
                    f.fd,
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    0
}

/// The path a unix socket was just bound to, as it was at the
/// checkpoint: its mode, or gone if the program had removed it.
/// Post-restart.
fn path_as_it_was(s: &SocketState) {
    let mut buf = [0u8; 112];
    if unix_path(&s.address, &mut buf).is_some() {
        // SAFETY: chmod/unlink of the NUL-terminated path just bound.
        unsafe {
            match s.path_modes {
                Some((mode, _)) => libc::chmod(buf.as_ptr().cast(), mode),
                None if s.path_absent => libc::unlink(buf.as_ptr().cast()),
                None => 0,
            };
        }
    }
}

/// A unix socket's directory removed since the checkpoint (the program's
/// own temporary directory, gone when it ended or at a reboot) is made
/// again, with the mode it had, and said: the program expects its socket
/// there. Post-restart.
fn make_unix_dir_again(f: &Fd, s: &SocketState) {
    let mut buf = [0u8; 112];
    let Some(path) = unix_path(&s.address, &mut buf) else {
        return;
    };
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return;
    };
    if dir.exists() {
        return;
    }
    let mode = s.path_modes.map_or(0o700, |(_, d)| d);
    let made = std::fs::create_dir_all(dir).and_then(|_| {
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(mode))
    });
    match made {
        Ok(()) => warn(&format!(
            "socket {}: its directory {} was gone (removed since the checkpoint): made again, mode {mode:o}",
            f.fd,
            dir.display()
        )),
        Err(e) => warn(&format!(
            "socket {}: its directory {} was gone and cannot be made again: {e}",
            f.fd,
            dir.display()
        )),
    }
}

/// A unix socket path left by the killed process refuses a new bind:
/// remove it when nobody answers there any more.
fn clear_stale_unix_path(addr: &[u8]) {
    let path = &addr[2.min(addr.len())..];
    let path = &path[..path.iter().position(|&c| c == 0).unwrap_or(path.len())];
    if path.is_empty() {
        return; // abstract or unnamed
    }
    // SAFETY: a throwaway socket; connect to the recorded address.
    unsafe {
        let probe = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        let refused = probe >= 0
            && libc::connect(probe, addr.as_ptr().cast(), addr.len() as u32) != 0
            && *libc::__errno_location() == libc::ECONNREFUSED;
        if probe >= 0 {
            libc::close(probe);
        }
        if refused {
            if let Ok(c) = std::ffi::CString::new(path) {
                libc::unlink(c.as_ptr());
            }
        }
    }
}

/// A connection whose peer is gone: one end of a fresh pair whose other
/// end is closed. Post-restart.
pub fn hung_up(f: &Fd, typ: i32) -> Result<i32, String> {
    let mut p = [0i32; 2];
    let typ = if typ == libc::SOCK_DGRAM || typ == libc::SOCK_SEQPACKET {
        typ
    } else {
        libc::SOCK_STREAM
    };
    // SAFETY: socketpair into a local array, then closing one end.
    unsafe {
        if libc::socketpair(libc::AF_UNIX, typ | libc::SOCK_CLOEXEC, 0, p.as_mut_ptr()) != 0 {
            return Err(format!("cannot stand in for socket {}", f.fd));
        }
        libc::close(p[1]);
    }
    warn(&format!(
        "descriptor {} ({}) was a connection: it comes back closed by its peer",
        f.fd, f.path
    ));
    Ok(p[0])
}

/// The address to bind `s` to again: what getsockname said, but a
/// packet socket's sockaddr_ll whole (getsockname gives it cut after the
/// hardware address; bind wants all 20 bytes).
fn bind_address(s: &SocketState) -> std::borrow::Cow<'_, [u8]> {
    const SOCKADDR_LL: usize = 20;
    if s.domain == libc::AF_PACKET && s.address.len() < SOCKADDR_LL {
        let mut a = s.address.clone();
        a.resize(SOCKADDR_LL, 0);
        return a.into();
    }
    s.address.as_slice().into()
}

/// Why a port is taken, when the program's killed run may hold it: its
/// closed connections linger in TIME_WAIT for a minute.
fn in_use_why(e: &std::io::Error, s: &SocketState) -> &'static str {
    if e.raw_os_error() == Some(libc::EADDRINUSE) && !s.reuse_address {
        " (`ss -tan` shows what holds it: connections the killed run closed linger in TIME_WAIT \
         for a minute, and the program does not set SO_REUSEADDR, so neither could it listen \
         there again before; then restart again in a minute)"
    } else {
        ""
    }
}

/// Can the listening address of `s` be taken now? Asked by `ckpt restart`
/// before anything starts, so a taken port is refused cleanly. Bound and
/// listening as the restart will (a listen checks the port again, and
/// a socket in TIME_WAIT that lets a bind pass may still refuse it).
pub fn check_address(s: &SocketState) -> Result<(), String> {
    // (A netlink port id taken is given up for another, said.)
    if !rebuildable(s) || matches!(s.domain, libc::AF_UNIX | libc::AF_NETLINK) {
        return Ok(());
    }
    // SAFETY: a throwaway socket bound like the restart will bind it.
    unsafe {
        let fd = libc::socket(s.domain, s.socket_type | libc::SOCK_CLOEXEC, s.protocol);
        if fd < 0 {
            return Ok(());
        }
        let one: i32 = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const i32).cast(),
            4,
        );
        if s.reuse_port {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEPORT,
                (&one as *const i32).cast(),
                4,
            );
        }
        let addr = bind_address(s);
        let r = if libc::bind(fd, addr.as_ptr().cast(), addr.len() as u32) != 0
            || (s.listening && libc::listen(fd, 1) != 0)
        {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        };
        libc::close(fd);
        if let Err(e) = r {
            return Err(format!("{e}{}", in_use_why(&e, s)));
        }
    }
    Ok(())
}

/// Post-restart, every descriptor at its number: keep again what the
/// kernel does not read back of each socket made again (an
/// IP_MULTICAST_IF named by index, a packet socket's memberships), for
/// the next checkpoint, forgetting what the image's tables named (the
/// killed process's sockets, whose inode numbers new ones may have).
pub fn keep_again(fds: &[Fd]) {
    super::multicast::forget_interfaces();
    super::packet::forget_all();
    for f in fds
        .iter()
        .filter(|f| f.shares_with.is_none_or(|s| s == f.fd))
    {
        let Some(s) = f.socket.as_ref() else { continue };
        for o in &s.options {
            if (o.level, o.name) == (libc::IPPROTO_IP, libc::IP_MULTICAST_IF) && o.value.len() == 12
            {
                // SAFETY: 12 live bytes of the option's value.
                unsafe { super::multicast::record_interface(f.fd, o.value.as_ptr(), 12) };
            }
        }
        super::packet::keep_again(f.fd, &s.options);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket pair's ends name each other, whatever their numbers.
    #[test]
    fn socket_diagnostics_pair_the_ends_of_a_pair() {
        let mut p = [0i32; 2];
        // SAFETY: socketpair into a local array.
        assert_eq!(
            unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, p.as_mut_ptr()) },
            0
        );
        let ino = |fd: i32| {
            // SAFETY: fstat into a zeroed stat.
            let mut st: libc::stat = unsafe { core::mem::zeroed() };
            // SAFETY: fstat on our own descriptor.
            assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
            st.st_ino
        };
        let Some(d) = UnixDiag::open() else {
            eprintln!("skipped: no socket diagnostics here");
            return;
        };
        assert_eq!(d.peer(ino(p[0])), Some(Peer::Inode(ino(p[1]))));
        assert_eq!(d.peer(ino(p[1])), Some(Peer::Inode(ino(p[0]))));
        // Shut down: each end tells its own (the kernel's RCV_SHUTDOWN 1,
        // SEND_SHUTDOWN 2; a datagram pair's other end is not marked).
        assert_eq!(d.shutdown(ino(p[0])), Some(0));
        // SAFETY: shutdown of our own sockets.
        assert_eq!(unsafe { libc::shutdown(p[0], libc::SHUT_WR) }, 0);
        assert_eq!(d.shutdown(ino(p[0])), Some(2));
        // SAFETY: as above.
        assert_eq!(unsafe { libc::shutdown(p[1], libc::SHUT_RD) }, 0);
        assert_eq!(d.shutdown(ino(p[1])), Some(1));
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(p[1]) };
        assert_eq!(d.peer(ino(p[0])), Some(Peer::Closed));
        // SAFETY: as above.
        unsafe { libc::close(p[0]) };
    }
}
