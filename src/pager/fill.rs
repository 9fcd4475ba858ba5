//! The pager's work: every stored page of the paged regions copied into
//! the program through its userfaultfd, by one thread per core.
//!
//! Eager: the program waits until everything is in. Lazy: the program
//! runs meanwhile, and a fault handler thread serves what it touches
//! first (the piece of the image holding the page, copied at once by the
//! handler) and follows what the program does to memory not yet filled:
//! - MADV_DONTNEED / MADV_REMOVE (UFFD_EVENT_REMOVE) and munmap
//!   (UFFD_EVENT_UNMAP): those pages are never filled (a page the program
//!   dropped reads zeros, as it would have);
//! - mremap (UFFD_EVENT_REMAP): pages not filled yet go to the new place;
//! - a touched page the image holds nothing for: a zero page.
//!
//! Where the pages go is the [`Layout`], in the program's current
//! addresses. Copies hold it for reading; the handler reads the
//! userfaultfd (which is what lets an munmap or madvise go on) only while
//! holding it for writing, so no copy started before it learned of a
//! removal can land after the kernel dropped those pages: the kernel
//! refuses copies (EAGAIN) from the moment an event is raised until it
//! is read, and the handler changes the layout before any copy resumes.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::*};
use std::sync::{Mutex, RwLock};

use ckpt::image::Meta;

/// Raw extents are copied in pieces of at most this: the work a fault
/// waits for in a lazy restart (about 0.1 ms), and a share for each core.
pub(super) const PIECE: u64 = 1 << 20;
const PAGE: u64 = 4096;
/// `_IOWR(0xAA, 0x03, struct uffdio_copy)`.
const UFFDIO_COPY: libc::c_ulong = 0xc028_aa03;
/// `_IOWR(0xAA, 0x04, struct uffdio_zeropage)`.
const UFFDIO_ZEROPAGE: libc::c_ulong = 0xc020_aa04;
/// `_IOR(0xAA, 0x02, struct uffdio_range)`.
const UFFDIO_WAKE: libc::c_ulong = 0x8010_aa02;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
const UFFD_EVENT_REMAP: u8 = 0x14;
const UFFD_EVENT_REMOVE: u8 = 0x15;
const UFFD_EVENT_UNMAP: u8 = 0x16;
/// How long a part may find nothing mapped where it goes before it
/// counts as gone (an mremap's event is read within milliseconds).
const MISSING_WAIT_NS: u64 = 200_000_000;
/// Test-only: each background worker sleeps this many milliseconds before
/// each piece of a lazy fill, so tests can act while it goes on.
pub const TEST_SLOW: &str = "CKPT_TEST_PAGER_SLOW_MS";

/// A piece of the image: `stored` bytes at `off` of source `src`, plain
/// (`codec` 0) or a compressed block of `block` bytes.
#[derive(Clone, Copy)]
struct Job {
    src: usize,
    off: u64,
    codec: u8,
    stored: u64,
    block: u64,
    /// Checked here before use (see [`super::checked_late`]): the
    /// checksum of the stored bytes, which are followed by zeros up to
    /// `footprint`.
    check: Option<(u64, u64)>,
}

/// `len` bytes at `at` of a job's (decompressed) bytes go to `addr`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Part {
    addr: u64,
    at: u64,
    len: u64,
}

impl Part {
    fn end(&self) -> u64 {
        self.addr + self.len
    }

    /// The part of `self` inside `[start, end)`, if any.
    fn within(&self, start: u64, end: u64) -> Option<Part> {
        let a = self.addr.max(start);
        let b = self.end().min(end);
        (a < b).then(|| Part {
            addr: a,
            at: self.at + (a - self.addr),
            len: b - a,
        })
    }
}

/// Where each job's bytes go now.
#[derive(Default)]
struct Layout {
    parts: Vec<Vec<Part>>,
    /// (address, end, job) of every part, by address.
    index: Vec<(u64, u64, usize)>,
}

impl Layout {
    fn reindex(&mut self) {
        self.index = self
            .parts
            .iter()
            .enumerate()
            .flat_map(|(j, ps)| ps.iter().map(move |p| (p.addr, p.end(), j)))
            .collect();
        // Stable: it merges the runs the parts come in (each source's
        // parts by address) in one pass, where an unstable sort did not.
        self.index.sort();
    }

