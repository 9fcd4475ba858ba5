//! inotify instances. The kernel lists each watch in fdinfo (wd, inode,
//! mask) but not the path it was added by, so the wrappers record that
//! path (made absolute) per (descriptor, wd).
//!
//! Verbs: `record_watch` / `record_unwatch` (inotify_add_watch /
//! inotify_rm_watch wrappers), `snapshot` (fdinfo + the recorded paths),
//! `restore` (a new instance with every watch at its old wd).

use crate::image::{Fd, InotifyWatch};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// Watches whose path is kept (the table is shared by all instances).
const MAX_WATCHES: usize = 1024;
/// Bytes of a watch's absolute path kept; a longer one is not recorded.
const PATH_LEN: usize = 256;
const PATH_WORDS: usize = PATH_LEN / 8;

/// One recorded watch. `key` = (fd + 1) << 32 | wd, 0 = free; `seq` is odd
/// while the path is being written.
struct Slot {
    key: AtomicU64,
    seq: AtomicU32,
    len: AtomicU32,
    path: [AtomicU64; PATH_WORDS],
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    key: AtomicU64::new(0),
    seq: AtomicU32::new(0),
    len: AtomicU32::new(0),
    path: [const { AtomicU64::new(0) }; PATH_WORDS],
};

static SLOTS: [Slot; MAX_WATCHES] = [EMPTY; MAX_WATCHES];

fn key(fd: i32, wd: i32) -> u64 {
    ((fd as u32 as u64 + 1) << 32) | wd as u32 as u64
}

/// inotify_add_watch(fd, path) returned `wd`. `path` as the program gave
/// it; a relative one is made absolute with the current directory (the
/// kernel resolved it from there). Program thread; no allocation.
pub fn record_watch(fd: i32, wd: i32, path: &[u8]) {
    if fd < 0 || wd < 0 || path.is_empty() {
        return;
    }
    let mut buf = [0u8; PATH_LEN];
    let len = if path[0] == b'/' {
        if path.len() > PATH_LEN {
            return;
        }
        buf[..path.len()].copy_from_slice(path);
        path.len()
    } else {
        // SAFETY: getcwd writes at most PATH_LEN bytes into `buf`.
        if unsafe { libc::getcwd(buf.as_mut_ptr().cast(), PATH_LEN) }.is_null() {
            return;
        }
        let cwd = buf.iter().position(|&b| b == 0).unwrap_or(PATH_LEN);
        let total = cwd + 1 + path.len();
        if total > PATH_LEN {
            return;
        }
        buf[cwd] = b'/';
        buf[cwd + 1..total].copy_from_slice(path);
        total
    };
    let k = key(fd, wd);
    // The same (fd, wd) again (the mask changed, or a new instance at the
    // same number reuses wds), else a free slot, else the first (evicted).
    let slot = SLOTS
        .iter()
        .find(|s| s.key.load(Acquire) == k)
        .or_else(|| {
            SLOTS
                .iter()
                .find(|s| s.key.compare_exchange(0, k, AcqRel, Relaxed).is_ok())
        })
        .unwrap_or(&SLOTS[wd as usize % MAX_WATCHES]);
    let seq = slot.seq.load(Relaxed) | 1;
    slot.seq.store(seq, Relaxed);
    core::sync::atomic::fence(Release);
    slot.key.store(k, Relaxed);
    super::store_path(&slot.path, &buf[..len]);
    slot.len.store(len as u32, Relaxed);
    slot.seq.store(seq.wrapping_add(1), Release);
}

/// inotify_rm_watch(fd, wd) succeeded.
pub fn record_unwatch(fd: i32, wd: i32) {
    let k = key(fd, wd);
    for s in SLOTS.iter() {
        let _ = s.key.compare_exchange(k, 0, AcqRel, Relaxed);
    }
}

/// The recorded paths of watch `wd` (of any descriptor: dup'ed instances
/// share watches), untorn.
fn recorded_paths(wd: i32) -> Vec<String> {
    SLOTS
        .iter()
        .filter_map(|s| {
            let before = s.seq.load(Acquire);
            let k = s.key.load(Relaxed);
            if before & 1 == 1 || k == 0 || k as u32 as i32 != wd {
                return None;
            }
            let len = (s.len.load(Relaxed) as usize).min(PATH_LEN);
            let bytes = super::load_path(&s.path, len);
            (s.seq.load(Acquire) == before).then(|| crate::names::from_bytes(&bytes))
        })
        .collect()
}

