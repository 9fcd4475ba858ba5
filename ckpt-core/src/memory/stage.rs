//! Large regions the writer's fork leaves out (incremental checkpoints).
//!
//! Forking the writer copies a page-table entry for every page the
//! program holds (20–35 ms per GiB here): the whole pause of a checkpoint.
//! Yet an incremental image needs, of a region that changed little, only
//! the pages written since the previous round; it refers to the base image
//! for the rest. So while the program is frozen those pages are copied
//! into a memfd of ckpt's own, and the region is advised MADV_DONTFORK for
//! the one fork of the writer, then advised back: the fork skips it, and
//! the program, thawed, writes to it without copy-on-write faults.
//!
//! Only where the writer is sure to build on the base image: the previous
//! round's writer ended and said its image can be built on
//! ([`crate::writer::previous_can_be_built_on`]), the region had the same
//! bounds then (so the base image holds it as one region, with its
//! NORESERVE flag), and at most 1/64 of its pages were written (a page
//! copied costs about as much as 40-60 forked). Never the writer's
//! own memory or malloc's heaps ([`super::Own::program_only`]), a
//! library's .bss (anonymous memory right after a file's mapping: ckpt's
//! statics are there), memory the program itself keeps out of forks, or
//! an unreadable region.
//!
//! The copy goes to one memfd of ckpt's own that lives as long as the
//! process, never mapped, so its pages are allocated once: a writer that
//! others may build on grows it, once done, to what the next checkpoint
//! can copy at most (1/64 of the memory it stored, at most 256 MiB), off
//! the program's time. Allocating them while frozen cost up to 100 ms for
//! 41 MiB here when the machine was busy writing the previous image.
//!
//! Verbs: `stage` (frozen: choose, copy, advise), `stage_live` (frozen:
//! choose, advise; a pre-copy, see there), `unstage` (frozen, after
//! the fork: advise back), `staged` / `fd` (writer: the regions left out
//! and their copied pages), `grow` (writer: pages for the next one),
//! `forget` (post-restart: the descriptor number is not ours any more).

use super::shared::Run;
use crate::image::{ForkAdvice, Region, RegionKind, PAGE};
use crate::sys;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering::*};

/// Regions smaller than this are forked (their entries cost little).
const MIN_REGION: u64 = 2 << 20;
/// Most bytes copied in one checkpoint (the copy is part of the pause).
const MAX_COPY: u64 = 256 << 20;
/// A region is left out when at most 1/RATIO of its pages were written:
/// forking costs 0.07-0.11 µs per page here, copying one into the memfd
/// about 4.5 µs. Near the limit the pause is about what the fork took,
/// and the program is spared the copy-on-write faults of a fork.
const RATIO: u64 = 64;

/// One region left out of the fork: as the program's maps showed it while
/// frozen, and its written pages, copied.
#[derive(Debug)]
pub struct Staged {
    pub region: Region,
    pub runs: Vec<Run>,
}

/// What `stage` made, in the scratch arena (valid in this checkpoint
/// window, and read by the writer from its own copy).
struct Stage {
    regions: Vec<Staged>,
    /// `stage_live`: the program's /proc/self/mem and /proc/self/smaps,
    /// opened while frozen (their access is checked at open; the writer
    /// reads the running program through them). -1: not live.
    live_mem: i32,
    live_smaps: i32,
    /// Its /proc/self/pagemap (the writer counts the pages written since
    /// the freeze), and how many may be before the pre-copy is not worth
    /// finishing.
    live_pagemap: i32,
    live_limit: u64,
}

static STAGE: AtomicPtr<Stage> = AtomicPtr::new(core::ptr::null_mut());
/// The copy's memfd (-1: none yet), and the process that made it (a
/// forked child's is its parent's, shared: never written there).
static COPY: AtomicI32 = AtomicI32::new(-1);
static COPY_PID: AtomicI32 = AtomicI32::new(0);
static DISABLED: AtomicBool = AtomicBool::new(false);
/// The program installed or removed guard pages through the C library
/// since the last checkpoint: no region is left out of the next writer's
/// fork (a region left out is not scanned for guard pages, it takes the
/// earlier image's).
static GUARDS_CHANGED: AtomicBool = AtomicBool::new(false);

