//! IP multicast memberships of a socket (IP_ADD_MEMBERSHIP,
//! IPV6_JOIN_GROUP, MCAST_JOIN_GROUP, with their source filters: mDNS,
//! service discovery, market data feeds). The kernel lists the groups
//! joined on each interface (/proc/net/igmp, /proc/net/igmp6) but not by
//! which socket; a socket answers MCAST_MSFILTER for a group only if it
//! joined it there. So at checkpoint each listed (interface, group) is
//! asked of each IP datagram socket; a restart joins again, with the same
//! filter.
//!
//! Verbs: `snapshot` (frozen: raw reads, scratch allocation), `restore`
//! (post-restart, on the socket made again).
//!
//! And the interface a socket sends multicast on (IP_MULTICAST_IF): the
//! kernel reads back only its address, 0 when the program named the
//! interface by index alone (`struct ip_mreqn`). `record_interface` (the
//! setsockopt wrapper) keeps what was set, by the socket's inode, and
//! `interface` gives it to the checkpoint, which saves it as the option's
//! value: set again as it was.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};

use crate::image::McastGroup;

const MCAST_JOIN_GROUP: i32 = 42;
const MCAST_MSFILTER: i32 = 48;
const MCAST_EXCLUDE: u32 = 0;
/// struct group_filter: gf_interface, gf_group at 8 (a sockaddr_storage,
/// 128 bytes), gf_fmode at 136, gf_numsrc at 140, sources from 144.
const FILTER_HEAD: usize = 144;
const STORAGE: usize = 128;
/// Sources read per group (a filter with more is said at restart).
const MAX_SOURCES: usize = 64;

/// The (interface index, group address) pairs of /proc/net/igmp (IPv4:
/// 4 bytes) or /proc/net/igmp6 (IPv6: 16 bytes).
fn listed(v6: bool) -> Vec<(u32, Vec<u8>)> {
    let path = if v6 {
        c"/proc/net/igmp6"
    } else {
        c"/proc/net/igmp"
    };
    let mut buf = vec![0u8; 64 * 1024];
    let n = crate::sys::read_small(libc::AT_FDCWD, path, &mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    let mut out = Vec::new();
    let mut ifindex = 0u32;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if v6 {
            // "1    lo    ff020000000000000000000000000001     1 0000000C 0"
            let (Some(i), Some(_), Some(g)) = (words.next(), words.next(), words.next()) else {
                continue;
            };
            let bytes: Option<Vec<u8>> = (0..16)
                .map(|k| u8::from_str_radix(g.get(2 * k..2 * k + 2)?, 16).ok())
                .collect();
            if let (Ok(i), Some(b)) = (i.parse(), bytes) {
                out.push((i, b));
            }
        } else if line.starts_with(|c: char| c.is_ascii_digit()) {
            // "1\tlo        :     2      V3": an interface.
            ifindex = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        } else if let Some(g) = words.next() {
            // "\t\t\t\t010000EF     1 0:00000000\t\t0": the address as
            // the kernel's %08X of its network-order word (little-endian).
            if let Ok(v) = u32::from_str_radix(g, 16) {
                out.push((ifindex, v.to_le_bytes().to_vec()));
            }
        }
    }
    out
}

/// A sockaddr_in or sockaddr_in6 of `addr` (port 0).
fn sockaddr(addr: &[u8]) -> Vec<u8> {
    let mut s = vec![0u8; if addr.len() == 4 { 16 } else { 28 }];
    let family = if addr.len() == 4 {
        libc::AF_INET
    } else {
        libc::AF_INET6
    } as u16;
    s[..2].copy_from_slice(&family.to_ne_bytes());
    if addr.len() == 4 {
        s[4..8].copy_from_slice(addr);
    } else {
        s[8..24].copy_from_slice(addr);
    }
    s
}

/// The address a sockaddr_in/sockaddr_in6 holds.
fn address(sa: &[u8]) -> Vec<u8> {
    match u16::from_ne_bytes([sa[0], sa[1]]) as i32 {
        libc::AF_INET => sa[4..8].to_vec(),
        _ => sa[8..24].to_vec(),
    }
}

