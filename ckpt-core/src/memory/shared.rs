//! Memory a fork does not hold: shared memory with no file to map it
//! from again (MAP_SHARED|MAP_ANONYMOUS, memfds, unlinked files, /dev/shm
//! files after shm_unlink) and private mappings of files no path leads to
//! (an unlinked file, a memfd). The writer child is a fork, and a fork
//! copies no page-table entry of a shared mapping nor the clean pages of
//! a private file mapping: its pagemap shows them absent.
//!
//! Verbs:
//! - `capture` (frozen, in the program): copy the pages such regions hold
//!   into a memfd of ckpt's own, so the image gets them as they were at
//!   the freeze — the program changes shared memory again as soon as it
//!   is thawed, and the writer runs after that. The pages are found
//!   through the mapped object itself (/proc/self/map_files, SEEK_DATA and
//!   SEEK_HOLE: holes are skipped, swapped pages included) where the
//!   kernel lets the process open it (CAP_CHECKPOINT_RESTORE, root);
//!   otherwise, for the kernel's own shared memory with nothing in swap,
//!   the pages in memory (mincore), and else every page. They are copied
//!   by the kernel straight from the program's mappings (through
//!   /proc/self/mem where the protection refuses); the writer leaves zero
//!   pages out. This copy is part of the pause: about 0.6 s per GiB of
//!   shared memory in use on the test machine (mostly the kernel
//!   allocating the copy's pages; 4 MiB cost about 3 ms).
//! - `captured` (writer child): the copied runs of a region.
//! - `release` (frozen, after the writer forked): close the copy.
//! - `restore` (post-restart, after the descriptors): the restorer brought
//!   each region back as anonymous memory with its pages; here each shared
//!   object becomes one object again — the descriptor the program holds on
//!   it (re-made by `files` from its saved contents), or a new memfd (same
//!   name) or unlinked file when it is mapped more than once or was not
//!   anonymous — and every region is mapped from it at its offset, so a
//!   store through one view is seen by the others and by the descriptor.
//!   A single MAP_SHARED|MAP_ANONYMOUS region stays as the restorer made
//!   it (the kernel's own kind of object, named "/dev/zero" as before).

use crate::image::{Fd, FdKind, Region, RegionKind, PAGE};
use crate::sys;
use core::sync::atomic::{AtomicPtr, Ordering::*};
use std::ffi::CString;

/// Pages read per /proc/self/mem call.
const CHUNK: u64 = 1 << 20;
/// Bytes copied per write straight from the program's memory.
const BIG: u64 = 64 << 20;

/// One run of copied pages: `len` bytes of the program's memory at
/// `addr`, at `offset` in the capture memfd.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub addr: u64,
    pub len: u64,
    pub offset: u64,
}

/// One captured region: as the program's /proc/self/maps showed it
/// (`noreserve` filled in by the writer), and its copied pages.
#[derive(Debug)]
pub struct Captured {
    pub region: Region,
    pub runs: Vec<Run>,
    /// A kept file mapping's pages unchanged since the image this one
    /// builds on (address ranges, sorted): taken from it (see `kept`).
    pub same: Vec<(u64, u64)>,
}

/// What `capture` made, in the scratch arena: valid until the next
/// checkpoint begins, and part of the image (which is how post-restart
/// code knows the shared objects and their regions; the descriptor is the
/// checkpointing process's and means nothing there).
struct Capture {
    fd: i32,
    regions: Vec<Captured>,
    error: Option<String>,
}

static CAPTURE: AtomicPtr<Capture> = AtomicPtr::new(core::ptr::null_mut());

/// Whether the writer cannot find `r`'s pages in its fork: shared memory
/// with no file to map again, or a private mapping of a file no path
/// leads to.
pub fn needs_capture(r: &Region) -> bool {
    r.kind == RegionKind::SharedAnonymous || unnamed_private(r)
}