/// The watches of inotify descriptor `fd` (its fdinfo text `info`), each
/// with the recorded path that still leads to the watched inode.
pub fn snapshot(info: &[u8]) -> Vec<InotifyWatch> {
    let text = String::from_utf8_lossy(info);
    parse_fdinfo(&text)
        .into_iter()
        .map(|mut w| {
            w.path = recorded_paths(w.wd)
                .into_iter()
                .find(|p| {
                    crate::names::c(p)
                        .and_then(|c| stat(&c))
                        .is_some_and(|(dev, ino)| dev == w.dev && ino == w.ino)
                })
                // Renamed (or its parent) since it was added: where the
                // watched inode is now.
                .or_else(|| path_by_handle(&text, &w));
            w
        })
        .collect()
}

/// Where the inode watch `w` watches is now, found through the file
/// handle fdinfo shows ("fhandle-bytes:8 fhandle-type:1 f_handle:HEX")
/// with open_by_handle_at on its file system's mount (the kernel allows
/// that with CAP_DAC_READ_SEARCH only: else None). Frozen: raw system
/// calls and allocation only.
fn path_by_handle(text: &str, w: &InotifyWatch) -> Option<String> {
    let line = text.lines().find(|l| {
        l.starts_with("inotify ")
            && l.split_whitespace().any(|f| {
                f.strip_prefix("wd:")
                    .and_then(|v| i32::from_str_radix(v, 16).ok())
                    == Some(w.wd)
            })
    })?;
    let field = |k: &str| line.split_whitespace().find_map(|f| f.strip_prefix(k));
    let kind = i32::from_str_radix(field("fhandle-type:")?, 16).ok()?;
    let hex = field("f_handle:")?.as_bytes();
    let bytes: Vec<u8> = hex
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect::<Option<_>>()?;
    // struct file_handle: handle_bytes, handle_type, then the bytes.
    let mut handle = Vec::with_capacity(8 + bytes.len());
    handle.extend_from_slice(&(bytes.len() as u32).to_ne_bytes());
    handle.extend_from_slice(&kind.to_ne_bytes());
    handle.extend_from_slice(&bytes);
    let mount = mount_of(w.dev)?;
    // SAFETY: open_by_handle_at reads a live file_handle of its stated size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount,
            handle.as_ptr(),
            libc::O_PATH | libc::O_CLOEXEC,
        )
    } as i32;
    crate::sys::close(mount);
    if fd < 0 {
        return None;
    }
    let link = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = crate::sys::readlinkat(libc::AT_FDCWD, &link, &mut buf);
    crate::sys::close(fd);
    let path = crate::names::from_bytes(&buf[..n?]);
    let c = crate::names::c(&path)?;
    (stat(&c) == Some((w.dev, w.ino))).then_some(path)
}

/// A descriptor of a mount of the file system of device `dev`,
/// from /proc/self/mountinfo ("ID PARENT MAJ:MIN ROOT MOUNTPOINT ...").
fn mount_of(dev: u64) -> Option<i32> {
    let want = format!("{}:{}", libc::major(dev), libc::minor(dev));
    let info = std::fs::read("/proc/self/mountinfo").ok()?;
    String::from_utf8_lossy(&info).lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        if f.get(2) != Some(&want.as_str()) {
            return None;
        }
        let point = crate::names::c(&unescape_octal(f.get(4)?))?;
        // Not O_PATH: open_by_handle_at refuses one (EBADF).
        crate::sys::openat(
            libc::AT_FDCWD,
            &point,
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
        .ok()
    })
}

/// A mountinfo field, its "\040"-style escapes undone.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let code = (b[i] == b'\\' && i + 4 <= b.len())
            .then(|| u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).ok()?, 8).ok())
            .flatten();
        match code {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    crate::names::from_bytes(&out)
}

fn stat(path: &std::ffi::CStr) -> Option<(u64, u64)> {
    // SAFETY: plain stat into a zeroed struct.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: NUL-terminated path, live stat buffer.
    (unsafe { libc::stat(path.as_ptr(), &mut st) } == 0).then_some((st.st_dev, st.st_ino))
}