/// The program gave MADV_GUARD_INSTALL or MADV_GUARD_REMOVE. Signal-safe:
/// one store.
pub fn guards_changed() {
    GUARDS_CHANGED.store(true, Relaxed);
}

/// `r` as the image records a region left out of the fork, which the
/// writer cannot ask the kernel about: whether it is sealed and its
/// NUMA policy, asked now.
/// Frozen context.
fn frozen_region(r: &Region) -> Region {
    let mut region = r.clone();
    region.sealed = super::guards::sealed(r.start, r.end, r.prot);
    region.mempolicy = super::guards::mempolicy(r.start);
    region
}

/// Called once at start-up with the setting (`CKPT_UNFORKED`, on unless
/// "0": every region is then forked).
pub fn configure(enabled: bool) {
    DISABLED.store(!enabled, Relaxed);
}

/// Frozen, after `dirty::collect`, in the thread that forks the writer:
/// leave out of the fork what the writer does not need. `build_on`: the
/// writer will build on the round's base image (see the module doc).
/// Scratch allocation and raw system calls only; never fails (a region
/// that cannot be copied or advised is forked as usual).
pub fn stage(maps: &[Region], advised: &[ForkAdvice], build_on: bool) {
    STAGE.store(core::ptr::null_mut(), Release);
    if DISABLED.load(Relaxed) || GUARDS_CHANGED.swap(false, Relaxed) {
        return;
    }
    let Some(fd) = copy_fd() else { return };
    let Some(round) = super::dirty::round().filter(|r| build_on && !r.stable.is_empty()) else {
        return;
    };
    let own = super::Own::now();
    let mut chosen: Vec<&Region> = Vec::new();
    let mut total = 0;
    for (i, r) in maps.iter().enumerate() {
        if !may_leave_out(maps, i, advised, &own)
            || round.stable.binary_search(&(r.start, r.end)).is_err()
        {
            continue;
        }
        let present = in_range(&round.present, r);
        let written = in_range(&round.written, r);
        if present < MIN_REGION / 2 || written * RATIO > present || total + written > MAX_COPY {
            continue;
        }
        total += written;
        chosen.push(r);
    }
    if chosen.is_empty() {
        return;
    }
    // Pages the previous writer did not provide, all at once: growing the
    // file a page per write costs several times more (168 against 48 ms
    // for 41 MiB here).
    if size_of(fd) < total && !allocate(fd, total) {
        return;
    }
    let mut st = Stage {
        regions: Vec::new(),
        live_mem: -1,
        live_smaps: -1,
        live_pagemap: -1,
        live_limit: 0,
    };
    let mut offset = 0;
    for r in chosen {
        let i = round.written.partition_point(|x| x.1 <= r.start);
        let mut runs = Vec::new();
        let mut batch = Batch::new(fd, offset);
        let mut ok = true;
        for &(a, b) in round.written[i..].iter().take_while(|x| x.0 < r.end) {
            let (a, b) = (a.max(r.start), b.min(r.end));
            if !batch.add(a, b - a) {
                ok = false;
                break;
            }
            runs.push(Run {
                addr: a,
                len: b - a,
                offset,
            });
            offset += b - a;
        }
        ok = ok && batch.flush();
        // SAFETY: changes only how fork() treats the region (a whole
        // mapping of the program's private anonymous memory), undone by
        // `unstage` before the program runs again.
        if ok && unsafe { advise(r, libc::MADV_DONTFORK) } {
            st.regions.push(Staged {
                region: frozen_region(r),
                runs,
            });
        }
    }
    STAGE.store(Box::leak(Box::new(st)), Release);
}

/// Whether region `i` of `maps` may be left out of the writer's fork at
/// all: private anonymous memory of the program's own, large and
/// readable, not advised out of forks by the program itself. Never a
/// library's .bss (anonymous memory right after a file's mapping, or
/// grown into one: ckpt's own statics are there).
fn may_leave_out(maps: &[Region], i: usize, advised: &[ForkAdvice], own: &super::Own) -> bool {
    let r = &maps[i];
    let bss = i > 0 && maps[i - 1].end == r.start && maps[i - 1].ino != 0;
    !bss && r.kind == RegionKind::Anonymous
        && r.end - r.start >= MIN_REGION
        && r.prot & libc::PROT_READ as u32 != 0
        && !advised.iter().any(|a| a.start < r.end && r.start < a.end)
        && own.program_only(r)
}