/// The groups IP datagram (or raw) socket `fd` of `domain` joined, with
/// their source filters. Frozen context.
pub fn snapshot(fd: i32, domain: i32, typ: i32) -> Vec<McastGroup> {
    let v6 = match domain {
        libc::AF_INET => false,
        libc::AF_INET6 => true,
        _ => return Vec::new(),
    };
    if typ == libc::SOCK_STREAM {
        return Vec::new();
    }
    let level = if v6 {
        libc::IPPROTO_IPV6
    } else {
        libc::IPPROTO_IP
    };
    let mut out = Vec::new();
    let mut f = vec![0u8; FILTER_HEAD + MAX_SOURCES * STORAGE];
    for (ifindex, group) in listed(v6) {
        f.fill(0);
        f[..4].copy_from_slice(&ifindex.to_ne_bytes());
        let sa = sockaddr(&group);
        f[8..8 + sa.len()].copy_from_slice(&sa);
        f[140..144].copy_from_slice(&(MAX_SOURCES as u32).to_ne_bytes());
        let mut len = f.len() as u32;
        // SAFETY: getsockopt into a buffer of `len` bytes (a group_filter
        // with room for MAX_SOURCES sources); EADDRNOTAVAIL: not joined.
        let r =
            unsafe { libc::getsockopt(fd, level, MCAST_MSFILTER, f.as_mut_ptr().cast(), &mut len) };
        if r != 0 {
            continue;
        }
        let word = |at: usize| u32::from_ne_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]]);
        let (mode, count) = (word(136), word(140) as usize);
        out.push(McastGroup {
            ifindex,
            group,
            exclude: mode == MCAST_EXCLUDE,
            sources: (0..count.min(MAX_SOURCES))
                .map(|k| address(&f[FILTER_HEAD + k * STORAGE..FILTER_HEAD + (k + 1) * STORAGE]))
                .collect(),
            sources_unread: count.saturating_sub(MAX_SOURCES) as u32,
        });
    }
    out
}

/// Join `groups` again on socket `fd` (of `domain`), each with its source
/// filter; what the kernel refuses is returned, one line each.
/// Post-restart.
pub fn restore(fd: i32, domain: i32, groups: &[McastGroup]) -> Vec<String> {
    let level = if domain == libc::AF_INET6 {
        libc::IPPROTO_IPV6
    } else {
        libc::IPPROTO_IP
    };
    let mut failed = Vec::new();
    for g in groups {
        let sa = sockaddr(&g.group);
        let mut req = [0u8; 8 + STORAGE];
        req[..4].copy_from_slice(&g.ifindex.to_ne_bytes());
        req[8..8 + sa.len()].copy_from_slice(&sa);
        // SAFETY: setsockopt from a group_req of its size.
        let joined = unsafe {
            libc::setsockopt(
                fd,
                level,
                MCAST_JOIN_GROUP,
                req.as_ptr().cast(),
                req.len() as u32,
            )
        } == 0;
        let filtered = !joined || (g.exclude && g.sources.is_empty()) || set_filter(fd, level, g);
        if !joined || !filtered {
            failed.push(format!(
                "multicast group {} on interface {}{}: {}",
                shown(&g.group),
                g.ifindex,
                if joined { " (its source filter)" } else { "" },
                std::io::Error::last_os_error()
            ));
        } else if g.sources_unread > 0 {
            failed.push(format!(
                "multicast group {} on interface {}: {} of its filter's sources were not read \
                 (more than {MAX_SOURCES})",
                shown(&g.group),
                g.ifindex,
                g.sources_unread
            ));
        }
    }
    failed
}

/// Give joined group `g` its source filter (MCAST_MSFILTER).
fn set_filter(fd: i32, level: i32, g: &McastGroup) -> bool {
    let sa = sockaddr(&g.group);
    let len = FILTER_HEAD + g.sources.len() * STORAGE;
    let mut f = vec![0u8; len.max(FILTER_HEAD + STORAGE)];
    f[..4].copy_from_slice(&g.ifindex.to_ne_bytes());
    f[8..8 + sa.len()].copy_from_slice(&sa);
    let mode: u32 = if g.exclude { MCAST_EXCLUDE } else { 1 };
    f[136..140].copy_from_slice(&mode.to_ne_bytes());
    f[140..144].copy_from_slice(&(g.sources.len() as u32).to_ne_bytes());
    for (k, s) in g.sources.iter().enumerate() {
        let ss = sockaddr(s);
        let at = FILTER_HEAD + k * STORAGE;
        f[at..at + ss.len()].copy_from_slice(&ss);
    }
    // SAFETY: setsockopt from a group_filter of `len` bytes.
    let r = unsafe { libc::setsockopt(fd, level, MCAST_MSFILTER, f.as_ptr().cast(), len as u32) };
    r == 0
}