    /// The job whose bytes go to `addr`.
    fn find(&self, addr: u64) -> Option<usize> {
        let i = self.index.partition_point(|e| e.0 <= addr);
        let e = self.index.get(i.checked_sub(1)?)?;
        (addr < e.1).then_some(e.2)
    }

    /// Nothing goes to `[start, end)` any more.
    fn remove(&mut self, start: u64, end: u64) {
        for ps in &mut self.parts {
            if !ps.iter().any(|p| p.within(start, end).is_some()) {
                continue;
            }
            *ps = ps
                .iter()
                .flat_map(|p| [p.within(0, start), p.within(end, u64::MAX)])
                .flatten()
                .collect();
        }
    }

    /// What went to `[from, from+len)` goes to `[to, to+len)`.
    fn remap(&mut self, from: u64, to: u64, len: u64) {
        let end = from.saturating_add(len);
        for ps in &mut self.parts {
            if !ps.iter().any(|p| p.within(from, end).is_some()) {
                continue;
            }
            *ps = ps
                .iter()
                .flat_map(|p| {
                    let moved = p.within(from, end).map(|m| Part {
                        addr: m.addr - from + to,
                        ..m
                    });
                    [p.within(0, from), moved, p.within(end, u64::MAX)]
                })
                .flatten()
                .collect();
        }
    }
}

/// What the pager copies: its jobs in file order, where their bytes go,
/// and the bytes to fill. Made before the restorer hands over its
/// userfaultfd (see [`super::serve`]): a chain's tens of thousands of
/// extents are planned while the restorer sets up the program.
pub(super) struct Plan {
    jobs: Vec<Job>,
    layout: Layout,
    total: u64,
}

/// `Job`'s description of its bytes, which every extent sharing the job
/// must agree on.
fn same_bytes(a: &Job, b: &Job) -> bool {
    (a.codec, a.stored, a.block, a.check) == (b.codec, b.stored, b.block, b.check)
}

