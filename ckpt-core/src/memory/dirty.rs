//! Which pages of private anonymous memory the program wrote since its
//! last checkpoint, so the next image stores only those and refers to the
//! previous image for the rest (incremental checkpoints).
//!
//! How: userfaultfd write-protection in asynchronous mode
//! (`UFFD_FEATURE_WP_ASYNC`, Linux 6.7). Each checkpoint, while the program
//! is frozen, every private anonymous region is registered for
//! write-protection (again: a region mapped, moved or re-mapped since is a
//! new, unregistered one, and the kernel's scan silently skips those), then
//! one `PAGEMAP_SCAN` with `PM_SCAN_WP_MATCHING` lists the pages whose
//! protection is gone — written since the previous round, or new — and
//! protects them again, atomically. The kernel resolves a later write to a
//! protected page itself (no handler thread: one minor fault per page per
//! round, about 1 µs here) and drops the page's protection, which is all
//! the next round reads.
//!
//! What makes a page count as unchanged is exactly "protected at the
//! previous round and not written since": moving a page (mremap) or
//! forking clears its protection, zapping it (MADV_DONTNEED) makes it
//! missing, and closing the userfaultfd clears every protection. A page
//! that is unchanged has the content it had at the previous round's
//! freeze — the content the previous image stored (or zero, where it
//! stored nothing). Except what the checkpointing thread itself writes
//! after the scan, before the writer forks (its stack and TLS, ckpt's
//! arena): the writer never takes those from an earlier image
//! (`memory::Own`).
//!
//! Verbs: [`collect`] (frozen, in the coordinating thread: the round),
//! [`round`] (in the writer child: what the round found), [`forget`]
//! (post-restart, and in a forked child: nothing is tracked any more).
//!
//! Off with `CKPT_INCREMENTAL=0` (a program that uses userfaultfd
//! write-protection itself needs that: a range takes one registration).

use crate::image::{Region, RegionKind};
use crate::sys;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::*};
use std::path::PathBuf;

