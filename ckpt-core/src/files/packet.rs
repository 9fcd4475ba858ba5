//! What a packet socket (AF_PACKET: capture tools, DHCP clients, network
//! daemons) holds that the kernel does not read back: its memberships
//! (PACKET_ADD_MEMBERSHIP: promiscuous mode, all-multicast, a multicast
//! or unicast link address on an interface). The kernel counts each
//! membership (added twice, dropped once: still held) and drops them when
//! the socket closes; nothing lists them.
//!
//! Verbs: `record` (the setsockopt wrapper, after the kernel took it:
//! lock-free), `snapshot` (frozen: the socket's memberships as options
//! of the image, one per count), `restore` (post-restart: added again,
//! then kept for the new socket by `keep_again`), `sweep` (frozen, after
//! the descriptor walk: entries no open socket matched are freed).
//!
//! A membership is kept as the kernel's `struct packet_mreq_max`
//! (interface index, type, address length, address up to 32 bytes), so
//! one added with a long address comes back whole. Past [`MEMBERS`]
//! entries between two checkpoints the checkpoint says so for every
//! packet socket (it cannot tell which one lost its own).
//!
//! Fanout groups (PACKET_FANOUT) are read back by getsockopt and kept as
//! an option (see `sockets::KEPT`); a group's BPF program
//! (PACKET_FANOUT_DATA) and a mapped ring (PACKET_RX_RING/TX_RING)
//! cannot be: said at checkpoint.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};

use crate::image::SockOpt;

/// PACKET_ADD_MEMBERSHIP and PACKET_DROP_MEMBERSHIP (linux/if_packet.h).
pub const ADD_MEMBERSHIP: i32 = 1;
pub const DROP_MEMBERSHIP: i32 = 2;
/// sizeof(struct packet_mreq_max): ifindex (4), type (2), alen (2),
/// address (32).
pub const MREQ: usize = 40;
/// sizeof(struct packet_mreq), the least the kernel takes.
const MREQ_MIN: usize = 16;
/// Words of one kept membership: index, type and length packed, then the
/// address.
const WORDS: usize = MREQ / 8;

/// Kept memberships: the socket's inode (0: free), the membership and its
/// count.
pub const MEMBERS: usize = 256;
static INO: [AtomicU64; MEMBERS] = [const { AtomicU64::new(0) }; MEMBERS];
static REQ: [[AtomicU64; WORDS]; MEMBERS] =
    [const { [const { AtomicU64::new(0) }; WORDS] }; MEMBERS];
static COUNT: [AtomicU32; MEMBERS] = [const { AtomicU32::new(0) }; MEMBERS];
/// Entries a socket of the checkpoint under way matched.
static SEEN: [AtomicBool; MEMBERS] = [const { AtomicBool::new(false) }; MEMBERS];
/// An entry being filled.
const CLAIMED: u64 = u64::MAX;
/// Set for good when a membership found no room in the table.
static FULL: AtomicBool = AtomicBool::new(false);
/// Packet sockets the program held when it started (inherited across an
/// exec that did not pass through ckpt's exec wrappers, such as glibc's
/// `execl`, which calls the kernel itself): whatever memberships they
/// had were not seen. Said at checkpoint.
const INHERITED_MAX: usize = 16;
static INHERITED: [AtomicU64; INHERITED_MAX] = [const { AtomicU64::new(0) }; INHERITED_MAX];

use super::multicast::inode;

/// A membership as the kernel compares them: the address past its
/// length is not part of it (zeroed). None when `len` bytes do not hold
/// one the kernel would take.
fn normalized(bytes: &[u8]) -> Option<[u8; MREQ]> {
    if bytes.len() < MREQ_MIN {
        return None;
    }
    let mut m = [0u8; MREQ];
    let n = bytes.len().min(MREQ);
    m[..n].copy_from_slice(&bytes[..n]);
    let alen = u16::from_ne_bytes([m[6], m[7]]) as usize;
    if 8 + alen > n {
        return None;
    }
    m[8 + alen..].fill(0);
    Some(m)
}