/// The jobs for `meta`'s paged regions, in file order, their layout, and
/// the bytes to fill. With `late`, a job checks what it reads: an own
/// extent of the image ([`super::checked_late`]), or the whole extent of
/// an earlier image (`late_deps[src]`) that references take pages from;
/// such an extent no reference uses is one job too, checked and copied
/// nowhere, so every byte of the chain is still checked.
///
/// Every piece is listed with its place in the file, then sorted by it
/// (stably: a job's parts keep the extents' order) and merged: linear in
/// the extents but for the sort (a map of jobs took 6.5 ms for the
/// 21,000 extents of a 4 GiB chain, where the program waited for it).
pub(super) fn plan(
    meta: &Meta,
    sources: &[i32],
    late_deps: &[Vec<super::LateExtent>],
    lazy: bool,
    late: bool,
) -> Result<Plan, String> {
    // (job, part): `None` for a deferred extent nothing takes pages
    // from (checked all the same). Its place in the file is the job's.
    // About one piece per extent (an estimate: grown if need be).
    let mut pieces: Vec<(Job, Option<Part>)> = Vec::with_capacity(
        meta.regions.iter().map(|r| r.extents.len()).sum::<usize>()
            + late_deps.iter().map(Vec::len).sum::<usize>(),
    );
    let mut total = 0;
    let deferred = |src: usize| late_deps.get(src).filter(|_| late && src > 0);
    // The deferred extent of source `src` holding file offset `off`.
    let holding = |src: usize, off: u64| {
        let list = deferred(src)?;
        let i = list.partition_point(|d| d.off <= off).checked_sub(1)?;
        let d = list[i];
        (off < d.off + d.stored).then_some(d)
    };
    for (lazy_region, e) in meta
        .regions
        .iter()
        .filter(|r| super::paged_region(r, lazy))
        .flat_map(|r| {
            let lazy_region = super::paged_region(r, true);
            r.extents.iter().map(move |e| (lazy_region, e))
        })
    {
        let own_check =
            (late && super::checked_late(lazy_region, e)).then_some((e.hash, e.footprint()));
        let src = e.src as usize;
        if src >= sources.len() {
            return Err(format!(
                "the memory at {:#x} refers to an earlier image the image does not name",
                e.addr
            ));
        }
        total += e.len;
        if e.codec == 0 {
            let mut done = 0;
            while done < e.len {
                let at = e.file_offset + done;
                if let Some(d) = holding(src, at) {
                    // Pages of an earlier image's extent: its job reads
                    // and checks all of it, and copies what is referred to.
                    let n = (e.len - done).min(d.off + d.stored - at);
                    let part = Part {
                        addr: e.addr + done,
                        at: at - d.off,
                        len: n,
                    };
                    pieces.push((late_job(src, d), Some(part)));
                    done += n;
                    continue;
                }
                let mut n = (e.len - done).min(PIECE);
                if let Some(l) = deferred(src) {
                    if let Some(next) = l.get(l.partition_point(|d| d.off <= at)) {
                        n = n.min(next.off - at);
                    }
                }
                let job = Job {
                    src,
                    off: at,
                    codec: 0,
                    stored: n,
                    block: n,
                    // One piece: the whole extent.
                    check: own_check,
                };
                let part = Part {
                    addr: e.addr + done,
                    at: 0,
                    len: n,
                };
                pieces.push((job, Some(part)));
                done += n;
            }
            continue;
        }
        if e.block > 64 * ckpt::memory::compress::MAX_BLOCK
            || e.skip.checked_add(e.len).is_none_or(|end| end > e.block)
        {
            return Err(format!(
                "the block of the memory at {:#x} is malformed",
                e.addr
            ));
        }
        let check = match holding(src, e.file_offset) {
            Some(d) if d.off == e.file_offset => Some((d.hash, d.footprint)),
            _ => own_check,
        };
        let job = Job {
            src,
            off: e.file_offset,
            codec: e.codec,
            stored: e.stored,
            block: e.block,
            check,
        };
        let part = Part {
            addr: e.addr,
            at: e.skip,
            len: e.len,
        };
        pieces.push((job, Some(part)));
    }
    for (src, list) in late_deps.iter().enumerate().filter(|_| late).skip(1) {
        pieces.extend(list.iter().map(|&d| (late_job(src, d), None)));
    }
    // Sorted by place, then by listing: per source, where the pieces
    // come mostly in file order already (a stable sort merges such runs
    // in one pass; the pieces themselves are large to move).
    let mut by_src: Vec<Vec<(u64, usize)>> = vec![Vec::new(); sources.len().max(late_deps.len())];
    for (i, (j, _)) in pieces.iter().enumerate() {
        by_src[j.src].push((j.off, i));
    }
    let mut jobs: Vec<Job> = Vec::with_capacity(pieces.len());
    let mut parts: Vec<Vec<Part>> = Vec::with_capacity(pieces.len());
    let mut last = None;
    for (src, mut order) in by_src.into_iter().enumerate() {
        order.sort();
        for (off, i) in order {
            let (job, part) = pieces[i];
            let key = (src, off);
            if last != Some(key) {
                last = Some(key);
                jobs.push(job);
                parts.push(part.into_iter().collect());
                continue;
            }
            let (have, list) = (jobs.last_mut(), parts.last_mut());
            let (Some(have), Some(list)) = (have, list) else {
                continue;
            };
            let Some(part) = part else {
                // A deferred extent's own listing (listed last, so after
                // those taking pages from it): its job is there.
                continue;
            };
            if have.codec == 0 && job.codec == 0 && have.check.is_none() && job.check.is_none() {
                // Two references starting at the same unchecked raw bytes.
                have.stored = have.stored.max(job.stored);
                have.block = have.stored;
            } else if !same_bytes(have, &job) {
                return Err(format!(
                    "the memory at {:#x} describes a block another extent describes otherwise",
                    part.addr
                ));
            }
            list.push(part);
        }
    }
    let mut layout = Layout {
        parts,
        index: Vec::new(),
    };
    layout.reindex();
    Ok(Plan {
        jobs,
        layout,
        total,
    })
}

/// The job reading and checking deferred extent `d` of source `src` as
/// plain bytes (a block no reference uses is checked, not decompressed).
fn late_job(src: usize, d: super::LateExtent) -> Job {
    Job {
        src,
        off: d.off,
        codec: 0,
        stored: d.stored,
        block: d.stored,
        check: Some((d.hash, d.footprint)),
    }
}

