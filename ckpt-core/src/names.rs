//! File names as an image holds them.
//!
//! The kernel's names are bytes; the image's are UTF-8 strings. A name
//! that is not UTF-8 (a Latin-1 file name, say) must come back as the very
//! same bytes: read lossily, a restart would open, or make, another file.
//! So each byte that is not part of valid UTF-8 is written as a NUL and
//! two hex digits. A path never holds a NUL, so nothing else reads this
//! way, and everything else in the name stays as it was ("/", " (deleted)",
//! "anon_inode:", "/memfd:"): the checks made on names still hold.
//!
//! Verbs: [`from_bytes`] (checkpoint: the kernel's bytes to the image's
//! name; [`read_proc`] for a whole /proc file such as `maps`), [`c`] and
//! [`path`] (restart: the name to the kernel's bytes), [`shown`] (for
//! messages).

use std::borrow::Cow;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The image's name for the kernel's bytes `b` (the same text when `b` is
/// UTF-8). Allocates; no locks.
pub fn from_bytes(b: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(b) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(b.len() + 8);
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        for &x in chunk.invalid() {
            out.push('\0');
            out.push(HEX[(x >> 4) as usize] as char);
            out.push(HEX[(x & 15) as usize] as char);
        }
    }
    out
}

/// A /proc file (`maps`, `smaps`) with every name in it as
/// [`from_bytes`] writes it (`std::fs::read_to_string` fails on a mapped
/// file whose name is not UTF-8).
pub fn read_proc(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    std::fs::read(path).map(|b| from_bytes(&b))
}

/// The name of a file mapped at `dev`/`ino` as `/proc/PID/maps` writes it
/// (`path`, already through [`from_bytes`]): the kernel writes a newline
/// in a name as the four characters `\012`, which a name may also hold
/// as such. The name with newlines is taken when it leads to that very
/// file; else `path` as it is. No lock.
pub fn from_maps(path: &str, dev: u64, ino: u64) -> String {
    if !path.contains("\\012") || ino == 0 || path.ends_with(" (deleted)") {
        return path.to_owned();
    }
    let unescaped = path.replace("\\012", "\n");
    let Some(c) = c(&unescaped) else {
        return path.to_owned();
    };
    if crate::sys::stat_path(&c, false).is_some_and(|st| st.st_ino == ino && st.st_dev == dev) {
        unescaped
    } else {
        path.to_owned()
    }
}

/// The name a file the maps call "DIR/NAME (deleted)" (`dev`/`ino`)
/// still has in DIR, when it has one: glibc's `sem_open` makes a named
/// semaphore under a temporary name, maps it, links it to its real name
/// (`/dev/shm/sem.NAME`) and removes the temporary one, so the creator's
/// map names a deleted file that other processes open by its real name.
/// None when no entry of DIR is that file. Raw system calls, no lock.
pub fn linked_name(path: &str, dev: u64, ino: u64) -> Option<String> {
    let gone = path.strip_suffix(" (deleted)")?;
    let slash = gone.rfind('/')?;
    let dir = if slash == 0 { "/" } else { &gone[..slash] };
    let dir_c = c(dir)?;
    let fd = crate::sys::openat(
        libc::AT_FDCWD,
        &dir_c,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )
    .ok()?;
    let mut found: Option<String> = None;
    crate::sys::for_each_entry(fd, |i, name| {
        if found.is_none() && i == ino && name != b"." && name != b".." {
            found = Some(format!(
                "{}/{}",
                dir.trim_end_matches('/'),
                from_bytes(name)
            ));
        }
    });
    crate::sys::close(fd);
    let name = found?;
    let st = crate::sys::stat_path(&c(&name)?, true)?;
    (st.st_ino == ino && st.st_dev == dev).then_some(name)
}

/// The kernel's bytes for the image's name `s`.
pub fn to_bytes(s: &str) -> Cow<'_, [u8]> {
    if !s.contains('\0') {
        return Cow::Borrowed(s.as_bytes());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let digit = |x: u8| (x as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(digit),
            b.get(i + 2).copied().and_then(digit),
        ) {
            (0, Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (x, _, _) => {
                out.push(x);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// The image's name `s` for a system call; `None` if it cannot be one
/// (a NUL not written by [`from_bytes`]).
pub fn c(s: &str) -> Option<CString> {
    CString::new(to_bytes(s).into_owned()).ok()
}

/// The image's name `s` as a path for `std::fs`.
pub fn path(s: &str) -> PathBuf {
    PathBuf::from(std::ffi::OsStr::from_bytes(&to_bytes(s)))
}

/// The image's name `s` for a message: bytes that are not UTF-8 as `\xNN`.
pub fn shown(s: &str) -> Cow<'_, str> {
    if !s.contains('\0') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut it = s.chars();
    while let Some(ch) = it.next() {
        if ch == '\0' {
            out.push_str("\\x");
            out.extend(it.by_ref().take(2));
        } else {
            out.push(ch);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_names_are_kept_as_they_are() {
        for s in ["/tmp/a b", "/tmp/été", "pipe:[12]", "/x (deleted)", ""] {
            assert_eq!(from_bytes(s.as_bytes()), s);
            assert_eq!(to_bytes(s), s.as_bytes());
            assert_eq!(shown(s), s);
        }
    }

    #[test]
    fn other_bytes_come_back_exactly() {
        let raw: &[u8] = b"/tmp/bad\xff\xfename\xc3 (deleted)";
        let s = from_bytes(raw);
        assert!(s.starts_with("/tmp/bad") && s.ends_with(" (deleted)"));
        assert_eq!(&*to_bytes(&s), raw);
        assert_eq!(c(&s).unwrap().as_bytes(), raw);
        assert_eq!(path(&s).as_os_str().as_bytes(), raw);
        assert_eq!(shown(&s), "/tmp/bad\\xff\\xfename\\xc3 (deleted)");
        // Every byte value, alone and among valid text.
        for x in 0u8..=255 {
            let raw = [b'/', x, b'a', 0xe2, 0x82, 0xac, x];
            if raw.contains(&0) {
                continue;
            }
            assert_eq!(&*to_bytes(&from_bytes(&raw)), &raw[..], "byte {x:#x}");
        }
    }
}