/// Most bytes of writable shared file mappings one process keeps in its
/// image (their copy is part of the pause, and of the memory in use while
/// the writer runs: about 0.6 s and 1 GiB per GiB). Past it, a mapping is
/// left out and the checkpoint says so.
pub const KEPT_FILES_MAX: u64 = 1 << 30;

/// A writable shared mapping of a file: what the program writes through
/// it after the checkpoint goes into the file, so its pages at the
/// checkpoint are kept in the image and written back at a restart.
pub fn writable_file(r: &Region) -> bool {
    r.kind == RegionKind::FileShared && r.prot & libc::PROT_WRITE as u32 != 0
}

/// How many bytes from `r.start` a writable shared file mapping covers
/// within its file (the file's end may fall inside a page; its pages
/// past the end hold nothing): 0 when
/// the file cannot be found by its path as the same file. Frozen context.
fn file_covered(r: &Region) -> u64 {
    let Ok(path) = CString::new(
        crate::names::path(&r.path)
            .into_os_string()
            .into_encoded_bytes(),
    ) else {
        return 0;
    };
    let Some(st) = sys::stat_path(&path, false).filter(|st| st.st_ino == r.ino) else {
        return 0;
    };
    let in_file = (st.st_size.max(0) as u64).saturating_sub(r.offset);
    in_file.min(r.end - r.start)
}

/// A private mapping of an unlinked file or a memfd (not /dev/zero, not
/// System V memory).
fn unnamed_private(r: &Region) -> bool {
    !r.shared
        && r.kind == RegionKind::Anonymous
        && r.ino != 0
        && r.path.starts_with('/')
        && (r.path.ends_with(" (deleted)") || r.path.starts_with("/memfd:"))
        && !r.path.starts_with("/dev/zero")
        && !r.path.starts_with("/SYSV")
}

/// Copy the pages of every region that needs it. Frozen context: raw
/// system calls, scratch allocation. A failure is kept and reported by
/// the writer (the checkpoint then fails with it; the program goes on).
/// `build_on`: the writer will build on the previous round's image (kept
/// file pages unchanged since are taken from it).
pub fn capture(build_on: bool) {
    release();
    let maps = crate::names::read_proc("/proc/self/maps").unwrap_or_default();
    let mut budget = KEPT_FILES_MAX;
    let wanted: Vec<Region> = super::parse_maps(&maps)
        .into_iter()
        .filter_map(|mut r| {
            if needs_capture(&r) {
                return Some(r);
            }
            if !writable_file(&r) {
                return None;
            }
            // Kept while the budget lasts (`kept` 0: left out, said).
            let covered = file_covered(&r);
            if covered == 0 || covered > budget {
                return None;
            }
            budget -= covered;
            r.kept = covered;
            Some(r)
        })
        .collect();
    if wanted.is_empty() {
        return;
    }
    let mut c = Capture {
        fd: -1,
        regions: Vec::new(),
        error: None,
    };
    if let Err(e) = capture_into(&wanted, &mut c, build_on) {
        c.error = Some(e);
    }
    CAPTURE.store(Box::leak(Box::new(c)), Release);
}

/// Close the copy (the writer child has its own descriptor of it).
pub fn release() {
    let p = CAPTURE.swap(core::ptr::null_mut(), AcqRel);
    // SAFETY: set by `capture` from a leaked box in the scratch arena,
    // still valid in this checkpoint window; never freed.
    if let Some(c) = unsafe { p.as_ref() } {
        if c.fd >= 0 {
            sys::close(c.fd);
        }
    }
}

/// The descriptor of the copy (-1: none), which the writer keeps open.
pub fn capture_fd() -> i32 {
    // SAFETY: as in `release`.
    unsafe { CAPTURE.load(Acquire).as_ref() }.map_or(-1, |c| c.fd)
}

/// A captured region, as the writer finds it.
pub struct Copied {
    /// The copy's descriptor.
    pub fd: i32,
    /// The region's runs in it.
    pub runs: &'static [Run],
    /// See [`Region::kept`].
    pub kept: u64,
    /// See [`Captured::same`].
    pub same: &'static [(u64, u64)],
}