const TODO: u8 = 0;
const CLAIMED: u8 = 1;
const DONE: u8 = 2;

/// What a copy ran into.
enum Stop {
    /// The address space is changing (an event not read yet): retry
    /// after the handler read it.
    Again,
    /// Nothing is mapped where a part goes: moved by an mremap whose
    /// event is not read yet (the kernel looks the range up before it
    /// says EAGAIN), or gone without an event (shmat over it).
    Missing,
    /// The program's process is gone: nothing left to fill.
    Gone,
    Failed(String),
}

/// Everything the filling threads share.
struct Fill<'a> {
    uffd: RawFd,
    lazy: bool,
    jobs: Vec<Job>,
    layout: RwLock<Layout>,
    state: Vec<AtomicU8>,
    /// When a job's copy first met `Stop::Missing` (monotonic ns, 0:
    /// never): after `MISSING_WAIT` its missing parts count as gone.
    missing: Vec<AtomicU64>,
    maps: &'a [Mapped],
    /// Background workers still working.
    workers_left: AtomicUsize,
    /// Next job for a background worker.
    next: AtomicUsize,
    /// Jobs done.
    finished: AtomicUsize,
    /// Bytes copied (progress).
    copied: AtomicU64,
    /// Faults served, ranges dropped (removed or unmapped), ranges moved.
    faults: AtomicU64,
    removed: AtomicU64,
    moved: AtomicU64,
    stop: AtomicBool,
    gone: AtomicBool,
    failure: Mutex<Option<String>>,
    biggest: usize,
}