fn words(m: &[u8; MREQ]) -> [u64; WORDS] {
    core::array::from_fn(|k| u64::from_ne_bytes(m[8 * k..8 * k + 8].try_into().unwrap_or([0; 8])))
}

fn matches(i: usize, w: &[u64; WORDS]) -> bool {
    REQ[i].iter().zip(w).all(|(a, b)| a.load(Acquire) == *b)
}

/// After a successful `setsockopt(fd, SOL_PACKET, name, val, len)`: keep
/// an added membership, count a dropped one down. Lock-free
/// (compare-and-swap on a fixed table); called from the wrapper.
///
/// # Safety
/// `val` points to `len` readable bytes (the kernel just read them).
pub unsafe fn record(fd: i32, name: i32, val: *const u8, len: u32) {
    if (name != ADD_MEMBERSHIP && name != DROP_MEMBERSHIP) || val.is_null() {
        return;
    }
    let Some(ino) = inode(fd) else { return };
    // SAFETY: the caller's `len` bytes, of which at most MREQ are read.
    let bytes = unsafe { core::slice::from_raw_parts(val, (len as usize).min(MREQ)) };
    let Some(m) = normalized(bytes) else { return };
    add(ino, &words(&m), name == ADD_MEMBERSHIP);
}

/// Count membership `w` of socket `ino` up (`up`) or down.
fn add(ino: u64, w: &[u64; WORDS], up: bool) {
    let at = (0..MEMBERS)
        .find(|&i| INO[i].load(Acquire) == ino && COUNT[i].load(Acquire) > 0 && matches(i, w));
    match (at, up) {
        (Some(i), true) => {
            COUNT[i].fetch_add(1, AcqRel);
        }
        (Some(i), false) => {
            if COUNT[i].fetch_sub(1, AcqRel) == 1 {
                INO[i].store(0, Release);
            }
        }
        (None, true) => {
            // Claimed under a mark no inode has, published once its value
            // is in (a checkpoint may freeze this thread in between). Two
            // threads adding the same membership at once may make two
            // entries: each is added again as often as it counts.
            let free = INO
                .iter()
                .position(|i| i.compare_exchange(0, CLAIMED, AcqRel, Acquire).is_ok());
            match free {
                Some(i) => {
                    SEEN[i].store(false, Relaxed);
                    for (a, b) in REQ[i].iter().zip(w) {
                        a.store(*b, Release);
                    }
                    COUNT[i].store(1, Release);
                    INO[i].store(ino, Release);
                }
                None => FULL.store(true, Release),
            }
        }
        // Dropped one the kernel had before ckpt's wrapper saw it (or
        // one of a full table): nothing kept.
        (None, false) => {}
    }
}

/// Socket `fd`'s memberships as options of its image (SOL_PACKET,
/// PACKET_ADD_MEMBERSHIP, a `packet_mreq_max`), each as often as it was
/// added; one with no value when some membership found no room (said at
/// checkpoint). Runs frozen (pushes into the scratch arena's Vec).
pub fn snapshot(fd: i32, out: &mut Vec<SockOpt>) {
    let Some(ino) = inode(fd) else { return };
    if lost() || INHERITED.iter().any(|i| i.load(Acquire) == ino) {
        out.push(SockOpt {
            level: libc::SOL_PACKET,
            name: ADD_MEMBERSHIP,
            value: Vec::new(),
        });
    }
    for i in 0..MEMBERS {
        if INO[i].load(Acquire) != ino {
            continue;
        }
        SEEN[i].store(true, Relaxed);
        let mut value = vec![0u8; MREQ];
        for (k, w) in REQ[i].iter().enumerate() {
            value[8 * k..8 * k + 8].copy_from_slice(&w.load(Acquire).to_ne_bytes());
        }
        for _ in 0..COUNT[i].load(Acquire) {
            out.push(SockOpt {
                level: libc::SOL_PACKET,
                name: ADD_MEMBERSHIP,
                value: value.clone(),
            });
        }
    }
}