/// Writer child: the descriptor of the copy, the copied runs of the
/// region `[start, end)` and what of a file they stand for (see
/// [`Region::kept`]), when it was captured; the capture's error when it
/// failed.
pub fn captured(start: u64, end: u64) -> Result<Option<Copied>, String> {
    // SAFETY: as in `release`; the writer child reads its copy of it.
    let Some(c) = (unsafe { CAPTURE.load(Acquire).as_ref() }) else {
        return Ok(None);
    };
    if let Some(e) = &c.error {
        return Err(e.clone());
    }
    Ok(c.regions
        .iter()
        .find(|x| x.region.start == start && x.region.end == end)
        .map(|x| Copied {
            fd: c.fd,
            runs: &x.runs[..],
            kept: x.region.kept,
            same: &x.same[..],
        }))
}

/// Writer child, before any page is stored: note which captured regions
/// were MAP_NORESERVE (the writer's smaps tells; the image then holds it).
pub fn note_noreserve(regions: &[(Region, bool)]) {
    // SAFETY: as in `release`; this is the writer's own copy, written to
    // the image after this change.
    let Some(c) = (unsafe { CAPTURE.load(Acquire).as_mut() }) else {
        return;
    };
    for x in c.regions.iter_mut() {
        if let Some((r, _)) = regions.iter().find(|(r, _)| r.start == x.region.start) {
            x.region.noreserve = r.noreserve;
        }
    }
}

fn capture_into(wanted: &[Region], c: &mut Capture, build_on: bool) -> Result<(), String> {
    // SAFETY: memfd_create with a NUL-terminated name.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_memfd_create,
            c"ckpt-capture".as_ptr(),
            libc::MFD_CLOEXEC,
        )
    } as i32;
    if fd < 0 {
        return Err(format!(
            "cannot make a copy of shared memory: errno {}",
            crate::interpose::errno()
        ));
    }
    c.fd = sys::move_high(fd).map_err(|_| {
        sys::close(fd);
        "no free descriptor for the shared memory copy"
    })?;
    let mem = sys::openat(libc::AT_FDCWD, c"/proc/self/mem", libc::O_RDONLY)
        .map_err(|e| format!("cannot open /proc/self/mem: errno {e}"))?;
    let pagemap = sys::openat(libc::AT_FDCWD, c"/proc/self/pagemap", libc::O_RDONLY);
    // SAFETY: anonymous private mapping, no hint; unmapped below, before
    // the writer forks (it is not part of the image).
    let bounce = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            CHUNK as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    let result = if bounce == libc::MAP_FAILED {
        Err("cannot map a buffer for shared memory".to_string())
    } else {
        // SAFETY: the mapping is ours, CHUNK bytes, unaliased.
        let buf = unsafe { std::slice::from_raw_parts_mut(bounce as *mut u8, CHUNK as usize) };
        let mut smaps: Option<String> = None;
        let mut out = Copier {
            fd: c.fd,
            offset: 0,
            mem,
            buf,
        };
        let kept: Vec<&Region> = wanted.iter().filter(|r| r.kept > 0).collect();
        super::kept::capture(&kept, &mut out, build_on, &mut c.regions).and_then(|()| {
            wanted.iter().filter(|r| r.kept == 0).try_for_each(|r| {
                let ranges = ranges_of(r, pagemap.ok(), &mut smaps)?;
                let mut runs = Vec::new();
                for (a, b) in ranges {
                    out.copy(a, b, &mut runs)?;
                }
                c.regions.push(Captured {
                    region: r.clone(),
                    runs,
                    same: Vec::new(),
                });
                Ok::<(), String>(())
            })
        })
    };
    if bounce != libc::MAP_FAILED {
        // SAFETY: unmapping the buffer mapped above.
        unsafe { libc::munmap(bounce, CHUNK as usize) };
    }
    sys::close(mem);
    if let Ok(p) = pagemap {
        sys::close(p);
    }
    result
}