impl Fill<'_> {
    fn fail(&self, why: String) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        f.get_or_insert(why);
        self.stop.store(true, Relaxed);
    }

    /// Whether the program's userfaultfd has something not read yet.
    fn event_waiting(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.uffd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll of one pollfd on the stack, no waiting.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 && pfd.revents & libc::POLLIN != 0 }
    }

    fn over(&self) -> bool {
        self.stop.load(Relaxed) || self.finished.load(Acquire) == self.jobs.len()
    }

    /// Job `j` by this thread, unless another took it; `buf` holds a
    /// decompressed block. `handler`: the fault handler runs it, which
    /// must not wait for an event to be read (it reads them): the job is
    /// left to do again (false).
    fn run(&self, j: usize, buf: &mut Buffer, handler: bool) -> bool {
        if self.state[j]
            .compare_exchange(TODO, CLAIMED, AcqRel, Relaxed)
            .is_err()
        {
            return true;
        }
        match self.copy_job(j, buf, handler) {
            Ok(()) => {}
            Err(Stop::Gone) => {
                self.gone.store(true, Relaxed);
                self.stop.store(true, Relaxed);
            }
            Err(Stop::Failed(why)) => self.fail(why),
            // (copy_job turns Missing into Again or a failure.)
            Err(Stop::Again | Stop::Missing) => {
                // Copies already made are found there (EEXIST) next time.
                self.state[j].store(TODO, Release);
                return false;
            }
        }
        self.state[j].store(DONE, Release);
        self.finished.fetch_add(1, AcqRel);
        true
    }

    fn copy_job(&self, j: usize, buf: &mut Buffer, handler: bool) -> Result<(), Stop> {
        let job = &self.jobs[j];
        let first = || {
            self.layout
                .read()
                .map(|l| l.parts[j].first().map_or(0, |p| p.addr))
                .unwrap_or(0)
        };
        let Some(from) = self.maps[job.src].at(job.off, job.stored) else {
            return Err(Stop::Failed(format!(
                "the image ends before the memory at {:#x}",
                first()
            )));
        };
        if let Some((hash, footprint)) = job.check {
            let whole = self.maps[job.src].at(job.off, footprint);
            let ok = whole.is_some_and(|p| {
                // SAFETY: `p` points at `footprint` bytes inside the mapping
                // (checked by `at`), which lives until every job is done.
                let b = unsafe { std::slice::from_raw_parts(p, footprint as usize) };
                let (stored, pad) = b.split_at((job.stored as usize).min(b.len()));
                xxhash_rust::xxh3::xxh3_64(stored) == hash && pad.iter().all(|&x| x == 0)
            });
            if !ok {
                return Err(Stop::Failed(format!(
                    "corrupt image: checksum mismatch in the memory at {:#x}",
                    first()
                )));
            }
        }
        let data: *const u8 = if job.codec == 0 {
            from
        } else {
            // SAFETY: `from` points at `stored` bytes inside the mapping
            // (checked by `at`), which lives until every job is done.
            let input = unsafe { std::slice::from_raw_parts(from, job.stored as usize) };
            let out = &mut buf.as_mut()[..job.block as usize];
            ckpt::memory::compress::decompress(job.codec, input, out).map_err(|why| {
                Stop::Failed(format!(
                    "corrupt image: the memory at {:#x} cannot be decompressed: {why}",
                    first()
                ))
            })?;
            out.as_ptr()
        };
        loop {
            // A part with nothing mapped there for MISSING_WAIT, and no
            // event waiting to be read, is gone: an mremap's event is
            // raised at once and read within milliseconds.
            let since = self.missing[j].load(Acquire);
            let gone_ok = since != 0
                && monotonic_ns().saturating_sub(since) > MISSING_WAIT_NS
                && !self.event_waiting();
            let layout = self.layout.read().unwrap_or_else(|e| e.into_inner());
            let r = layout.parts[j].iter().try_for_each(|p| {
                // `data + at .. + len` lies in the job's bytes: parts are
                // cut from extents checked against the block in `plan`.
                copy(
                    self.uffd,
                    p.addr,
                    data.wrapping_add(p.at as usize),
                    p.len,
                    self.lazy && gone_ok,
                )
                .map_err(|e| match e {
                    Stop::Missing if self.lazy => {
                        let _ =
                            self.missing[j].compare_exchange(0, monotonic_ns(), AcqRel, Relaxed);
                        Stop::Again
                    }
                    Stop::Missing => Stop::Failed(format!(
                        "cannot copy memory to {:#x}: nothing is mapped there",
                        p.addr
                    )),
                    e => e,
                })?;
                self.copied.fetch_add(p.len, Relaxed);
                Ok(())
            });
            drop(layout);
            match r {
                Err(Stop::Again) if !handler => {
                    std::thread::sleep(std::time::Duration::from_micros(50))
                }
                r => return r,
            }
        }
    }

    /// A background worker: jobs in file order.
    fn work(&self, slow_ms: u64) {
        self.work_on(slow_ms);
        self.workers_left.fetch_sub(1, AcqRel);
    }

    fn work_on(&self, slow_ms: u64) {
        let mut buf = match Buffer::new(self.biggest) {
            Ok(b) => b,
            Err(e) => return self.fail(e),
        };
        while !self.stop.load(Relaxed) {
            let j = self.next.fetch_add(1, Relaxed);
            if j >= self.jobs.len() {
                return;
            }
            if slow_ms > 0 && self.state[j].load(Relaxed) == TODO {
                std::thread::sleep(std::time::Duration::from_millis(slow_ms));
            }
            self.run(j, &mut buf, false);
        }
    }

    /// The lazy restart's fault handler (see the module's text); returns
    /// when every job is done or the fill stopped.
    fn handle(&self) {
        let mut buf = match Buffer::new(self.biggest) {
            Ok(b) => b,
            Err(e) => return self.fail(e),
        };
        // Faults in jobs another thread is copying: woken again once done
        // (the copy wakes them, unless the program dropped that page since).
        let mut waiting: Vec<(u64, usize)> = Vec::new();
        let mut msgs = [[0u64; 4]; 64];
        // Faults to serve (those left when a copy met an event not read
        // yet are served again after reading it).
        let mut faults: Vec<u64> = Vec::new();
        while !self.over() || !waiting.is_empty() || !faults.is_empty() {
            if self.stop.load(Relaxed) {
                return;
            }
            let mut pfd = libc::pollfd {
                fd: self.uffd,
                events: libc::POLLIN,
                revents: 0,
            };
            let wait_ms = if waiting.is_empty() && faults.is_empty() {
                20
            } else {
                1
            };
            // SAFETY: poll of one pollfd on the stack.
            unsafe { libc::poll(&mut pfd, 1, wait_ms) };
            if pfd.revents & libc::POLLIN != 0 {
                let mut layout = self.layout.write().unwrap_or_else(|e| e.into_inner());
                let mut changed = false;
                loop {
                    // SAFETY: read into a local array of uffd_msg-sized
                    // (32-byte) records; the descriptor is non-blocking.
                    let n = unsafe {
                        libc::read(
                            self.uffd,
                            msgs.as_mut_ptr().cast(),
                            std::mem::size_of_val(&msgs),
                        )
                    };
                    if n <= 0 {
                        break;
                    }
                    for m in &msgs[..n as usize / 32] {
                        let event = m[0] as u8;
                        let (a, b, c) = (m[1], m[2], m[3]);
                        match event {
                            UFFD_EVENT_PAGEFAULT => {
                                faults.push(b & !(PAGE - 1));
                                self.faults.fetch_add(1, Relaxed);
                            }
                            UFFD_EVENT_REMOVE | UFFD_EVENT_UNMAP => {
                                layout.remove(a, b);
                                self.removed.fetch_add(1, Relaxed);
                                changed = true;
                            }
                            UFFD_EVENT_REMAP => {
                                layout.remap(a, b, c);
                                self.moved.fetch_add(1, Relaxed);
                                changed = true;
                            }
                            _ => {}
                        }
                    }
                }
                if changed {
                    layout.reindex();
                }
            }
            let mut again = Vec::new();
            for addr in faults.drain(..) {
                let job = self
                    .layout
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .find(addr);
                let Some(j) = job else {
                    // Nothing stored here, or the program dropped it.
                    if let Err(e) = zero_page(self.uffd, addr) {
                        return self.fail(e);
                    }
                    continue;
                };
                if !self.run(j, &mut buf, true) {
                    again.push(addr);
                } else if self.state[j].load(Acquire) == DONE {
                    wake(self.uffd, addr);
                } else {
                    waiting.push((addr, j));
                }
            }
            faults = again;
            // Once the workers are gone, jobs they left (given back by
            // this thread after meeting an event) are this thread's.
            if self.workers_left.load(Acquire) == 0 {
                for j in 0..self.jobs.len() {
                    if self.stop.load(Relaxed) {
                        break;
                    }
                    if self.state[j].load(Acquire) == TODO && !self.run(j, &mut buf, true) {
                        break;
                    }
                }
            }
            waiting.retain(|&(addr, j)| {
                let done = self.state[j].load(Acquire) == DONE;
                if done {
                    wake(self.uffd, addr);
                }
                !done
            });
        }
    }
}