/// Bytes of the sorted ranges `v` inside region `r`.
fn in_range(v: &[(u64, u64)], r: &Region) -> u64 {
    let i = v.partition_point(|x| x.1 <= r.start);
    v[i..]
        .iter()
        .take_while(|x| x.0 < r.end)
        .map(|x| x.1.min(r.end) - x.0.max(r.start))
        .sum()
}

/// Least memory worth a pre-copy (`stage_live`): below it, the fork of a
/// whole checkpoint costs a few milliseconds at most.
const LIVE_MIN: u64 = 64 << 20;

/// Frozen, for a whole checkpoint with nothing to build on (the first, or
/// the first since a restart), in the thread that forks the writer: the
/// first half of a checkpoint whose pause is page-table walks, not a fork.
/// The large regions of private memory are left out of the writer's fork
/// (whose page-table copy, 20-35 ms per GiB, is otherwise the whole
/// pause), and the writer reads them from the running program, through
/// its /proc/self/mem opened here. That image holds no single moment; but
/// this round of write-tracking started at this freeze, so the checkpoint
/// taken right after it (see `writer`'s pre-copy) finds every page written
/// since, copies those while frozen, and takes the rest from this image:
/// pages not written since then are the same at both freezes. Returns the
/// bytes left to the live read (0: nothing staged, a whole checkpoint as
/// usual). Same rules as `stage` for the regions; scratch allocation and
/// raw calls only.
pub fn stage_live(maps: &[Region], advised: &[ForkAdvice]) -> u64 {
    STAGE.store(core::ptr::null_mut(), Release);
    if DISABLED.load(Relaxed) {
        return 0;
    }
    let Some(round) = super::dirty::round() else {
        return 0;
    };
    let own = super::Own::now();
    let mut chosen: Vec<&Region> = Vec::new();
    let mut total = 0;
    for (i, r) in maps.iter().enumerate() {
        if !may_leave_out(maps, i, advised, &own)
            || round.tracked.binary_search(&(r.start, r.end)).is_err()
        {
            continue;
        }
        let present = in_range(&round.present, r);
        if present < MIN_REGION / 2 {
            continue;
        }
        total += present;
        chosen.push(r);
    }
    if total < LIVE_MIN {
        return 0;
    }
    let open = |path: &core::ffi::CStr| -> i32 {
        match sys::openat(libc::AT_FDCWD, path, libc::O_RDONLY | libc::O_CLOEXEC) {
            Ok(fd) => match sys::move_high(fd) {
                Ok(h) => {
                    crate::files::set_own(h, true);
                    h
                }
                Err(_) => {
                    sys::close(fd);
                    -1
                }
            },
            Err(_) => -1,
        }
    };
    let (mem, smaps, pagemap) = (
        open(c"/proc/self/mem"),
        open(c"/proc/self/smaps"),
        open(c"/proc/self/pagemap"),
    );
    if mem < 0 || smaps < 0 || pagemap < 0 {
        for fd in [mem, smaps, pagemap].into_iter().filter(|&fd| fd >= 0) {
            crate::files::set_own(fd, false);
            sys::close(fd);
        }
        return 0;
    }
    let mut st = Stage {
        regions: Vec::new(),
        live_mem: mem,
        live_smaps: smaps,
        live_pagemap: pagemap,
        // Beyond this the checkpoint after it forks those regions anyway.
        live_limit: total / PAGE / RATIO,
    };
    let mut left = 0;
    for r in chosen {
        // SAFETY: as in `stage`, undone by `unstage`.
        if unsafe { advise(r, libc::MADV_DONTFORK) } {
            // One run: the region's pages at their own addresses in
            // /proc/self/mem.
            let runs = vec![Run {
                addr: r.start,
                len: r.end - r.start,
                offset: r.start,
            }];
            st.regions.push(Staged {
                region: frozen_region(r),
                runs,
            });
            left += r.end - r.start;
        }
    }
    STAGE.store(Box::leak(Box::new(st)), Release);
    left
}

