//! What ckpt's `setsockopt` wrapper kept of sockets (an IP_MULTICAST_IF
//! named by index, `multicast`; a packet socket's memberships, `packet`)
//! goes across exec with the sockets themselves: the exec wrappers add
//! it to the new program's environment as `CKPT_SOCKOPTS`, which the new
//! program's shim reads at start-up and removes. Without it, a socket
//! kept open across exec came back at restart without what only the
//! wrapper had seen.
//!
//! The value: entries separated by ',', `m<inode>.<value>` (multicast,
//! hex) and `p<inode>.<count>.<membership>` (packet, hex; the membership
//! as the kernel's 40-byte `packet_mreq_max`), then `!` when some did
//! not fit (or a table had found no room): the new program then says so
//! at checkpoint as if its own table had been full. Entries of sockets
//! closed at exec (close-on-exec) go too: the first checkpoint sweeps
//! them.

/// The variable's name.
pub const VAR: &[u8] = b"CKPT_SOCKOPTS";

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A writer into a fixed buffer: no allocation (the exec wrappers may run
/// in a vfork child sharing the parent's memory).
struct Out<'a> {
    buf: &'a mut [u8],
    n: usize,
    full: bool,
}

impl Out<'_> {
    fn bytes(&mut self, b: &[u8]) -> bool {
        // Room for the NUL and a final '!' always stays.
        if self.full || self.n + b.len() + 2 > self.buf.len() {
            self.full = true;
            return false;
        }
        self.buf[self.n..self.n + b.len()].copy_from_slice(b);
        self.n += b.len();
        true
    }

    fn hex(&mut self, v: u64) -> bool {
        let mut t = [0u8; 16];
        let mut k = t.len();
        let mut v = v;
        loop {
            k -= 1;
            t[k] = HEX[(v & 15) as usize];
            v >>= 4;
            if v == 0 {
                break;
            }
        }
        self.bytes(&t[k..])
    }

    /// One entry: written whole or not at all.
    fn entry(&mut self, f: impl FnOnce(&mut Self) -> bool) {
        let at = self.n;
        if !(self.n == 0 || self.buf[self.n - 1] == b'=' || self.bytes(b",")) || !f(self) {
            self.n = at;
            self.full = true;
        }
    }
}

/// Write `CKPT_SOCKOPTS=...` NUL-terminated into `buf`; false when there
/// is nothing to carry (`buf` then holds nothing to use). No
/// allocation, no lock.
pub fn export(buf: &mut [u8]) -> bool {
    let lost = super::multicast::interfaces_lost() || super::packet::lost();
    if buf.len() < VAR.len() + 3 {
        return false;
    }
    let mut o = Out {
        buf,
        n: 0,
        full: false,
    };
    o.bytes(VAR);
    o.bytes(b"=");
    let empty = o.n;
    super::multicast::each_interface(|ino, v| {
        o.entry(|o| o.bytes(b"m") && o.hex(ino) && o.bytes(b".") && o.hex(v));
    });
    super::packet::each_membership(|ino, count, m| {
        o.entry(|o| {
            o.bytes(b"p")
                && o.hex(ino)
                && o.bytes(b".")
                && o.hex(count as u64)
                && o.bytes(b".")
                && m.iter()
                    .all(|&b| o.bytes(&[HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]))
        });
    });
    let n = o.n;
    let bang = o.full || lost;
    if n == empty && !bang {
        return false;
    }
    if bang {
        o.buf[n] = b'!';
        o.buf[n + 1] = 0;
    } else {
        o.buf[n] = 0;
    }
    true
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| {
        let d = (c as char).to_digit(16)?;
        Some(v << 4 | d as u64)
    })
}

/// Keep again what the program before exec kept (the variable's value).
pub fn import(value: &[u8]) {
    let (value, lost) = match value.strip_suffix(b"!") {
        Some(v) => (v, true),
        None => (value, false),
    };
    if lost {
        super::multicast::mark_lost();
        super::packet::mark_lost();
    }
    for e in value.split(|&c| c == b',') {
        let Some((&kind, rest)) = e.split_first() else {
            continue;
        };
        let mut parts = rest.split(|&c| c == b'.');
        let ino = parts.next().and_then(parse_hex);
        match (kind, ino) {
            (b'm', Some(ino)) => {
                if let Some(v) = parts.next().and_then(parse_hex) {
                    super::multicast::keep_interface(ino, v);
                }
            }
            (b'p', Some(ino)) => {
                let count = parts.next().and_then(parse_hex);
                let m = parts.next().filter(|m| m.len() == 2 * super::packet::MREQ);
                if let (Some(count), Some(m)) = (count, m) {
                    let mut bytes = [0u8; super::packet::MREQ];
                    for (k, b) in bytes.iter_mut().enumerate() {
                        *b = parse_hex(&m[2 * k..2 * k + 2]).unwrap_or(0) as u8;
                    }
                    super::packet::keep(ino, &bytes, count.min(u32::MAX as u64) as u32);
                }
            }
            _ => {}
        }
    }
}

/// At start-up: take the variable from the environment, keep what it
/// says. Before any other thread runs (the shim's constructor).
pub fn import_from_env() {
    let name = c"CKPT_SOCKOPTS";
    // SAFETY: getenv of a NUL-terminated name, its value copied before
    // unsetenv takes it out of the environment; no other thread runs yet.
    unsafe {
        let v = libc::getenv(name.as_ptr());
        if v.is_null() {
            return;
        }
        let value = core::ffi::CStr::from_ptr(v).to_bytes().to_vec();
        libc::unsetenv(name.as_ptr());
        import(&value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_entries_are_written_whole_or_not_at_all() {
        let mut buf = [0u8; 12];
        let mut o = Out {
            buf: &mut buf,
            n: 0,
            full: false,
        };
        o.bytes(b"X=");
        o.entry(|o| o.bytes(b"m") && o.hex(0xabc));
        o.entry(|o| o.bytes(b"m") && o.hex(0x123456789));
        assert!(o.full);
        assert_eq!(&o.buf[..o.n], b"X=mabc");
        assert_eq!(parse_hex(b"abc"), Some(0xabc));
        assert_eq!(parse_hex(b"xyz"), None);
        assert_eq!(parse_hex(b""), None);
    }
}