/// "inotify wd:1 ino:3c4a7 sdev:fe00000 mask:100 ignored_mask:0 ..." lines
/// (numbers in hex; sdev in the kernel's dev_t encoding, major << 20).
fn parse_fdinfo(text: &str) -> Vec<InotifyWatch> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("inotify ")?;
            let get = |k: &str| {
                rest.split_whitespace()
                    .find_map(|f| f.strip_prefix(k))
                    .and_then(|v| u64::from_str_radix(v, 16).ok())
            };
            let sdev = get("sdev:")?;
            Some(InotifyWatch {
                wd: get("wd:")? as i32,
                mask: get("mask:")? as u32,
                dev: libc::makedev((sdev >> 20) as u32, (sdev & 0xfffff) as u32),
                ino: get("ino:")?,
                path: None,
            })
        })
        .collect()
}

/// A new inotify instance for `f` with each watch at its old wd (the
/// kernel hands out wds in increasing order: numbers in between are taken
/// by a throwaway watch and given back). Returns the descriptor and a
/// warning per watch that could not come back. Post-restart context.
pub fn restore(f: &Fd) -> Result<(i32, Vec<String>), String> {
    let mut flags = libc::IN_NONBLOCK;
    if f.cloexec {
        flags |= libc::IN_CLOEXEC;
    }
    // SAFETY: plain syscall, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_inotify_init1, flags) } as i32;
    if fd < 0 {
        return Err(format!(
            "inotify_init1: errno {}",
            crate::interpose::errno()
        ));
    }
    let filler = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).unwrap_or_default();
    let mut warnings = Vec::new();
    let mut watches: Vec<&InotifyWatch> = f.inotify.iter().flatten().collect();
    watches.sort_by_key(|w| w.wd);
    let add = |path: &std::ffi::CStr, mask: u32| -> i32 {
        // SAFETY: NUL-terminated path; the kernel validates the mask.
        unsafe { libc::syscall(libc::SYS_inotify_add_watch, fd, path.as_ptr(), mask) as i32 }
    };
    let mut next = 1;
    for w in watches {
        let Some(path) = w.path.as_deref().and_then(crate::names::c) else {
            warnings.push(format!(
                "inotify descriptor {}: watch {} (inode {}) has no path that leads to it; not watched",
                f.fd, w.wd, w.ino
            ));
            continue;
        };
        while next < w.wd {
            let k = add(&filler, libc::IN_ACCESS);
            if k < 0 {
                break;
            }
            // SAFETY: removing the throwaway watch just added.
            unsafe { libc::syscall(libc::SYS_inotify_rm_watch, fd, k) };
            next = k + 1;
        }
        let got = add(&path, w.mask);
        if got != w.wd {
            warnings.push(format!(
                "inotify descriptor {}: {} came back as watch {got}, not {}",
                f.fd,
                path.to_string_lossy(),
                w.wd
            ));
        }
        next = next.max(got + 1);
    }
    drain(fd);
    if f.flags & libc::O_NONBLOCK == 0 {
        // SAFETY: F_SETFL on the descriptor we created.
        unsafe {
            libc::syscall(
                libc::SYS_fcntl,
                fd,
                libc::F_SETFL,
                f.flags & !libc::O_ACCMODE,
            )
        };
    }
    Ok((fd, warnings))
}

/// Read away the IN_IGNORED events the throwaway watches left.
fn drain(fd: i32) {
    let mut buf = [0u8; 4096];
    // SAFETY: reading into a stack buffer from our non-blocking instance.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_octal("/mnt/a\\040b\\011c"), "/mnt/a b\tc");
        assert_eq!(unescape_octal("/plain\\"), "/plain\\");
    }

    #[test]
    fn fdinfo_watches_are_parsed() {
        let text = "pos:\t0\nflags:\t02004000\nmnt_id:\t17\nino:\t1038\n\
inotify wd:4 ino:3c4a7 sdev:fe00000 mask:100 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:a7c4030000000000\n\
inotify wd:1a ino:2 sdev:800001 mask:8000fce ignored_mask:0\n";
        let w = parse_fdinfo(text);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].wd, w[0].ino, w[0].mask), (4, 0x3c4a7, 0x100));
        assert_eq!(w[0].dev, libc::makedev(0xfe, 0));
        assert_eq!((w[1].wd, w[1].mask), (26, 0x8000fce));
        assert_eq!(w[1].dev, libc::makedev(8, 1));
    }

    #[test]
    fn recorded_paths_are_found_by_wd() {
        record_watch(900, 7, b"/tmp/some dir");
        record_watch(901, 7, b"/tmp/other");
        record_unwatch(901, 7);
        assert_eq!(recorded_paths(7), ["/tmp/some dir"]);
        record_unwatch(900, 7);
        assert!(recorded_paths(7).is_empty());
    }
}
