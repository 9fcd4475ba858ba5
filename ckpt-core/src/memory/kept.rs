//! Writable shared file mappings kept in the image (`Region::kept`),
//! copied incrementally.
//!
//! What the program writes through such a mapping after a checkpoint
//! lands in the file, so the mapping's pages are copied while the program
//! is frozen (with shared memory, see `shared`) and written back into the
//! file at a restart. Copied whole, every image held the whole mapping
//! again, and the copy's page allocation was part of every pause: no
//! write tracking covers file mappings here (userfaultfd's asynchronous
//! write-protection does not, soft-dirty is compiled out).
//!
//! So the fingerprint of each page (xxh3, 128 bits) at a checkpoint stays
//! in the process, and the next checkpoint reads every page again but
//! copies only those whose fingerprint changed; the image refers to the
//! previous one for the others (`Captured::same`). Only where the writer
//! is sure to build on that image — the same rule as `stage`: the
//! previous round's writer published it and said it can be built on — and
//! the mapping is the one fingerprinted then (bounds, file, offset).
//! Anything else (a restart, a fork, a failed writer, a tree's member)
//! makes the next copy whole.
//!
//! Pages are read through a window: the kernel copies them from the
//! program's mapping into a small memfd of ckpt's own (a page past the
//! file's end, cut meanwhile, gives EFAULT there, never SIGBUS), they are
//! fingerprinted in it, and the changed ones are copied on into the
//! capture. A page that cannot be read is neither copied nor taken from
//! the earlier image (zero, as the program would find it).
//!
//! Verb: `capture` (frozen, in the coordinating thread).

use super::shared::{Captured, Copier, Run};
use crate::image::{Region, PAGE};
use crate::sys;
use core::cell::UnsafeCell;

/// Bytes read through the window at a time.
const WINDOW: u64 = 1 << 20;
/// Most mappings whose fingerprints are kept (the others are copied whole
/// at every checkpoint).
const MAX: usize = 64;

/// The fingerprints of one kept mapping, taken at round `round`.
#[derive(Clone, Copy)]
struct Prints {
    start: u64,
    end: u64,
    ino: u64,
    offset: u64,
    /// Pages fingerprinted (from `start`).
    pages: u64,
    round: u64,
    /// An anonymous mapping of ckpt's own holding `pages` fingerprints
    /// (0: the slot is empty), `len` bytes.
    at: u64,
    len: u64,
}

const EMPTY: Prints = Prints {
    start: 0,
    end: 0,
    ino: 0,
    offset: 0,
    pages: 0,
    round: 0,
    at: 0,
    len: 0,
};

impl Prints {
    fn of(&self) -> &[u128] {
        if self.at == 0 {
            return &[];
        }
        // SAFETY: `at` is a live mapping of `len` ≥ pages * 16 bytes made
        // by `capture` and unmapped only when this slot is replaced.
        unsafe { core::slice::from_raw_parts(self.at as *const u128, self.pages as usize) }
    }

    fn unmap(&self) {
        if self.at != 0 {
            // SAFETY: the mapping `capture` made for this slot, unused after.
            unsafe { libc::munmap(self.at as *mut _, self.len as usize) };
        }
    }

    fn same_mapping(&self, r: &Region) -> bool {
        self.at != 0
            && self.start == r.start
            && self.end == r.end
            && self.ino == r.ino
            && self.offset == r.offset
    }
}

struct Table(UnsafeCell<[Prints; MAX]>);
// SAFETY: only the checkpoint coordinator touches it, while every other
// thread is frozen (checkpoints never overlap).
unsafe impl Sync for Table {}
static TABLE: Table = Table(UnsafeCell::new([EMPTY; MAX]));

/// A memfd of `WINDOW` bytes and its read-only mapping.
struct Window {
    fd: i32,
    map: *const u8,
}

impl Window {
    fn new() -> Result<Window, String> {
        // SAFETY: memfd_create with a NUL-terminated name.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_memfd_create,
                c"ckpt-window".as_ptr(),
                libc::MFD_CLOEXEC,
            )
        } as i32;
        if fd < 0 {
            return Err(format!(
                "cannot read kept file pages: memfd errno {}",
                crate::interpose::errno()
            ));
        }
        // SAFETY: sizing and mapping our own memfd, read-only, shared (so
        // the mapping shows what pwrite put in it).
        let map = unsafe {
            if libc::ftruncate(fd, WINDOW as i64) != 0 {
                libc::MAP_FAILED
            } else {
                libc::mmap(
                    core::ptr::null_mut(),
                    WINDOW as usize,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    fd,
                    0,
                )
            }
        };
        if map == libc::MAP_FAILED {
            sys::close(fd);
            return Err("cannot map a window for kept file pages".into());
        }
        Ok(Window {
            fd,
            map: map as *const u8,
        })
    }

    /// Copy what can be read of `[addr, addr + len)` (len ≤ WINDOW) into
    /// the window: the bytes copied, whole pages (0: the first page
    /// cannot be read).
    fn fill(&self, addr: u64, len: u64) -> Result<u64, String> {
        let mut done = 0;
        while done < len {
            // SAFETY: the kernel reads the program's memory with fault
            // handling (EFAULT, never a signal) into our memfd.
            let n = unsafe {
                libc::pwrite(
                    self.fd,
                    (addr + done) as *const _,
                    (len - done) as usize,
                    done as i64,
                )
            };
            if n <= 0 {
                let e = crate::interpose::errno();
                if n < 0 && e == libc::EINTR {
                    continue;
                }
                if n == 0 || e == libc::EFAULT {
                    break;
                }
                return Err(format!(
                    "cannot read kept file pages (out of memory?): errno {e}"
                ));
            }
            done += n as u64;
        }
        Ok(done & !(PAGE - 1))
    }

    fn page(&self, i: u64) -> &[u8] {
        // SAFETY: page `i` lies in the window's mapping (i < WINDOW / PAGE).
        unsafe { core::slice::from_raw_parts(self.map.add((i * PAGE) as usize), PAGE as usize) }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: unmapping the window mapped in `new`.
        unsafe { libc::munmap(self.map as *mut _, WINDOW as usize) };
        sys::close(self.fd);
    }
}