/// Whether this checkpoint's writer reads regions from the running
/// program (`stage_live`).
pub fn is_live() -> bool {
    // SAFETY: as in `unstage`.
    unsafe { STAGE.load(Acquire).as_ref() }.is_some_and(|st| st.live_mem >= 0)
}

/// Writer of a live stage: the program's /proc/self/pagemap, opened while
/// frozen (-1: none).
pub fn live_pagemap() -> i32 {
    // SAFETY: as in `unstage`.
    unsafe { STAGE.load(Acquire).as_ref() }.map_or(-1, |st| st.live_pagemap)
}

/// Writer of a live stage: the program's /proc/self/smaps, opened while
/// frozen (-1: none).
pub fn live_smaps() -> i32 {
    // SAFETY: as in `unstage`.
    unsafe { STAGE.load(Acquire).as_ref() }.map_or(-1, |st| st.live_smaps)
}

/// Writer of a live stage, as it reads: whether the program has written
/// so much of the regions since the freeze that the checkpoint after this
/// one could not leave them out of its fork (a program writing all over
/// its memory): the pre-copy then stops at once, rather than read memory
/// the next checkpoint must store again.
pub fn live_written_too_much() -> bool {
    // SAFETY: as in `unstage`.
    let Some(st) = (unsafe { STAGE.load(Acquire).as_ref() }) else {
        return false;
    };
    let mut seen = 0;
    for s in &st.regions {
        match super::dirty::count_written(
            st.live_pagemap,
            s.region.start,
            s.region.end,
            st.live_limit + 1 - seen,
        ) {
            Some(n) => seen += n,
            None => return true,
        }
        if seen > st.live_limit {
            return true;
        }
    }
    false
}

/// Frozen, after the fork: every region forks again, and the copy is the
/// writer's alone.
pub fn unstage() {
    let p = STAGE.load(Acquire);
    // SAFETY: set by `stage` from a leaked box in the scratch arena, valid
    // in this checkpoint window; never freed.
    let Some(st) = (unsafe { p.as_ref() }) else {
        return;
    };
    for s in &st.regions {
        // SAFETY: as in `stage`: the advice the region had before it.
        unsafe { advise(&s.region, libc::MADV_DOFORK) };
    }
    // The writer holds its own copies of the live descriptors.
    for fd in [st.live_mem, st.live_smaps, st.live_pagemap] {
        if fd >= 0 {
            crate::files::set_own(fd, false);
            sys::close(fd);
        }
    }
    STAGE.store(core::ptr::null_mut(), Release);
}

/// Writer, once the image is one the next may build on (`memory`: the
/// bytes of memory it describes): give the copy the pages the next
/// checkpoint may fill (or give back what it will not), so the program
/// does not wait for them. The next checkpoint stages only after this.
pub fn grow(memory: u64) {
    let fd = COPY.load(Acquire);
    if fd < 0 {
        return;
    }
    let want = (memory / RATIO).min(MAX_COPY);
    let have = size_of(fd);
    if have < want {
        allocate(fd, want);
    } else if have > 2 * want + MIN_REGION {
        // SAFETY: ftruncate of our own memfd; no writer reads it now (the
        // one before this waited for its predecessor, and this one
        // copied its pages already).
        unsafe { libc::syscall(libc::SYS_ftruncate, fd, want as i64) };
    }
}

/// Post-restart: the descriptor number recorded is not ours any more.
pub fn forget() {
    COPY.store(-1, Release);
}

/// Writer: the regions its fork lacks, with the descriptor of their copy.
pub fn staged() -> (i32, &'static [Staged]) {
    // SAFETY: as in `unstage`; the writer reads its own copy of it, left
    // by the coordinator before the fork.
    match unsafe { STAGE.load(Acquire).as_ref() } {
        Some(st) if st.live_mem >= 0 => (st.live_mem, &st.regions[..]),
        Some(st) => (COPY.load(Acquire), &st.regions[..]),
        None => (-1, &[]),
    }
}

/// Writer: the descriptors to keep open (-1: none).
pub fn fds() -> [i32; 4] {
    // SAFETY: as in `unstage`.
    let live = unsafe { STAGE.load(Acquire).as_ref() }.map_or((-1, -1, -1), |st| {
        (st.live_mem, st.live_smaps, st.live_pagemap)
    });
    [COPY.load(Acquire), live.0, live.1, live.2]
}