/// The address ranges of `r` that may hold data, sorted, not overlapping.
fn ranges_of(
    r: &Region,
    pagemap: Option<i32>,
    smaps: &mut Option<String>,
) -> Result<Vec<(u64, u64)>, String> {
    let name =
        CString::new(format!("/proc/self/map_files/{:x}-{:x}", r.start, r.end)).unwrap_or_default();
    let mut ranges = Vec::new();
    if let Ok(obj) = sys::openat(libc::AT_FDCWD, &name, libc::O_RDONLY) {
        data_ranges(obj, r, &mut ranges);
        sys::close(obj);
    } else if r.shared && super::kernel_shmem(&r.path) && swapped_kb(r, smaps) == 0 {
        // Memory only the kernel holds, none of it in swap: its pages are
        // those in memory.
        resident_ranges(r, &mut ranges);
    } else {
        // A file's pages may be on its disk only, shared memory's in swap,
        // which mincore does not show: every page is read (what is past
        // the end of the file cannot be, and is left out).
        ranges.push((r.start, r.end));
    }
    if !r.shared {
        // Pages the program wrote (its own copies) lie in holes too.
        if let Some(pm) = pagemap {
            // (Guard pages are left out: a read of one kills the reader.)
            super::scan(
                pm,
                r.start,
                r.end,
                false,
                &mut Vec::new(),
                &mut |a, len, _| ranges.push((a, a + len)),
            )?;
        }
    }
    Ok(merge(ranges))
}

/// The data of the object open at `obj` that `r` maps, as addresses.
fn data_ranges(obj: i32, r: &Region, out: &mut Vec<(u64, u64)>) {
    // SAFETY: fstat into a zeroed stat of our own.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat of a descriptor we opened.
    if unsafe { libc::syscall(libc::SYS_fstat, obj, &mut st) } != 0 {
        out.push((r.start, r.end));
        return;
    }
    let lo = r.offset;
    let hi = (r.offset + (r.end - r.start)).min(st.st_size.max(0) as u64);
    let mut pos = lo;
    while pos < hi {
        // SAFETY: lseek on our own descriptor (raw: `lseek` is interposed).
        let data = unsafe { libc::syscall(libc::SYS_lseek, obj, pos as i64, libc::SEEK_DATA) };
        if data < 0 || data as u64 >= hi {
            // ENXIO: no data past `pos`; any other error: read it all.
            if data < 0 && crate::interpose::errno() != libc::ENXIO {
                out.push((r.start + (pos - lo), r.start + (hi - lo)));
            }
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::syscall(libc::SYS_lseek, obj, data, libc::SEEK_HOLE) };
        let hole = if hole < 0 { hi } else { (hole as u64).min(hi) };
        let a = (data as u64) & !(PAGE - 1);
        let b = hole.next_multiple_of(PAGE);
        out.push((
            r.start + (a - lo),
            r.start + (b.min(hi.next_multiple_of(PAGE)) - lo),
        ));
        pos = hole;
    }
}

/// Pages of `r` in memory (mincore), as address ranges.
fn resident_ranges(r: &Region, out: &mut Vec<(u64, u64)>) {
    let mut vec = [0u8; 4096];
    let mut addr = r.start;
    while addr < r.end {
        let len = (r.end - addr).min(vec.len() as u64 * PAGE);
        // SAFETY: mincore writes one byte per page of [addr, addr+len)
        // into `vec`, which has room for len / PAGE of them.
        let ok = unsafe { libc::syscall(libc::SYS_mincore, addr, len, vec.as_mut_ptr()) } == 0;
        for (i, &v) in vec[..(len / PAGE) as usize].iter().enumerate() {
            if !ok || v & 1 != 0 {
                let a = addr + i as u64 * PAGE;
                out.push((a, a + PAGE));
            }
        }
        addr += len;
    }
}

