//! /proc/self/maps, read into a caller's fixed buffer and parsed in place.

use crate::sys;

/// One line of /proc/self/maps.
#[derive(Clone, Copy)]
pub struct Mapping<'a> {
    pub start: u64,
    pub end: u64,
    /// The path or pseudo-name (`[vdso]`, `[stack]`, ...); empty for anonymous memory.
    pub name: &'a [u8],
}

/// Reads all of /proc/self/maps into `buf`; fails if it does not fit.
pub fn read_self(buf: &mut [u8]) -> Result<&[u8], (&'static str, Option<sys::Errno>)> {
    let fd = sys::openat(
        sys::AT_FDCWD,
        b"/proc/self/maps\0",
        sys::O_RDONLY | sys::O_CLOEXEC,
    )
    .map_err(|e| ("cannot open /proc/self/maps", Some(e)))?;
    let mut len = 0;
    let res = loop {
        if len == buf.len() {
            break Err(("/proc/self/maps does not fit the restorer's buffer", None));
        }
        match sys::read(fd, &mut buf[len..]) {
            Ok(0) => break Ok(()),
            Ok(n) => len += n,
            Err(sys::Errno(sys::EINTR)) => {}
            Err(e) => break Err(("cannot read /proc/self/maps", Some(e))),
        }
    };
    let _ = sys::close(fd);
    res.map(|()| &buf[..len])
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

/// Splits off the next space-separated field of `s`.
fn field(s: &[u8]) -> (&[u8], &[u8]) {
    let s = trim_start(s);
    let n = s.iter().position(|&c| c == b' ').unwrap_or(s.len());
    (&s[..n], &s[n..])
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().position(|&c| c != b' ').unwrap_or(s.len());
    &s[n..]
}

/// Parses one line: `start-end perms offset dev inode [name]`.
pub fn parse_line(line: &[u8]) -> Option<Mapping<'_>> {
    let (range, mut rest) = field(line);
    let dash = range.iter().position(|&c| c == b'-')?;
    let start = parse_hex(&range[..dash])?;
    let end = parse_hex(&range[dash + 1..])?;
    for _ in 0..4 {
        let (f, r) = field(rest);
        if f.is_empty() {
            return None;
        }
        rest = r;
    }
    if start >= end {
        return None;
    }
    Some(Mapping {
        start,
        end,
        name: trim_start(rest),
    })
}

/// Iterates over the mappings of a maps buffer; `Err(line)` for a line that
/// does not parse.
pub fn iter(buf: &[u8]) -> impl Iterator<Item = Result<Mapping<'_>, &[u8]>> {
    buf.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| parse_line(l).ok_or(l))
}