const SYS_USERFAULTFD: i64 = 323;
const UFFD_USER_MODE_ONLY: i64 = 1;
const UFFD_API: u64 = 0xAA;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
/// `_IOWR(0xAA, 0x3F, struct uffdio_api)`.
const UFFDIO_API: u64 = 0xc018_aa3f;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)`.
const UFFDIO_REGISTER: u64 = 0xc020_aa00;
const UFFDIO_REGISTER_MODE_WP: u64 = 2;
const PM_SCAN_WP_MATCHING: u64 = 1;
const PAGE_IS_WRITTEN: u64 = 1 << 1;
const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_SWAPPED: u64 = 1 << 4;
/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: u64 = 0xc060_6610;

/// The program's userfaultfd (ckpt's own descriptor), -1 when none.
static UFFD: AtomicI32 = AtomicI32::new(-1);
/// The process that opened it (a forked child starts over).
static UFFD_PID: AtomicI32 = AtomicI32::new(0);
/// Set once the kernel refused (no WP_ASYNC, or userfaultfd disallowed):
/// every checkpoint is then whole, without trying again.
static UNAVAILABLE: AtomicBool = AtomicBool::new(false);
static DISABLED: AtomicBool = AtomicBool::new(false);
/// The round of the previous checkpoint (0: none since tracking began).
static LAST_ROUND: AtomicU64 = AtomicU64::new(0);

/// What one round found: read by the writer child (a fork of the frozen
/// program, so it sees this as the coordinator left it).
pub struct Round {
    /// This round's id (recorded in the image as `dirty_round`).
    pub id: u64,
    /// The previous round's id: the base image must carry it.
    pub prev: u64,
    /// The image written at the previous round (its final path).
    pub base: Option<PathBuf>,
    /// Ranges registered and scanned this round, in address order.
    pub tracked: Vec<(u64, u64)>,
    /// Pages written since the previous round (within `tracked`), in order.
    pub written: Vec<(u64, u64)>,
    /// Pages present or in swap (within `tracked`), in order: written or
    /// not. A region the writer's fork leaves out (`stage`) is read from
    /// this list, not from the fork's pagemap.
    pub present: Vec<(u64, u64)>,
    /// The tracked ranges that were tracked with the same bounds at the
    /// previous round: the base image holds each as one region.
    pub stable: Vec<(u64, u64)>,
}

struct Slot(UnsafeCell<Option<Round>>);
// SAFETY: only the checkpoint coordinator writes it, while every other
// thread is frozen (checkpoints never overlap); the writer child reads its
// own copy.
unsafe impl Sync for Slot {}
static ROUND: Slot = Slot(UnsafeCell::new(None));
/// The final path of the image taken at the previous round, kept out of
/// the scratch arena (which each checkpoint resets). Same rule as ROUND.
struct BaseSlot(UnsafeCell<[u8; 4096]>, AtomicU64);
// SAFETY: as `Slot`.
unsafe impl Sync for BaseSlot {}
static BASE: BaseSlot = BaseSlot(UnsafeCell::new([0; 4096]), AtomicU64::new(0));
/// Most ranges of a round remembered for the next (`Round::stable`).
const MAX_PREV: usize = 4096;
/// The ranges the previous round tracked, in address order, kept out of
/// the scratch arena. Same rule as ROUND.
struct PrevSlot(UnsafeCell<[(u64, u64); MAX_PREV]>, AtomicU64);
// SAFETY: as `Slot`.
unsafe impl Sync for PrevSlot {}
static PREV: PrevSlot = PrevSlot(UnsafeCell::new([(0, 0); MAX_PREV]), AtomicU64::new(0));

/// Called once at start-up with the setting (`CKPT_INCREMENTAL`).
pub fn configure(enabled: bool) {
    DISABLED.store(!enabled, Relaxed);
}

/// Frozen, in the coordinating thread: run this round over `maps` (this
/// process's regions, read while frozen) and leave what it found for the
/// writer. `image` is where this checkpoint's image will be (None: an
/// image the next one must not refer to, such as a tree member).
/// Scratch allocation only; never fails (a round that cannot track
/// leaves the next image whole).
pub fn collect(maps: &[Region], image: Option<&std::path::Path>) {
    // SAFETY: see `Slot`: frozen, coordinator only.
    let slot = unsafe { &mut *ROUND.0.get() };
    *slot = None;
    if UFFD_PID.load(Acquire) != sys::getpid() {
        // A forked child (or tracking never began): the previous round
        // and image were another process's.
        LAST_ROUND.store(0, Release);
        BASE.1.store(0, Release);
    }
    let base = take_base();
    set_base(image);
    let prev = LAST_ROUND.swap(0, AcqRel);
    let Some(fd) = uffd() else { return };
    let id = round_id();
    let mut r = Round {
        id,
        prev,
        base,
        tracked: Vec::new(),
        written: Vec::new(),
        present: Vec::new(),
        stable: Vec::new(),
    };
    let pagemap = match sys::openat(libc::AT_FDCWD, c"/proc/self/pagemap", libc::O_RDONLY) {
        Ok(p) => p,
        Err(_) => return,
    };
    for m in maps
        .iter()
        .filter(|m| m.kind == RegionKind::Anonymous && !m.shared)
    {
        if register(fd, m.start, m.end).is_err() {
            continue;
        }
        if scan(pagemap, m.start, m.end, &mut r.written, &mut r.present).is_err() {
            // Pages of it may be protected now without being listed:
            // nothing of this round may be trusted.
            sys::close(pagemap);
            return;
        }
        r.tracked.push((m.start, m.end));
    }
    sys::close(pagemap);
    // SAFETY: see `PrevSlot`: frozen, coordinator only.
    let kept = unsafe { &mut *PREV.0.get() };
    let n = PREV.1.swap(0, AcqRel) as usize;
    if prev != 0 {
        let before = &kept[..n.min(MAX_PREV)];
        r.stable = r
            .tracked
            .iter()
            .filter(|t| before.binary_search(t).is_ok())
            .copied()
            .collect();
    }
    let n = r.tracked.len().min(MAX_PREV);
    kept[..n].copy_from_slice(&r.tracked[..n]);
    PREV.1.store(n as u64, Release);
    LAST_ROUND.store(id, Release);
    *slot = Some(r);
}

/// What this checkpoint's round found (None: the image must be whole):
/// in the writer child, and in the coordinator after `collect`.
pub fn round() -> Option<&'static Round> {
    // SAFETY: the writer child is single-threaded and nothing writes the
    // slot there.
    unsafe { (*ROUND.0.get()).as_ref() }
}

/// Post-restart (the descriptor number is no longer ours, and nothing is
/// protected in a restored process) and whenever tracking must start over:
/// the next image is whole.
pub fn forget() {
    let fd = UFFD.swap(-1, AcqRel);
    if fd >= 0 {
        crate::files::set_own(fd, false);
    }
    LAST_ROUND.store(0, Release);
    BASE.1.store(0, Release);
}

fn take_base() -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let len = BASE.1.swap(0, AcqRel) as usize;
    if len == 0 {
        return None;
    }
    // SAFETY: see `BaseSlot`.
    let bytes = unsafe { &(&*BASE.0.get())[..len.min(4096)] };
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

/// Frozen, after `collect`: this checkpoint's image will be at `image`
/// after all (the next round builds on it there).
pub fn image_moves_to(image: &std::path::Path) {
    set_base(Some(image));
}

fn set_base(image: Option<&std::path::Path>) {
    use std::os::unix::ffi::OsStrExt;
    let Some(p) = image else { return };
    let b = p.as_os_str().as_bytes();
    // SAFETY: see `BaseSlot`.
    let buf = unsafe { &mut *BASE.0.get() };
    if b.len() <= buf.len() {
        buf[..b.len()].copy_from_slice(b);
        BASE.1.store(b.len() as u64, Release);
    }
}

/// A new random round id (never 0).
fn round_id() -> u64 {
    let mut v = 0u64;
    // SAFETY: getrandom into a local u64.
    unsafe { libc::getrandom((&mut v as *mut u64).cast(), 8, libc::GRND_NONBLOCK) };
    v ^ sys::monotonic_ns() | 1
}

/// This process's userfaultfd with asynchronous write-protection, opened
/// on first use (and again in a forked child, whose regions the parent's
/// does not cover). None when tracking is off or the kernel refuses.
fn uffd() -> Option<i32> {
    if DISABLED.load(Relaxed) || UNAVAILABLE.load(Relaxed) {
        return None;
    }
    let pid = sys::getpid();
    let fd = UFFD.load(Acquire);
    if fd >= 0 && UFFD_PID.load(Acquire) == pid {
        return Some(fd);
    }
    if fd >= 0 {
        // Inherited from the parent: its registrations are not ours.
        UFFD.store(-1, Release);
        crate::files::set_own(fd, false);
        sys::close(fd);
    }
    // SAFETY: userfaultfd takes flags only.
    let raw = unsafe {
        libc::syscall(
            SYS_USERFAULTFD,
            libc::O_CLOEXEC as i64 | UFFD_USER_MODE_ONLY,
        )
    } as i32;
    if raw < 0 {
        UNAVAILABLE.store(true, Relaxed);
        return None;
    }
    // struct uffdio_api { api, features, ioctls }
    let mut api = [UFFD_API, UFFD_FEATURE_WP_ASYNC, 0];
    // SAFETY: UFFDIO_API with a struct of the size its number encodes.
    if unsafe { libc::ioctl(raw, UFFDIO_API as _, api.as_mut_ptr()) } != 0 {
        sys::close(raw);
        UNAVAILABLE.store(true, Relaxed);
        return None;
    }
    // Out of the program's way, near the limit, like ckpt's other ones.
    let fd = match sys::dup_high(raw) {
        Ok(h) => {
            sys::close(raw);
            h
        }
        Err(_) => raw,
    };
    UFFD.store(fd, Release);
    UFFD_PID.store(pid, Release);
    crate::files::set_own_at(fd, &UFFD);
    Some(fd)
}

fn register(fd: i32, start: u64, end: u64) -> Result<(), ()> {
    // struct uffdio_register { range { start, len }, mode, ioctls }
    let mut reg = [start, end - start, UFFDIO_REGISTER_MODE_WP, 0];
    // SAFETY: UFFDIO_REGISTER with a struct of the size its number encodes.
    let r = unsafe { libc::ioctl(fd, UFFDIO_REGISTER as _, reg.as_mut_ptr()) };
    if r == 0 {
        Ok(())
    } else {
        Err(())
    }
}

/// `struct pm_scan_arg` of linux/fs.h.
#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// Append the written pages of `[start, end)` to `written` and every page
/// there (present or swapped) to `present` (each merging with its last
/// range when adjacent), and protect the written ones again.
fn scan(
    pagemap: i32,
    start: u64,
    end: u64,
    written: &mut Vec<(u64, u64)>,
    present: &mut Vec<(u64, u64)>,
) -> Result<(), ()> {
    let add = |out: &mut Vec<(u64, u64)>, s: u64, e: u64| match out.last_mut() {
        Some(last) if last.1 == s => last.1 = e,
        _ => out.push((s, e)),
    };
    let mut vec = [[0u64; 3]; 256];
    let mut addr = start;
    while addr < end {
        let mut arg = PmScanArg {
            size: core::mem::size_of::<PmScanArg>() as u64,
            flags: PM_SCAN_WP_MATCHING,
            start: addr,
            end,
            vec: vec.as_mut_ptr() as u64,
            vec_len: vec.len() as u64,
            // Every page that exists, its WRITTEN category returned;
            // protecting one that is protected already changes nothing.
            // Only pages that exist: the kernel counts a hole as written,
            // and protecting one would fill in page tables for all of it
            // (a 1 TiB reservation). A page that appears in a hole later
            // is unprotected, so written, at the next round.
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask: PAGE_IS_WRITTEN,
            ..PmScanArg::default()
        };
        // SAFETY: PAGEMAP_SCAN reads `arg` and fills at most vec_len
        // entries of `vec` (struct page_region: start, end, categories).
        let n = unsafe { libc::ioctl(pagemap, PAGEMAP_SCAN as _, &mut arg) };
        if n < 0 {
            return Err(());
        }
        for p in &vec[..n as usize] {
            if p[2] & PAGE_IS_WRITTEN != 0 {
                add(written, p[0], p[1]);
            }
            add(present, p[0], p[1]);
        }
        if arg.walk_end <= addr {
            return Err(());
        }
        addr = arg.walk_end;
    }
    Ok(())
}

/// Pages of `start..end` written since this round's freeze, counted in
/// the process whose /proc/PID/pagemap is `pagemap` (nothing is protected
/// again), up to `limit`; None when the kernel cannot say.
pub fn count_written(pagemap: i32, start: u64, end: u64, limit: u64) -> Option<u64> {
    let mut vec = [[0u64; 3]; 256];
    let (mut addr, mut pages) = (start, 0);
    while addr < end && pages < limit {
        let mut arg = PmScanArg {
            size: core::mem::size_of::<PmScanArg>() as u64,
            start: addr,
            end,
            vec: vec.as_mut_ptr() as u64,
            vec_len: vec.len() as u64,
            max_pages: limit - pages,
            // Written pages that exist (a hole counts as written).
            category_mask: PAGE_IS_WRITTEN,
            category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask: PAGE_IS_WRITTEN,
            ..PmScanArg::default()
        };
        // SAFETY: as in `scan`, without write-protecting anything.
        let n = unsafe { libc::ioctl(pagemap, PAGEMAP_SCAN as _, &mut arg) };
        if n < 0 {
            return None;
        }
        pages += vec[..n as usize]
            .iter()
            .map(|p| (p[1] - p[0]) / crate::image::PAGE)
            .sum::<u64>();
        if arg.walk_end <= addr {
            return None;
        }
        addr = arg.walk_end;
    }
    Some(pages)
}

/// Sorted, disjoint ranges looked up in increasing address order.
pub struct Cursor<'a> {
    ranges: &'a [(u64, u64)],
    i: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(ranges: &'a [(u64, u64)]) -> Cursor<'a> {
        Cursor { ranges, i: 0 }
    }

    /// Whether `addr` lies in a range; `addr` must not decrease between calls.
    pub fn contains(&mut self, addr: u64) -> bool {
        while self.i < self.ranges.len() && self.ranges[self.i].1 <= addr {
            self.i += 1;
        }
        self.ranges.get(self.i).is_some_and(|&(s, _)| s <= addr)
    }

    /// After `contains(addr)`: where that answer changes, the end of the
    /// range holding `addr` or the start of the next one (`u64::MAX`: none).
    pub fn boundary(&self, addr: u64) -> u64 {
        match self.ranges.get(self.i) {
            Some(&(s, e)) if s <= addr => e,
            Some(&(s, _)) => s,
            None => u64::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_walks_forward() {
        let r = [(0x1000, 0x3000), (0x5000, 0x6000)];
        let mut c = Cursor::new(&r);
        let got: Vec<bool> = [0u64, 0x1000, 0x2000, 0x3000, 0x5000, 0x6000]
            .iter()
            .map(|&a| c.contains(a))
            .collect();
        assert_eq!(got, [false, true, true, false, true, false]);
    }

    /// The kernel does what the module relies on: a page written after a
    /// round is listed at the next, an untouched one is not, and a region
    /// mapped anew over a tracked one counts as written once registered.
    #[test]
    fn written_pages_are_found() {
        let len = 64 * 4096usize;
        let p = sys::map_anon(len).expect("a fresh mapping").as_mut_ptr();
        // SAFETY: inside the mapping.
        unsafe { core::ptr::write_bytes(p, 1, len) };
        let Some(fd) = uffd() else {
            eprintln!("no userfaultfd write-protection here: nothing to check");
            return;
        };
        let pm = sys::openat(libc::AT_FDCWD, c"/proc/self/pagemap", libc::O_RDONLY).unwrap();
        let (s, e) = (p as u64, p as u64 + len as u64);
        let mut present = Vec::new();
        let mut round = |out: &mut Vec<(u64, u64)>| {
            out.clear();
            present.clear();
            register(fd, s, e).unwrap();
            scan(pm, s, e, out, &mut present).unwrap();
            present.clone()
        };
        let mut w = Vec::new();
        round(&mut w);
        assert_eq!(w, [(s, e)], "first round: every present page");
        let present = round(&mut w);
        assert!(w.is_empty(), "nothing written since");
        assert_eq!(present, [(s, e)], "every page is there");
        // SAFETY: inside the mapping.
        unsafe { *p.add(5 * 4096 + 7) = 2 };
        // SAFETY: dropping pages of our own mapping.
        unsafe { libc::madvise(p.add(20 * 4096).cast(), 2 * 4096, libc::MADV_DONTNEED) };
        let present = round(&mut w);
        assert_eq!(w, [(s + 5 * 4096, s + 6 * 4096)]);
        assert_eq!(
            present,
            [(s, s + 20 * 4096), (s + 22 * 4096, e)],
            "a dropped page is not there"
        );
        // SAFETY: replacing a page of our own mapping.
        unsafe {
            libc::mmap(
                p.add(9 * 4096).cast(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            );
            *p.add(9 * 4096) = 3;
        }
        round_split(fd, pm, s, e, 9, &mut w);
        assert_eq!(w, [(s + 9 * 4096, s + 10 * 4096)]);
        sys::close(pm);
    }

    /// A round over the mapping, now split in three VMAs at page `k`.
    fn round_split(fd: i32, pm: i32, s: u64, e: u64, k: u64, out: &mut Vec<(u64, u64)>) {
        out.clear();
        let cut = [s, s + k * 4096, s + (k + 1) * 4096, e];
        let mut present = Vec::new();
        for w in cut.windows(2) {
            register(fd, w[0], w[1]).unwrap();
            scan(pm, w[0], w[1], out, &mut present).unwrap();
        }
    }
}