/// The "Swap:" of `r` in /proc/self/smaps (read once, when first needed).
fn swapped_kb(r: &Region, smaps: &mut Option<String>) -> u64 {
    let text = smaps
        .get_or_insert_with(|| crate::names::read_proc("/proc/self/smaps").unwrap_or_default());
    let head = format!("{:x}-{:x} ", r.start, r.end);
    let Some(at) = text.find(&head) else {
        return 0;
    };
    text[at..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("VmFlags:"))
        .find_map(|l| l.strip_prefix("Swap:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Sort and merge ranges.
fn merge(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Copies the program's pages into the capture memfd.
pub(super) struct Copier<'a> {
    pub(super) fd: i32,
    pub(super) offset: u64,
    mem: i32,
    buf: &'a mut [u8],
}

impl Copier<'_> {
    /// Copy the pages of `[a, b)` the program can read. Straight from its
    /// memory in large writes (the kernel copies, faulting in what is in
    /// swap or only in the page cache); what the mapping refuses (no
    /// PROT_READ) through /proc/self/mem; pages nothing can read (past the
    /// end of a mapped file) are left out: the program cannot read them
    /// either. Zero pages are left out later, by the writer.
    fn copy(&mut self, a: u64, b: u64, runs: &mut Vec<Run>) -> Result<(), String> {
        let mut addr = a;
        while addr < b {
            let len = (b - addr).min(BIG);
            // SAFETY: the kernel reads [addr, addr+len) of this process
            // with fault handling (EFAULT, never a signal) into our memfd.
            let n = unsafe {
                libc::pwrite(self.fd, addr as *const _, len as usize, self.offset as i64)
            };
            let n = if n > 0 { n as u64 & !(PAGE - 1) } else { 0 };
            if n > 0 {
                self.note(addr, n, runs);
                addr += n;
                continue;
            }
            let e = crate::interpose::errno();
            if e != libc::EFAULT {
                return Err(format!(
                    "cannot copy shared memory (out of memory?): errno {e}"
                ));
            }
            let want = (b - addr).min(CHUNK) as usize;
            // SAFETY: pread into our buffer of CHUNK bytes.
            let r =
                unsafe { libc::pread(self.mem, self.buf.as_mut_ptr().cast(), want, addr as i64) };
            let r = if r > 0 { r as u64 & !(PAGE - 1) } else { 0 };
            if r == 0 {
                // Unreadable page: left out.
                addr += PAGE;
                continue;
            }
            let mut done = 0;
            while done < r {
                // SAFETY: pwrite from our buffer to our memfd.
                let w = unsafe {
                    libc::pwrite(
                        self.fd,
                        self.buf[done as usize..r as usize].as_ptr().cast(),
                        (r - done) as usize,
                        (self.offset + done) as i64,
                    )
                };
                if w <= 0 {
                    return Err(format!(
                        "cannot copy shared memory (out of memory?): errno {}",
                        crate::interpose::errno()
                    ));
                }
                done += w as u64;
            }
            self.note(addr, r, runs);
            addr += r;
        }
        Ok(())
    }

    /// `len` bytes at `addr` were copied at the current offset.
    pub(super) fn note(&mut self, addr: u64, len: u64, runs: &mut Vec<Run>) {
        match runs.last_mut() {
            Some(r) if r.addr + r.len == addr && r.offset + r.len == self.offset => r.len += len,
            _ => runs.push(Run {
                addr,
                len,
                offset: self.offset,
            }),
        }
        self.offset += len;
    }
}

/// Post-restart, after the descriptors are back: make each shared object
/// one again and map its regions from it (see the module doc). Returns
/// whether any region was mapped again (advice given to them is lost).
/// An object in `handoff` (a tree's restart made it once for every
/// process that maps it) is mapped instead of one of this process's own.
pub fn restore(
    fds: &[Fd],
    handoff: &crate::tree::Handoff,
    sysv: &[crate::image::SysvObject],
) -> bool {
    // The table came back with the image; its descriptor did not.
    let p = CAPTURE.swap(core::ptr::null_mut(), AcqRel);
    // SAFETY: the restored scratch arena holds the table the checkpoint
    // built (see `Capture`).
    let Some(c) = (unsafe { p.as_ref() }) else {
        return false;
    };
    for x in &c.regions {
        if let Some(what) = kernel_object(&x.region) {
            crate::restart_report::warn(&format!(
                "the mapping at {:#x} ({}) comes back with its contents as {what}",
                x.region.start, x.region.path
            ));
        }
    }
    let shared: Vec<&Captured> = c
        .regions
        .iter()
        .filter(|x| {
            x.region.kind == RegionKind::SharedAnonymous && kernel_object(&x.region).is_none()
        })
        .collect();
    let mut done: Vec<(u64, u64)> = Vec::new();
    let mut remapped = false;
    for x in &shared {
        let r = &x.region;
        if done.contains(&(r.dev, r.ino)) {
            continue;
        }
        done.push((r.dev, r.ino));
        let group: Vec<&Captured> = shared
            .iter()
            .copied()
            .filter(|y| y.region.dev == r.dev && y.region.ino == r.ino)
            .collect();
        // A descriptor of the program on the same object: the mapping
        // must share its pages with it (a store through one is seen
        // through the other), so it is mapped from what `files` made.
        let same = |f: &&Fd| {
            f.dev == r.dev
                && f.ino == r.ino
                && matches!(f.kind, FdKind::MemFd | FdKind::File)
                && f.shares_with.unwrap_or(f.fd) == f.fd
        };
        let holder = fds
            .iter()
            .find(|f| same(f) && crate::files::stdio_rule(f) == crate::files::Passthrough::Rebuilt);
        if holder.is_none() {
            if let Some(f) = fds.iter().find(same) {
                crate::restart_report::warn(&format!(
                    "shared memory at {:#x} comes back with its contents, but no longer shared \
                     with descriptor {} (which could not be made again)",
                    r.start, f.fd
                ));
            }
        }
        let anonymous = r.path.starts_with("/dev/zero");
        let handed = handoff.memory_for(r.dev, r.ino);
        if holder.is_none() && handed.is_none() && anonymous && group.len() == 1 {
            continue;
        }
        if r.path.starts_with("/SYSV") {
            // The segment itself, made again at its id (see
            // `process::restore_sysv`): attached where it was.
            let segment = sysv
                .iter()
                .find(|o| o.shm_size.is_some() && o.saved && o.id == r.ino as i32);
            if segment.is_some_and(|o| attach_segment(o, &group)) {
                remapped = true;
                continue;
            }
            crate::restart_report::warn(&format!(
                "System V shared memory at {:#x} comes back with its contents but no longer \
                 attached to its segment",
                r.start
            ));
        }
        let obj = match (handed, holder) {
            (Some(fd), _) => reopen(fd),
            (None, Some(f)) => reopen(f.fd),
            (None, None) => make_object(&group),
        };
        let obj = match obj {
            Ok(fd) => fd,
            Err(e) => {
                crate::restart_report::warn(&format!(
                    "shared memory at {:#x} ({}) comes back with its contents, but its views \
                     no longer share it: {e}",
                    r.start, r.path
                ));
                continue;
            }
        };
        for y in &group {
            let y = &y.region;
            let mut flags = libc::MAP_SHARED | libc::MAP_FIXED;
            if y.noreserve {
                flags |= libc::MAP_NORESERVE;
            }
            // SAFETY: the region is the program's own, restored by the
            // restorer; it is replaced by the same pages of the object.
            let p = unsafe {
                libc::mmap(
                    y.start as *mut _,
                    (y.end - y.start) as usize,
                    y.prot as i32,
                    flags,
                    obj,
                    y.offset as i64,
                )
            };
            if p == libc::MAP_FAILED {
                crate::restart_report::warn(&format!(
                    "cannot map shared memory at {:#x} from its object again (errno {}): \
                     it is no longer shared",
                    y.start,
                    crate::interpose::errno()
                ));
            } else {
                remapped = true;
            }
        }
        sys::close(obj);
    }
    remapped
}

/// What a mapping of a kernel object other than memory (an io_uring
/// ring, a perf buffer, a device's anonymous inode, a packet socket's
/// ring) or of huge pages
/// becomes: plain memory with the same bytes, no longer the object's.
pub fn kernel_object(r: &Region) -> Option<&'static str> {
    if r.path.starts_with("anon_inode:") || r.path.starts_with("socket:[") {
        Some("plain memory, no longer the kernel object's")
    } else if r.path.starts_with("/anon_hugepage") {
        Some("memory of ordinary pages, not huge pages")
    } else {
        None
    }
}

/// Attach System V segment `o` (made again, empty) where each view of
/// `group` was, with the pages the restorer brought back (copied into it
/// first). False, with nothing changed, when a view is not the whole
/// segment or cannot be read. Post-restart context.
fn attach_segment(o: &crate::image::SysvObject, group: &[&Captured]) -> bool {
    let size = o.shm_size.unwrap_or(0).next_multiple_of(4096);
    let whole = |r: &Region| {
        r.offset == 0 && r.end - r.start == size && r.prot & libc::PROT_READ as u32 != 0
    };
    if size == 0 || !group.iter().all(|y| whole(&y.region)) {
        return false;
    }
    // SAFETY: shmat anywhere of a segment of ours.
    let tmp = unsafe { libc::syscall(libc::SYS_shmat, o.id, 0usize, 0) };
    if tmp < 0 {
        return false;
    }
    let first = &group[0].region;
    // SAFETY: both ranges are `size` bytes: the readable restored view
    // and the segment just attached.
    unsafe {
        core::ptr::copy_nonoverlapping(first.start as *const u8, tmp as *mut u8, size as usize);
        libc::syscall(libc::SYS_shmdt, tmp);
    }
    for y in group {
        let y = &y.region;
        let mut flags = 0o40000; // SHM_REMAP
        if y.prot & libc::PROT_WRITE as u32 == 0 {
            flags |= libc::SHM_RDONLY;
        }
        if y.prot & libc::PROT_EXEC as u32 != 0 {
            flags |= 0o100000; // SHM_EXEC
        }
        // SAFETY: the view is the program's own range, replaced by the
        // segment holding the same pages.
        if unsafe { libc::syscall(libc::SYS_shmat, o.id, y.start, flags) } < 0 {
            crate::restart_report::warn(&format!(
                "System V shared memory at {:#x}: cannot attach segment {} there again (errno {})",
                y.start,
                o.id,
                crate::interpose::errno()
            ));
        }
    }
    if o.removed {
        // SAFETY: shmctl(IPC_RMID) of a segment of ours: gone once detached.
        unsafe { libc::syscall(libc::SYS_shmctl, o.id, libc::IPC_RMID, 0usize) };
    }
    true
}

/// A new descriptor of the object descriptor `fd` (re-made by `files`)
/// refers to, read-write when it can be.
fn reopen(fd: i32) -> Result<i32, String> {
    let path = CString::new(format!("/proc/self/fd/{fd}")).unwrap_or_default();
    sys::openat(libc::AT_FDCWD, &path, libc::O_RDWR)
        .or_else(|_| sys::openat(libc::AT_FDCWD, &path, libc::O_RDONLY))
        .map_err(|e| format!("cannot open descriptor {fd} again: errno {e}"))
}

/// A new object for the regions of `group` (one object at the
/// checkpoint), filled from their restored pages: a memfd of the same
/// name, or an unlinked file in the directory the deleted one was in.
fn make_object(group: &[&Captured]) -> Result<i32, String> {
    let path = group[0].region.path.trim_end_matches(" (deleted)");
    let fd = if let Some(name) = path.strip_prefix("/memfd:") {
        memfd(name)
    } else if path.starts_with("/dev/zero") || path.starts_with("/SYSV") {
        memfd("ckpt-shared")
    } else {
        let file = crate::names::path(path);
        let dir = file
            .parent()
            .filter(|d| d.is_dir())
            .unwrap_or(std::path::Path::new("/tmp"));
        let dir = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap_or_default();
        // SAFETY: openat with O_TMPFILE in a directory: an unnamed file.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat,
                libc::AT_FDCWD,
                dir.as_ptr(),
                libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
                0o600,
            )
        } as i32;
        if fd >= 0 {
            Ok(fd)
        } else {
            memfd(path.rsplit('/').next().unwrap_or("ckpt-shared"))
        }
    }?;
    let size = group
        .iter()
        .map(|x| x.region.offset + (x.region.end - x.region.start))
        .max()
        .unwrap_or(0);
    // SAFETY: ftruncate of the object we just made (raw: the wrapper
    // would record nothing useful here).
    if unsafe { libc::syscall(libc::SYS_ftruncate, fd, size as i64) } != 0 {
        sys::close(fd);
        return Err(format!(
            "cannot size it: errno {}",
            crate::interpose::errno()
        ));
    }
    for c in group {
        let x = &c.region;
        let readable = x.prot & libc::PROT_READ as u32 != 0;
        if !readable && !c.runs.is_empty() {
            // SAFETY: the program's region, restored; made readable for
            // the copy and given its protection back below.
            unsafe {
                libc::mprotect(
                    x.start as *mut _,
                    (x.end - x.start) as usize,
                    libc::PROT_READ,
                )
            };
        }
        for e in &c.runs {
            let at = x.offset + (e.addr - x.start);
            // SAFETY: pwrite from restored memory of the region.
            let n = unsafe { libc::pwrite(fd, e.addr as *const _, e.len as usize, at as i64) };
            if n != e.len as isize {
                sys::close(fd);
                return Err(format!(
                    "cannot fill it: errno {}",
                    crate::interpose::errno()
                ));
            }
        }
        if !readable && !c.runs.is_empty() {
            // SAFETY: as above.
            unsafe { libc::mprotect(x.start as *mut _, (x.end - x.start) as usize, x.prot as i32) };
        }
    }
    Ok(fd)
}