/// Each kept membership: the socket's inode, the count and the
/// membership. No allocation (see `across_exec`).
pub fn each_membership(mut f: impl FnMut(u64, u32, &[u8; MREQ])) {
    for i in 0..MEMBERS {
        let ino = INO[i].load(Acquire);
        let count = COUNT[i].load(Acquire);
        if ino == 0 || ino == CLAIMED || count == 0 {
            continue;
        }
        let mut m = [0u8; MREQ];
        for (k, w) in REQ[i].iter().enumerate() {
            m[8 * k..8 * k + 8].copy_from_slice(&w.load(Acquire).to_ne_bytes());
        }
        f(ino, count, &m);
    }
}

/// Keep a membership the program before exec kept (`across_exec`),
/// `count` times.
pub fn keep(ino: u64, m: &[u8; MREQ], count: u32) {
    if let Some(m) = normalized(m) {
        let w = words(&m);
        for _ in 0..count.min(1 << 16) {
            add(ino, &w, true);
        }
    }
}

/// At start-up, once what came across exec was kept (`across_exec`):
/// note the packet sockets the program already holds that nothing is
/// known of. Before any other thread runs.
pub fn note_inherited() {
    let Ok(dir) = crate::sys::openat(
        libc::AT_FDCWD,
        c"/proc/self/fd",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    ) else {
        return;
    };
    let mut n = 0;
    crate::sys::for_each_numeric_entry(dir, |fd| {
        let fd = fd as i32;
        let mut domain: i32 = 0;
        let mut len = 4u32;
        // SAFETY: getsockopt into a local int (fails on what is no socket).
        let packet = fd != dir
            && unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_DOMAIN,
                    (&mut domain as *mut i32).cast(),
                    &mut len,
                )
            } == 0
            && domain == libc::AF_PACKET;
        let Some(ino) = packet.then(|| inode(fd)).flatten() else {
            return;
        };
        let known = (0..MEMBERS).any(|i| INO[i].load(Acquire) == ino);
        if !known {
            if n < INHERITED_MAX {
                INHERITED[n].store(ino, Release);
                n += 1;
            } else {
                FULL.store(true, Release);
            }
        }
    });
    crate::sys::close(dir);
}

/// Some membership was not kept (before exec).
pub fn mark_lost() {
    FULL.store(true, Release);
}

/// Whether a membership ever found no room to be kept.
pub fn lost() -> bool {
    FULL.load(Acquire)
}

/// Frozen, once every descriptor was looked at: free the entries of
/// sockets no longer open.
pub fn sweep() {
    for (i, seen) in SEEN.iter().enumerate() {
        let ino = INO[i].load(Acquire);
        if !seen.swap(false, Relaxed) && ino != 0 && ino != CLAIMED {
            INO[i].store(0, Release);
        }
    }
}

/// Post-restart, before the descriptors are made again: the table came
/// back with the image and names the killed process's sockets, whose
/// inode numbers a new socket may have now (after a reboot).
pub fn forget_all() {
    for i in INO.iter().chain(&INHERITED) {
        i.store(0, Release);
    }
}

/// Add the memberships among `options` to socket `fd`, made again; what
/// the kernel refuses is returned, one line each. Post-restart.
pub fn restore(fd: i32, options: &[SockOpt]) -> Vec<String> {
    let mut failed = Vec::new();
    for o in options.iter().filter(|o| is_membership(o)) {
        // SAFETY: setsockopt from a live buffer of its length.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                ADD_MEMBERSHIP,
                o.value.as_ptr().cast(),
                o.value.len() as u32,
            )
        };
        if r != 0 {
            failed.push(format!(
                "{}: {}",
                shown(&o.value),
                std::io::Error::last_os_error()
            ));
        }
    }
    failed
}

/// Keep the memberships among `options` again for socket `fd` (at its
/// number once every descriptor is back). Post-restart.
pub fn keep_again(fd: i32, options: &[SockOpt]) {
    for o in options.iter().filter(|o| is_membership(o)) {
        // SAFETY: the option's live bytes.
        unsafe { record(fd, ADD_MEMBERSHIP, o.value.as_ptr(), o.value.len() as u32) };
    }
}

/// A membership kept in an image (not the mark of one that found no
/// room).
fn is_membership(o: &SockOpt) -> bool {
    (o.level, o.name) == (libc::SOL_PACKET, ADD_MEMBERSHIP) && !o.value.is_empty()
}

