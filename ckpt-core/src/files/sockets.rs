//! Sockets to the outside. A listening socket (or a bound datagram socket)
//! comes back: same family, type, address and options, listening again, so
//! a server keeps serving after a restart. A connection cannot come back
//! (its peer is gone): its number gets a socket whose other end is closed,
//! so the program reads end-of-file and gets EPIPE on writes — the way a
//! peer hanging up looks — instead of /dev/null silently taking its data.

use crate::image::{Fd, SocketState};
use crate::restart::warn;

fn opt(fd: i32, level: i32, name: i32) -> Option<i32> {
    let mut v: i32 = 0;
    let mut len = 4u32;
    // SAFETY: getsockopt into a local int.
    let r = unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut i32).cast(), &mut len) };
    (r == 0).then_some(v)
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
    let connected = unsafe { libc::getpeername(fd, peer.as_mut_ptr().cast(), &mut plen) } == 0;
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
    })
}

/// Whether restart can make this socket again (listening, or a bound
/// datagram socket nobody is connected to).
pub fn rebuildable(s: &SocketState) -> bool {
    let datagram = s.socket_type == libc::SOCK_DGRAM && !s.connected;
    (s.listening || datagram) && !s.address.is_empty()
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
    }
    // SAFETY: bind to the recorded address (a sockaddr of its recorded length).
    let bound = unsafe { libc::bind(fd, s.address.as_ptr().cast(), s.address.len() as u32) } == 0;
    // SAFETY: listen on our own socket.
    let listening = !s.listening || unsafe { libc::listen(fd, libc::SOMAXCONN) } == 0;
    if !bound || !listening {
        let e = std::io::Error::last_os_error();
        // SAFETY: closing the socket we made.
        unsafe { libc::close(fd) };
        return Err(format!(
            "cannot listen again where socket {} listened: {e}{}",
            f.fd,
            if e.raw_os_error() == Some(libc::EADDRINUSE) && !s.reuse_address {
                " (closed connections in TIME_WAIT hold the port for a minute: the program does not set SO_REUSEADDR)"
            } else {
                ""
            }
        ));
    }
    if !s.reuse_address {
        set(libc::SOL_SOCKET, libc::SO_REUSEADDR, false);
    }
    Ok(fd)
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

/// Can the listening address of `s` be taken now? Asked by `ckpt restart`
/// before anything starts, so a taken port is refused cleanly.
pub fn check_address(s: &SocketState) -> Result<(), String> {
    if !rebuildable(s) || s.domain == libc::AF_UNIX {
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
        let r = libc::bind(fd, s.address.as_ptr().cast(), s.address.len() as u32);
        let e = std::io::Error::last_os_error();
        libc::close(fd);
        if r != 0 {
            return Err(format!(
                "{e}{}",
                if e.raw_os_error() == Some(libc::EADDRINUSE) && !s.reuse_address {
                    " (closed connections in TIME_WAIT hold the port for a minute: the program does not set SO_REUSEADDR)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(())
}