fn memfd(name: &str) -> Result<i32, String> {
    let name = crate::names::c(name).unwrap_or_default();
    // SAFETY: memfd_create with a NUL-terminated name.
    let fd = unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        Err(format!("memfd_create: errno {}", crate::interpose::errno()))
    } else {
        Ok(fd as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge() {
        assert_eq!(
            merge(vec![(8, 12), (0, 4), (4, 6), (10, 16), (20, 24)]),
            [(0, 6), (8, 16), (20, 24)]
        );
    }

    #[test]
    fn which_regions_are_captured() {
        let text = "\
7f0000000000-7f0000001000 rw-s 00000000 00:01 1046    /dev/zero (deleted)
7f0000001000-7f0000002000 r--p 00000000 fe:00 99      /tmp/gone (deleted)
7f0000002000-7f0000003000 rw-p 00000000 00:01 7       /memfd:jit (deleted)
7f0000003000-7f0000004000 rw-p 00000000 00:00 0
7f0000004000-7f0000005000 r--p 00000000 fe:00 98      /usr/lib/libc.so.6
7f0000005000-7f0000006000 rw-p 00000000 00:05 4       /dev/zero
7f0000006000-7f0000007000 rw-s 00000000 00:01 8       /memfd:ring (deleted)
";
        let got: Vec<bool> = super::super::parse_maps(text)
            .iter()
            .map(needs_capture)
            .collect();
        assert_eq!(got, [true, true, true, false, false, false, true]);
    }
}