/// Whether a socket's image says some packet membership may be missing
/// from it (the table was full at some point).
pub fn some_unknown(options: &[SockOpt]) -> bool {
    options
        .iter()
        .any(|o| (o.level, o.name) == (libc::SOL_PACKET, ADD_MEMBERSHIP) && o.value.is_empty())
}

/// A membership as people read it: "promiscuous mode on interface 1".
pub fn shown(m: &[u8]) -> String {
    let word = |at: usize| {
        m.get(at..at + 2)
            .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]))
    };
    let ifindex = m
        .get(..4)
        .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap_or([0; 4])));
    let alen = (word(6) as usize).min(m.len().saturating_sub(8));
    let addr: Vec<String> = m[8.min(m.len())..8 + alen]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let what = match word(4) {
        0 => format!("multicast address {}", addr.join(":")),
        1 => "promiscuous mode".to_string(),
        2 => "all-multicast mode".to_string(),
        3 => format!("unicast address {}", addr.join(":")),
        t => format!("membership of type {t}"),
    };
    format!("{what} on interface {ifindex}")
}

/// Fanout types whose steering is a BPF program the program gave
/// (PACKET_FANOUT_CBPF, PACKET_FANOUT_EBPF): not read back.
pub fn fanout_by_program(value: u32) -> bool {
    matches!((value >> 16) & 0xff, 6 | 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet_mreq(ifindex: i32, typ: u16, addr: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; MREQ_MIN.max(8 + addr.len())];
        m[..4].copy_from_slice(&ifindex.to_ne_bytes());
        m[4..6].copy_from_slice(&typ.to_ne_bytes());
        m[6..8].copy_from_slice(&(addr.len() as u16).to_ne_bytes());
        m[8..8 + addr.len()].copy_from_slice(addr);
        m
    }

    fn kept(fd: i32) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        snapshot(fd, &mut out);
        out.into_iter().map(|o| o.value).collect()
    }

    /// Memberships are counted as the kernel counts them (bytes past the
    /// address length do not tell two apart), dropped to zero they go,
    /// and a sweep frees what no socket matched.
    #[test]
    fn memberships_are_counted_and_swept() {
        // SAFETY: sockets take no pointers (UDP: any socket has an inode).
        let (a, b) = unsafe {
            (
                libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0),
                libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0),
            )
        };
        assert!(a >= 0 && b >= 0);
        let promisc = packet_mreq(1, 1, &[]);
        let mut mcast = packet_mreq(1, 0, &[1, 0, 0x5e, 0, 0, 1]);
        let rec = |fd: i32, name: i32, m: &[u8]| {
            // SAFETY: a live buffer of its length.
            unsafe { record(fd, name, m.as_ptr(), m.len() as u32) }
        };
        rec(a, ADD_MEMBERSHIP, &promisc);
        rec(a, ADD_MEMBERSHIP, &mcast);
        mcast[15] = 0xee; // past the address: the same membership
        rec(a, ADD_MEMBERSHIP, &mcast);
        rec(b, ADD_MEMBERSHIP, &promisc);
        let got = kept(a);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(shown(&got[0]), "promiscuous mode on interface 1");
        assert_eq!(
            shown(&got[1]),
            "multicast address 01:00:5e:00:00:01 on interface 1"
        );
        assert_eq!(got[1], got[2]);
        rec(a, DROP_MEMBERSHIP, &mcast);
        rec(a, DROP_MEMBERSHIP, &promisc);
        assert_eq!(kept(a).len(), 1);
        rec(a, DROP_MEMBERSHIP, &mcast);
        assert!(kept(a).is_empty());
        sweep(); // b was not looked at since its record: freed
        assert!(kept(b).is_empty());
        // Too short for the kernel: not a membership.
        rec(a, ADD_MEMBERSHIP, &promisc[..8]);
        assert!(kept(a).is_empty());
        // SAFETY: closing our own sockets.
        unsafe {
            libc::close(a);
            libc::close(b);
        }
    }
}