/// `struct uffdio_copy`.
#[repr(C)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

/// Copy `len` bytes at `src` (in this process) to `dst` in the
/// userfaultfd's address space: its missing pages, allocated and filled.
/// A page already there is left as it is. Nothing mapped at `dst` is
/// `Stop::Missing`, or with `skip_missing` (it stayed so: the program
/// unmapped it without an event, e.g. shmat over it) skipped, its
/// memory gone.
fn copy(uffd: RawFd, dst: u64, src: *const u8, len: u64, skip_missing: bool) -> Result<(), Stop> {
    let mut done = 0u64;
    while done < len {
        let mut c = UffdioCopy {
            dst: dst + done,
            src: src as u64 + done,
            len: len - done,
            mode: 0,
            copy: 0,
        };
        // SAFETY: UFFDIO_COPY with a complete uffdio_copy; it reads `len`
        // bytes at `src`, which the caller keeps mapped.
        if unsafe { libc::ioctl(uffd, UFFDIO_COPY, &mut c) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if c.copy > 0 {
            done += c.copy as u64;
            continue;
        }
        match e.raw_os_error() {
            Some(libc::EEXIST) => done += PAGE,
            Some(libc::EAGAIN) => return Err(Stop::Again),
            Some(libc::ESRCH) => return Err(Stop::Gone),
            Some(libc::ENOENT) if skip_missing => return Ok(()),
            Some(libc::ENOENT) => return Err(Stop::Missing),
            _ => {
                return Err(Stop::Failed(format!(
                    "cannot copy memory to {:#x} ({} bytes): {e}",
                    dst + done,
                    len - done
                )))
            }
        }
    }
    Ok(())
}

/// A zero page at `addr` (a page already there, or a range gone, is fine).
fn zero_page(uffd: RawFd, addr: u64) -> Result<(), String> {
    // struct uffdio_zeropage { range { start, len }, mode, zeropage }
    let mut z = [addr, PAGE, 0, 0];
    // SAFETY: UFFDIO_ZEROPAGE with a complete uffdio_zeropage.
    if unsafe { libc::ioctl(uffd, UFFDIO_ZEROPAGE, z.as_mut_ptr()) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EEXIST) => {
            wake(uffd, addr);
            Ok(())
        }
        Some(libc::EAGAIN) | Some(libc::ENOENT) | Some(libc::ESRCH) => {
            // Changing (the fault comes again) or gone.
            wake(uffd, addr);
            Ok(())
        }
        _ => Err(format!(
            "cannot give the program a zero page at {addr:#x}: {e}"
        )),
    }
}