/// Frozen: copy the pages of each kept mapping in `wanted` (`kept` set)
/// into the capture, those unchanged since the image this one builds on
/// (`build_on`) listed instead, and keep every page's fingerprint for the
/// next checkpoint. Scratch allocation and raw system calls only.
pub(super) fn capture(
    wanted: &[&Region],
    out: &mut Copier,
    build_on: bool,
    regions: &mut Vec<Captured>,
) -> Result<(), String> {
    let (id, prev) = super::dirty::round().map_or((0, 0), |r| (r.id, r.prev));
    // SAFETY: see `Table`: frozen, coordinator only.
    let table = unsafe { &mut *TABLE.0.get() };
    let mut new = [EMPTY; MAX];
    let result = Window::new().and_then(|window| {
        for (i, r) in wanted.iter().enumerate() {
            let old = table
                .iter()
                .find(|p| build_on && prev != 0 && p.round == prev && p.same_mapping(r));
            let pages = r.kept.div_ceil(PAGE);
            let len = (pages * 16).next_multiple_of(PAGE);
            let prints = (i < MAX).then(|| sys::map_anon(len as usize)).flatten();
            if let Some(p) = &prints {
                new[i] = Prints {
                    start: r.start,
                    end: r.end,
                    ino: r.ino,
                    offset: r.offset,
                    pages,
                    round: id,
                    at: p.as_ptr() as u64,
                    len,
                };
            }
            let prints: &mut [u128] = match prints {
                // SAFETY: a fresh page-aligned mapping of ≥ pages * 16 bytes.
                Some(p) => unsafe {
                    core::slice::from_raw_parts_mut(p.as_mut_ptr() as *mut u128, pages as usize)
                },
                None => &mut [],
            };
            let before = old.map_or(&[][..], |p| p.of());
            let c = copy_changed(r, &window, out, before, prints)?;
            regions.push(c);
        }
        Ok(())
    });
    // The earlier fingerprints go; the new ones stay (none when this
    // capture failed: its image will not be built on).
    for p in table.iter() {
        p.unmap();
    }
    if result.is_err() {
        for p in new.iter() {
            p.unmap();
        }
        new = [EMPTY; MAX];
    }
    *table = new;
    result
}

/// Read `r`'s kept pages through `window`, fingerprint each into
/// `prints` (when there is room), and copy those whose fingerprint is
/// not the one in `before`.
fn copy_changed(
    r: &Region,
    window: &Window,
    out: &mut Copier,
    before: &[u128],
    prints: &mut [u128],
) -> Result<Captured, String> {
    let end = r.start + r.kept.next_multiple_of(PAGE);
    let mut runs: Vec<Run> = Vec::new();
    let mut same: Vec<(u64, u64)> = Vec::new();
    let mut a = r.start;
    while a < end {
        let n = window.fill(a, (end - a).min(WINDOW))?;
        if n == 0 {
            // Unreadable (the file was cut): neither copied nor taken.
            if let Some(p) = prints.get_mut(((a - r.start) / PAGE) as usize) {
                *p = 0;
            }
            a += PAGE;
            continue;
        }
        let mut changed: Option<u64> = None;
        for j in 0..n / PAGE {
            let idx = ((a - r.start) / PAGE + j) as usize;
            let h = xxhash_rust::xxh3::xxh3_128(window.page(j)).max(1);
            if let Some(p) = prints.get_mut(idx) {
                *p = h;
            }
            let page = a + j * PAGE;
            if before.get(idx) == Some(&h) {
                if let Some(from) = changed.take() {
                    out.put(window, from, j, a, &mut runs)?;
                }
                match same.last_mut() {
                    Some(s) if s.1 == page => s.1 += PAGE,
                    _ => same.push((page, page + PAGE)),
                }
            } else if changed.is_none() {
                changed = Some(j);
            }
        }
        if let Some(from) = changed {
            out.put(window, from, n / PAGE, a, &mut runs)?;
        }
        a += n;
    }
    Ok(Captured {
        region: r.clone(),
        runs,
        same,
    })
}

impl Copier<'_> {
    /// Copy window pages `[from, to)`, read from the program's memory at
    /// `base`, into the capture.
    fn put(
        &mut self,
        window: &Window,
        from: u64,
        to: u64,
        base: u64,
        runs: &mut Vec<Run>,
    ) -> Result<(), String> {
        let len = (to - from) * PAGE;
        let mut done = 0;
        while done < len {
            // SAFETY: pwrite from the window's mapping to our memfd.
            let w = unsafe {
                libc::pwrite(
                    self.fd,
                    window.map.add((from * PAGE + done) as usize).cast(),
                    (len - done) as usize,
                    (self.offset + done) as i64,
                )
            };
            if w <= 0 {
                return Err(format!(
                    "cannot copy kept file pages (out of memory?): errno {}",
                    crate::interpose::errno()
                ));
            }
            done += w as u64;
        }
        self.note(base + from * PAGE, len, runs);
        Ok(())
    }
}