/// Whether the region starting at `start` was left out of the fork.
pub fn is_staged(start: u64) -> bool {
    staged().1.iter().any(|s| s.region.start == start)
}

/// The copy's memfd, made on first use in this process, out of the
/// program's way (a forked child lets go of its parent's).
fn copy_fd() -> Option<i32> {
    let pid = sys::getpid();
    let fd = COPY.load(Acquire);
    if fd >= 0 && COPY_PID.load(Acquire) == pid {
        return Some(fd);
    }
    if fd >= 0 {
        COPY.store(-1, Release);
        crate::files::set_own(fd, false);
        sys::close(fd);
    }
    // SAFETY: memfd_create with a NUL-terminated name.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_memfd_create,
            c"ckpt-stage".as_ptr(),
            libc::MFD_CLOEXEC,
        )
    } as i32;
    if raw < 0 {
        return None;
    }
    let fd = match sys::move_high(raw) {
        Ok(h) => h,
        Err(_) => {
            sys::close(raw);
            return None;
        }
    };
    COPY.store(fd, Release);
    COPY_PID.store(pid, Release);
    crate::files::set_own_at(fd, &COPY);
    Some(fd)
}

/// The size of memfd `fd` (0 when unknown). Its offset means nothing:
/// it is only read and written at given offsets.
fn size_of(fd: i32) -> u64 {
    // SAFETY: lseek on our own memfd.
    let end = unsafe { libc::syscall(libc::SYS_lseek, fd, 0i64, libc::SEEK_END) };
    end.max(0) as u64
}

/// Allocate the first `len` bytes of memfd `fd`; whether it could.
fn allocate(fd: i32, len: u64) -> bool {
    // SAFETY: fallocate on our own memfd.
    unsafe { libc::syscall(libc::SYS_fallocate, fd, 0, 0i64, len as i64) == 0 }
}

/// Runs of the program's memory copied to consecutive offsets of `fd`,
/// many per pwritev (the kernel copies; a page it cannot read fails the
/// copy). A pwrite per run of a page cost a third more. Frozen: on the
/// stack (1 KiB: this runs in a signal handler on a program thread's own
/// stack), no allocation.
struct Batch {
    fd: i32,
    /// Where the first run of `iov` goes.
    offset: u64,
    iov: [libc::iovec; BATCH],
    n: usize,
    bytes: u64,
}

const BATCH: usize = 64;

impl Batch {
    fn new(fd: i32, offset: u64) -> Batch {
        Batch {
            fd,
            offset,
            iov: [libc::iovec {
                iov_base: core::ptr::null_mut(),
                iov_len: 0,
            }; BATCH],
            n: 0,
            bytes: 0,
        }
    }

    /// Queue `len` bytes at `addr`; whether every copy so far succeeded.
    fn add(&mut self, addr: u64, len: u64) -> bool {
        if self.n == BATCH && !self.flush() {
            return false;
        }
        self.iov[self.n] = libc::iovec {
            iov_base: addr as *mut _,
            iov_len: len as usize,
        };
        self.n += 1;
        self.bytes += len;
        true
    }

    /// Copy what is queued; whether all of it was.
    fn flush(&mut self) -> bool {
        if self.n == 0 {
            return true;
        }
        // SAFETY: the kernel reads the queued ranges of this process with
        // fault handling (EFAULT or a short count, never a signal) into
        // our memfd; `iov` holds `n` initialized entries.
        let done = unsafe {
            libc::syscall(
                libc::SYS_pwritev,
                self.fd,
                self.iov.as_ptr(),
                self.n,
                self.offset as i64,
                0i64,
            )
        };
        // A short count: a page that could not be read (or no room).
        let ok = done >= 0 && done as u64 == self.bytes;
        self.offset += self.bytes;
        self.n = 0;
        self.bytes = 0;
        ok
    }
}

/// madvise a whole region; whether the kernel took it.
///
/// # Safety
/// Only advice that changes how fork() treats the region.
unsafe fn advise(r: &Region, advice: i32) -> bool {
    libc::syscall(libc::SYS_madvise, r.start, r.end - r.start, advice) == 0
}