/// A group address as people write it.
fn shown(a: &[u8]) -> String {
    match <[u8; 4]>::try_from(a) {
        Ok(v4) => std::net::Ipv4Addr::from(v4).to_string(),
        Err(_) => <[u8; 16]>::try_from(a)
            .map(|v6| std::net::Ipv6Addr::from(v6).to_string())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_sockaddrs() {
        let v4 = vec![239, 0, 0, 1];
        assert_eq!(address(&sockaddr(&v4)), v4);
        let v6: Vec<u8> = (0..16).collect();
        assert_eq!(address(&sockaddr(&v6)), v6);
        assert_eq!(shown(&v4), "239.0.0.1");
    }
}

/// Sockets whose IP_MULTICAST_IF was set with a `struct ip_mreqn` (index
/// and address), by inode: the inode (0: free) and the index and
/// address packed. Each checkpoint frees the entries of sockets no longer
/// open (`sweep_interfaces`); a socket past the table's size is said at
/// checkpoint.
pub const INTERFACES: usize = 1024;
static IF_INO: [AtomicU64; INTERFACES] = [const { AtomicU64::new(0) }; INTERFACES];
static IF_SET: [AtomicU64; INTERFACES] = [const { AtomicU64::new(0) }; INTERFACES];
/// Entries a socket of the checkpoint under way matched.
static IF_SEEN: [AtomicBool; INTERFACES] = [const { AtomicBool::new(false) }; INTERFACES];
/// An entry being filled.
const CLAIMED: u64 = u64::MAX;
/// Set for good when a socket found no room in the table (it may still
/// be open: every socket whose interface reads 0 is then said).
static IF_FULL: AtomicBool = AtomicBool::new(false);

/// The inode of the file `fd` is (a socket's, here). Signal-safe.
pub(super) fn inode(fd: i32) -> Option<u64> {
    // SAFETY: fstat into a zeroed local.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { libc::fstat(fd, &mut st) } == 0 && st.st_ino != 0).then_some(st.st_ino)
}

/// After a successful `setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, val,
/// len)`: keep the index the kernel will not read back (a shorter value
/// names the interface by address, which it does: forgotten). Lock-free
/// (compare-and-swap on a fixed table); called from the wrapper.
///
/// # Safety
/// `val` points to `len` readable bytes (the kernel just read them).
pub unsafe fn record_interface(fd: i32, val: *const u8, len: u32) {
    let Some(ino) = inode(fd) else { return };
    let set = if len as usize >= core::mem::size_of::<libc::ip_mreqn>() {
        // SAFETY: the caller's bytes hold a struct ip_mreqn (read unaligned).
        let m: libc::ip_mreqn = unsafe { core::ptr::read_unaligned(val.cast()) };
        (m.imr_ifindex != 0).then(|| {
            (m.imr_ifindex as u32 as u64) << 32
                | u32::from_ne_bytes(m.imr_address.s_addr.to_ne_bytes()) as u64
        })
    } else {
        None
    };
    set_interface(ino, set);
}

/// Keep `set` (None: forget) for socket inode `ino`. Lock-free.
fn set_interface(ino: u64, set: Option<u64>) {
    let at = IF_INO.iter().position(|i| i.load(Acquire) == ino);
    match (at, set) {
        (Some(i), Some(v)) => IF_SET[i].store(v, Release),
        (Some(i), None) => IF_INO[i].store(0, Release),
        (None, Some(v)) => {
            // Claimed under a mark no inode has, published once its value
            // is in (a checkpoint may freeze this thread in between).
            let free = IF_INO
                .iter()
                .position(|i| i.compare_exchange(0, CLAIMED, AcqRel, Acquire).is_ok());
            match free {
                Some(i) => {
                    // (Not seen by a checkpoint yet: a previous holder's mark goes.)
                    IF_SEEN[i].store(false, Relaxed);
                    IF_SET[i].store(v, Release);
                    IF_INO[i].store(ino, Release);
                }
                None => IF_FULL.store(true, Release),
            }
        }
        (None, None) => {}
    }
}

/// The `struct ip_mreqn` (12 bytes) to set IP_MULTICAST_IF of socket `fd`
/// with again, when the program gave an index; None when the address the
/// kernel reads back says it all. Runs frozen: no allocation.
pub fn interface(fd: i32) -> Option<[u8; 12]> {
    let ino = inode(fd)?;
    let i = IF_INO.iter().position(|i| i.load(Acquire) == ino)?;
    IF_SEEN[i].store(true, Relaxed);
    let v = IF_SET[i].load(Acquire);
    let mut out = [0u8; 12];
    out[4..8].copy_from_slice(&(v as u32).to_ne_bytes());
    out[8..12].copy_from_slice(&((v >> 32) as i32).to_ne_bytes());
    Some(out)
}

/// Each kept interface: the socket's inode and the packed value. No
/// allocation (see `across_exec`).
pub fn each_interface(mut f: impl FnMut(u64, u64)) {
    for (i, ino) in IF_INO.iter().enumerate() {
        let ino = ino.load(Acquire);
        if ino != 0 && ino != CLAIMED {
            f(ino, IF_SET[i].load(Acquire));
        }
    }
}

/// Keep an interface the program before exec kept (`across_exec`).
pub fn keep_interface(ino: u64, v: u64) {
    set_interface(ino, Some(v));
}

/// Some socket's interface was not kept (before exec).
pub fn mark_lost() {
    IF_FULL.store(true, Release);
}

/// Whether a socket's IP_MULTICAST_IF by index ever found no room to be
/// kept.
pub fn interfaces_lost() -> bool {
    IF_FULL.load(Acquire)
}

/// Post-restart: the table names the killed process's sockets (see
/// `sockets::keep_again`).
pub fn forget_interfaces() {
    for i in &IF_INO {
        i.store(0, Release);
    }
}

/// Frozen, once every descriptor was looked at (`interface` for each IP
/// socket): free the entries of sockets no longer open.
pub fn sweep_interfaces() {
    for (i, seen) in IF_SEEN.iter().enumerate() {
        let ino = IF_INO[i].load(Acquire);
        if !seen.swap(false, Relaxed) && ino != 0 && ino != CLAIMED {
            IF_INO[i].store(0, Release);
        }
    }
}

#[cfg(test)]
mod interface_tests {
    use super::*;

    fn udp() -> i32 {
        // SAFETY: socket takes no pointers.
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) }
    }

    /// An index is kept as the whole struct ip_mreqn, an address alone
    /// forgets it, and a checkpoint's sweep frees what no socket matched.
    #[test]
    fn an_interface_named_by_index_is_kept_until_named_by_address() {
        let (a, b) = (udp(), udp());
        assert!(a >= 0 && b >= 0);
        let m = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: 0 },
            imr_address: libc::in_addr {
                s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
            },
            imr_ifindex: 1,
        };
        let len = core::mem::size_of::<libc::ip_mreqn>() as u32;
        // SAFETY: `m` is a live struct of `len` bytes.
        unsafe { record_interface(a, (&m as *const libc::ip_mreqn).cast(), len) };
        let mut want = [0u8; 12];
        want[4..8].copy_from_slice(&[127, 0, 0, 1]);
        want[8..12].copy_from_slice(&1i32.to_ne_bytes());
        assert_eq!(interface(a), Some(want));
        assert_eq!(interface(b), None);
        // Named by address afterwards: the kernel reads that back itself.
        let addr = m.imr_address;
        // SAFETY: a live in_addr of 4 bytes.
        unsafe { record_interface(a, (&addr as *const libc::in_addr).cast(), 4) };
        assert_eq!(interface(a), None);
        // SAFETY: as above.
        unsafe { record_interface(b, (&m as *const libc::ip_mreqn).cast(), len) };
        sweep_interfaces(); // b was not looked at since: freed
        assert_eq!(interface(b), None);
        // SAFETY: closing our own sockets.
        unsafe {
            libc::close(a);
            libc::close(b);
        }
    }
}