/// Let threads waiting on the page at `addr` retry.
fn wake(uffd: RawFd, addr: u64) {
    let mut r = [addr, PAGE];
    // SAFETY: UFFDIO_WAKE with a complete uffdio_range.
    unsafe { libc::ioctl(uffd, UFFDIO_WAKE, r.as_mut_ptr()) };
}

/// What a fill did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Bytes copied (less what the program dropped, or ended before).
    pub bytes: u64,
    /// Lazy: faults served, ranges dropped and moved by the program.
    pub faults: u64,
    pub removed: u64,
    pub moved: u64,
}

/// Fill every paged region of `meta` through `uffd`. Eager: on every
/// core, with a progress bar when wanted. Lazy: `running` is called
/// (on this thread) once the workers and the fault handler run, and the
/// fill goes on meanwhile.
pub fn fill(
    uffd: RawFd,
    planned: Result<Plan, String>,
    sources: &[i32],
    lazy: bool,
    running: &mut dyn FnMut(),
) -> Result<Stats, String> {
    let Plan {
        jobs,
        layout,
        total,
    } = planned?;
    let maps = sources
        .iter()
        .map(|&fd| Mapped::new(fd))
        .collect::<Result<Vec<_>, _>>()?;
    if lazy {
        // SAFETY: F_SETFL on the userfaultfd we were given: the handler
        // reads until nothing is left.
        unsafe { libc::fcntl(uffd, libc::F_SETFL, libc::O_NONBLOCK) };
    }
    let biggest = jobs.iter().map(|j| j.block).max().unwrap_or(0) as usize;
    let n = jobs.len();
    // Threads that run `work`: spawned ones, and this one when eager
    // without a bar to draw.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16)
        .min(n.max(1));
    let f = Fill {
        uffd,
        lazy,
        state: (0..n).map(|_| AtomicU8::new(TODO)).collect(),
        missing: (0..n).map(|_| AtomicU64::new(0)).collect(),
        jobs,
        layout: RwLock::new(layout),
        maps: &maps,
        workers_left: AtomicUsize::new(workers),
        next: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        copied: AtomicU64::new(0),
        faults: AtomicU64::new(0),
        removed: AtomicU64::new(0),
        moved: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        gone: AtomicBool::new(false),
        failure: Mutex::new(None),
        biggest: biggest.max(1),
    };
    let slow_ms = if lazy {
        std::env::var(TEST_SLOW)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    } else {
        0
    };
    let drawing = !lazy && crate::progress::is_wanted();
    let mut bar = crate::progress::Bar::new(drawing, "restoring", total);
    std::thread::scope(|s| {
        let f = &f;
        let spawned = if drawing || lazy {
            workers
        } else {
            workers - 1
        };
        let handles: Vec<_> = (0..spawned)
            .map(|_| {
                s.spawn(move || {
                    if lazy {
                        // The program runs meanwhile: it comes first.
                        // SAFETY: setpriority of this thread (0: the caller).
                        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
                    }
                    f.work(slow_ms)
                })
            })
            .collect();
        let handler = lazy.then(|| s.spawn(move || f.handle()));
        if lazy {
            running();
        } else if !drawing {
            f.work(0);
        }
        while drawing && !handles.iter().all(|h| h.is_finished()) {
            bar.set(f.copied.load(Relaxed));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for h in handles.into_iter().chain(handler) {
            if h.join().is_err() {
                f.fail("a filling thread failed".into());
            }
        }
    });
    bar.finish();
    let failure = f.failure.lock().unwrap_or_else(|e| e.into_inner()).take();
    let stats = Stats {
        bytes: f.copied.load(Relaxed),
        faults: f.faults.load(Relaxed),
        removed: f.removed.load(Relaxed),
        moved: f.moved.load(Relaxed),
    };
    drop(f);
    // The pager ends right after: unmapping a GiB of the image's page
    // table entries here would only keep the program waiting.
    std::mem::forget(maps);
    failure.map_or(Ok(stats), Err)
}

/// A read-only mapping of a whole file.
struct Mapped {
    base: *const u8,
    len: usize,
}

// SAFETY: a read-only mapping: sharing it between threads only reads.
unsafe impl Sync for Mapped {}

impl Mapped {
    fn new(fd: RawFd) -> Result<Mapped, String> {
        // SAFETY: a zeroed stat is valid; fstat fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat into a local struct.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Err(format!(
                "cannot stat an image: {}",
                std::io::Error::last_os_error()
            ));
        }
        let len = st.st_size as usize;
        if len == 0 {
            return Ok(Mapped {
                base: std::ptr::null(),
                len: 0,
            });
        }
        // SAFETY: a fresh read-only private mapping of the whole file.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                fd,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "cannot map an image: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: advice on our own mapping.
        unsafe { libc::madvise(base, len, libc::MADV_SEQUENTIAL) };
        Ok(Mapped {
            base: base as *const u8,
            len,
        })
    }

    /// The address of `[off, off+len)` of the file, if it lies inside.
    fn at(&self, off: u64, len: u64) -> Option<*const u8> {
        let end = off.checked_add(len)?;
        (end <= self.len as u64).then(|| self.base.wrapping_add(off as usize))
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: our own mapping, no longer used.
            unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
        }
    }
}

/// A page-aligned buffer (an anonymous mapping).
struct Buffer {
    base: *mut u8,
    len: usize,
}

impl Buffer {
    fn new(len: usize) -> Result<Buffer, String> {
        let base = ckpt::sys::map_anon(len)
            .ok_or_else(|| {
                format!(
                    "cannot make a buffer of {len} bytes: {}",
                    std::io::Error::last_os_error()
                )
            })?
            .as_mut_ptr();
        Ok(Buffer { base, len })
    }

    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` bytes, writable, owned by `self`.
        unsafe { std::slice::from_raw_parts_mut(self.base, self.len) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(parts: &[(u64, u64, u64)]) -> Layout {
        let mut l = Layout {
            parts: vec![parts
                .iter()
                .map(|&(addr, at, len)| Part { addr, at, len })
                .collect()],
            index: Vec::new(),
        };
        l.reindex();
        l
    }

    fn parts(l: &Layout) -> Vec<(u64, u64, u64)> {
        l.parts[0].iter().map(|p| (p.addr, p.at, p.len)).collect()
    }

    #[test]
    fn a_removal_cuts_parts_and_keeps_what_lies_outside() {
        let mut l = layout(&[(0x1000, 0, 0x4000), (0x9000, 0x4000, 0x1000)]);
        l.remove(0x2000, 0x3000);
        l.reindex();
        assert_eq!(
            parts(&l),
            [
                (0x1000, 0, 0x1000),
                (0x3000, 0x2000, 0x2000),
                (0x9000, 0x4000, 0x1000)
            ]
        );
        assert_eq!(l.find(0x2000), None);
        assert_eq!(l.find(0x3fff), Some(0));
        assert_eq!(l.find(0x9000), Some(0));
        assert_eq!(l.find(0xa000), None);
        l.remove(0, u64::MAX);
        assert!(parts(&l).is_empty());
    }

    #[test]
    fn a_remap_moves_only_what_lies_in_the_moved_range() {
        let mut l = layout(&[(0x1000, 0, 0x4000)]);
        l.remap(0x2000, 0x10_0000, 0x2000);
        l.reindex();
        assert_eq!(
            parts(&l),
            [
                (0x1000, 0, 0x1000),
                (0x10_0000, 0x1000, 0x2000),
                (0x4000, 0x3000, 0x1000)
            ]
        );
        assert_eq!(l.find(0x2000), None);
        assert_eq!(l.find(0x10_1fff), Some(0));
    }
}
