//! Memory: the program's address space at a checkpoint.
//!
//! Verbs: `snapshot` lists the regions (/proc/self/maps) and writes the
//! pages that matter as raw extents; restore is the restorer's job (it maps
//! regions back from the image plan) plus `reserve_restorer_range` here.
//!
//! Runs in the writer child of a checkpoint (a copy-on-write fork of the
//! frozen program, see `checkpoint`), so it reads the program's memory as
//! it was at the freeze while the program itself already runs on. Which
//! pages are stored:
//! - private anonymous memory: pages the kernel has (present or swapped)
//!   and that are not all zero;
//! - private file mappings: only pages the program wrote (anonymous
//!   copies, told apart by PAGEMAP_SCAN's / pagemap's "file page" bit);
//!   the rest is mapped from the file again at restart;
//! - shared file mappings: nothing (the file holds them);
//! - shared memory without a file (shared anonymous, memfd, deleted
//!   files) and private mappings of files no path leads to (unlinked
//!   files, memfds): every non-zero page the program sees, copied while
//!   it was frozen (a fork holds none of them; see `shared`). A private
//!   mapping of an unlinked file comes back as private anonymous memory
//!   with those pages: a page past the end of the file then reads zeros
//!   where it raised SIGBUS, and later writes to the file through a
//!   descriptor no longer show through its clean pages;
//! - vdso/vvar: nothing (the kernel provides them; restart moves them).
//!
//! Regions keep their protection and MAP_NORESERVE; smaps tells which
//! hold no page at all, and those cost nothing (a 2 TiB reservation).
//!
//! Memory advised MADV_DONTFORK / MADV_WIPEONFORK is made to fork like the
//! rest for the writer (see `fork_advice`).

pub mod advice;
pub mod compress;
pub mod dirty;
pub mod fork_advice;
pub mod guards;
mod kept;
pub mod lazy;
pub mod locked;
pub mod shared;
pub mod stage;

use crate::image::{Extent, Region, RegionKind, PAGE};
use crate::sys;

/// Fixed address range kept free for the restorer (see ckpt-restorer).
pub const RESTORER_BASE: u64 = 0x7e00_0000_0000;
/// Length of that range.
pub const RESTORER_LEN: u64 = 64 << 20;

const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;
const PM_FILE: u64 = 1 << 61;
/// A guard page (MADV_GUARD_INSTALL, Linux 6.15 on).
const PM_GUARD: u64 = 1 << 58;

/// PAGEMAP_SCAN page categories (linux/fs.h).
const IS_FILE: u64 = 1 << 2;
const IS_PRESENT: u64 = 1 << 3;
const IS_SWAPPED: u64 = 1 << 4;
const IS_PFNZERO: u64 = 1 << 5;
/// PAGE_IS_GUARD (Linux 6.15 on): a guard page, which a read kills.
const IS_GUARD: u64 = 1 << 8;
/// PAGEMAP_SCAN refused IS_GUARD (a kernel without guard pages).
static NO_GUARD_BIT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: u64 = 0xc060_6610;

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

/// `struct page_region` of linux/fs.h.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// Call `f(addr, len, categories)` for every run of pages of
/// `[start, end)` that are present or swapped (IS_* bits); guard pages
/// (MADV_GUARD_INSTALL) go to `guards` instead, as (start, length). PAGEMAP_SCAN
/// skips unpopulated page tables, so a sparse 2 TiB region costs what its
/// pages do; where the kernel lacks it, pagemap is read page by page.
/// IS_FILE is told only with `file` (finding it costs the kernel a look
/// at every page's struct: 10 ms per GiB).
fn scan(
    pagemap: i32,
    start: u64,
    end: u64,
    file: bool,
    guards: &mut Vec<(u64, u64)>,
    f: &mut dyn FnMut(u64, u64, u64),
) -> Result<(), String> {
    let mut vec = [PageRegion::default(); 256];
    let mut addr = start;
    while addr < end {
        let guard = if NO_GUARD_BIT.load(core::sync::atomic::Ordering::Relaxed) {
            0
        } else {
            IS_GUARD
        };
        let mut arg = PmScanArg {
            size: core::mem::size_of::<PmScanArg>() as u64,
            start: addr,
            end,
            vec: vec.as_mut_ptr() as u64,
            vec_len: vec.len() as u64,
            category_anyof_mask: IS_PRESENT | IS_SWAPPED,
            return_mask: IS_PRESENT
                | IS_SWAPPED
                | IS_PFNZERO
                | guard
                | if file { IS_FILE } else { 0 },
            ..PmScanArg::default()
        };
        // SAFETY: PAGEMAP_SCAN reads `arg` and fills at most vec_len
        // entries of `vec`, both live locals.
        let n = unsafe { libc::ioctl(pagemap, PAGEMAP_SCAN as _, &mut arg) };
        if n < 0 {
            let e = crate::interpose::errno();
            if e == libc::EINVAL && guard != 0 {
                NO_GUARD_BIT.store(true, core::sync::atomic::Ordering::Relaxed);
                continue;
            }
            if addr == start && matches!(e, libc::ENOTTY | libc::EINVAL) {
                return scan_pagemap(pagemap, start, end, guards, f);
            }
            return Err(format!("cannot scan pagemap at {addr:#x}: errno {e}"));
        }
        for p in &vec[..n as usize] {
            if p.categories & IS_GUARD != 0 {
                add_run(guards, p.start, p.end - p.start);
            } else {
                f(p.start, p.end - p.start, p.categories);
            }
        }
        if arg.walk_end <= addr {
            return Err(format!("pagemap scan made no progress at {addr:#x}"));
        }
        addr = arg.walk_end;
    }
    Ok(())
}

/// `scan` by reading pagemap entries (kernels before 6.7).
fn scan_pagemap(
    pagemap: i32,
    start: u64,
    end: u64,
    guards: &mut Vec<(u64, u64)>,
    f: &mut dyn FnMut(u64, u64, u64),
) -> Result<(), String> {
    let mut entries = [0u64; BATCH];
    let mut addr = start;
    while addr < end {
        let pages = (((end - addr) / PAGE) as usize).min(BATCH);
        let bytes = pages * 8;
        // SAFETY: reading pagemap entries into a local array of enough size.
        let n = unsafe {
            libc::pread(
                pagemap,
                entries.as_mut_ptr().cast(),
                bytes,
                (addr / PAGE * 8) as i64,
            )
        };
        if n != bytes as isize {
            return Err(format!("cannot read pagemap at {addr:#x}"));
        }
        for &pm in &entries[..pages] {
            if pm & PM_GUARD != 0 {
                add_run(guards, addr, PAGE);
                addr += PAGE;
                continue;
            }
            let cats = (if pm & PM_PRESENT != 0 { IS_PRESENT } else { 0 })
                | (if pm & PM_SWAPPED != 0 { IS_SWAPPED } else { 0 })
                | (if pm & PM_FILE != 0 { IS_FILE } else { 0 });
            if cats & (IS_PRESENT | IS_SWAPPED) != 0 {
                f(addr, PAGE, cats);
            }
            addr += PAGE;
        }
    }
    Ok(())
}

/// Add `[start, start+len)` to `runs`, joined to the last run it follows.
fn add_run(runs: &mut Vec<(u64, u64)>, start: u64, len: u64) {
    match runs.last_mut() {
        Some((s, l)) if *s + *l == start => *l += len,
        _ => runs.push((start, len)),
    }
}

/// Kernel-provided mappings restart moves instead of storing.
pub const SPECIALS: [&str; 3] = ["[vdso]", "[vvar]", "[vvar_vclock]"];

/// Reserve the restorer's range (PROT_NONE, no memory cost) so no
/// mapping of the program can ever take it; a restart then finds it free.
pub fn reserve_restorer_range() -> Result<(), String> {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
    let p = unsafe {
        libc::mmap(
            RESTORER_BASE as *mut _,
            RESTORER_LEN as usize,
            libc::PROT_NONE,
            libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_NORESERVE
                | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED || p as u64 != RESTORER_BASE {
        let e = std::io::Error::last_os_error();
        if p != libc::MAP_FAILED {
            // SAFETY: unmapping the mapping we just got elsewhere.
            unsafe { libc::munmap(p, RESTORER_LEN as usize) };
        }
        let end = RESTORER_BASE + RESTORER_LEN;
        return Err(
            if p == libc::MAP_FAILED && e.raw_os_error() == Some(libc::ENOMEM) {
                format!(
                    "the address range {RESTORER_BASE:#x}-{end:#x} that restart needs cannot be \
                 reserved: {e} (a limit on the address space, `ulimit -v`, leaves ckpt no \
                 room: it needs about {} MiB more than the program)",
                    (RESTORER_LEN >> 20) + (crate::alloc::ARENA_MIN >> 20) as u64 + 4
                )
            } else {
                format!("the address range {RESTORER_BASE:#x}-{end:#x} that restart needs is already in use")
            },
        );
    }
    Ok(())
}

/// Put the reservation back over whatever a restart left there (the
/// restorer itself). Post-restart context.
pub fn re_reserve_restorer_range() {
    reserve(RESTORER_BASE, RESTORER_LEN);
}

/// Make `[start, start+len)` of ckpt's range reserved again (PROT_NONE,
/// nothing committed), whatever is there.
fn reserve(start: u64, len: u64) {
    // SAFETY: the range belongs to ckpt: nothing of the program is there.
    unsafe {
        libc::mmap(
            start as *mut _,
            len as usize,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
}

/// Parse /proc/self/maps text into regions (without extents). Skips
/// [vsyscall] and ckpt's reservation of the restorer's range.
pub fn parse_maps(text: &str) -> Vec<Region> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(6, ' ');
        let (Some(range), Some(perms), Some(off), Some(dev), Some(ino)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let path = it.next().unwrap_or("").trim_start().to_string();
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        let p = perms.as_bytes();
        // ckpt's reservation (or what is left of it: PROT_NONE, no file)
        // is put back by restart; anything else there is the program's
        // and makes the image unrestartable, which restart says.
        let reservation = start >= RESTORER_BASE
            && end <= RESTORER_BASE + RESTORER_LEN
            && p.starts_with(b"---")
            && ino == "0";
        if path == "[vsyscall]" || reservation {
            continue;
        }
        let prot = (if p.first() == Some(&b'r') {
            libc::PROT_READ
        } else {
            0
        }) | (if p.get(1) == Some(&b'w') {
            libc::PROT_WRITE
        } else {
            0
        }) | (if p.get(2) == Some(&b'x') {
            libc::PROT_EXEC
        } else {
            0
        });
        let shared = p.get(3) == Some(&b's');
        let dev = dev
            .split_once(':')
            .and_then(|(ma, mi)| {
                Some(libc::makedev(
                    u32::from_str_radix(ma, 16).ok()?,
                    u32::from_str_radix(mi, 16).ok()?,
                ))
            })
            .unwrap_or(0);
        let ino: u64 = ino.parse().unwrap_or(0);
        let mut path = crate::names::from_maps(&path, dev, ino);
        if shared
            && ino != 0
            && path.starts_with('/')
            && path.ends_with(" (deleted)")
            && !kernel_shmem(&path)
        {
            // Deleted under the name the maps give, linked under another
            // (a named semaphore's creator): a file mapping of that one.
            if let Some(p) = crate::names::linked_name(&path, dev, ino) {
                path = p;
            }
        }
        let kind = classify(&path, ino, shared);
        out.push(Region {
            start,
            end,
            prot: prot as u32,
            shared,
            grows_down: path == "[stack]",
            kind,
            offset: u64::from_str_radix(off, 16).unwrap_or(0),
            path,
            dev,
            ino,
            noreserve: false,
            kept: 0,
            extents: Vec::new(),
            guards: Vec::new(),
            sealed: false,
            mempolicy: None,
        });
    }
    out
}

/// Memory of the kernel's internal tmpfs the maps name like a file (shared
/// anonymous memory as /dev/zero, a memfd, a System V segment): no path
/// leads to it.
pub(crate) fn kernel_shmem(path: &str) -> bool {
    path.starts_with("/dev/zero") || path.starts_with("/memfd:") || path.starts_with("/SYSV")
}

fn classify(path: &str, ino: u64, shared: bool) -> RegionKind {
    if SPECIALS.contains(&path) {
        return RegionKind::Special;
    }
    let real_file =
        ino != 0 && path.starts_with('/') && !path.ends_with(" (deleted)") && !kernel_shmem(path);
    match (shared, real_file) {
        (false, false) => RegionKind::Anonymous,
        (false, true) => RegionKind::FilePrivate,
        (true, true) => RegionKind::FileShared,
        (true, false) => RegionKind::SharedAnonymous,
    }
}

/// Where extents go: a descriptor written sequentially from `offset`.
/// Small writes (an incremental image's scattered pages) are gathered
/// into `pending` and written together: one system call per MiB, not
/// one per page.
pub struct Sink {
    pub fd: i32,
    pub offset: u64,
    /// Bytes appended but not yet written (they end at `offset`).
    pending: Vec<u8>,
}

/// Writes at least this large go straight to the file.
const GATHER: usize = 1 << 20;

impl Sink {
    pub fn new(fd: i32, offset: u64) -> Sink {
        Sink {
            fd,
            offset,
            pending: Vec::new(),
        }
    }

    /// Append at the current offset.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() >= GATHER / 4 {
            self.flush()?;
            self.pwrite_at(bytes, self.offset)?;
        } else {
            if self.pending.len() + bytes.len() > GATHER {
                self.flush()?;
            }
            if self.pending.capacity() == 0 {
                self.pending.reserve_exact(GATHER);
            }
            self.pending.extend_from_slice(bytes);
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Write what `write_all` gathered.
    pub fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = core::mem::take(&mut self.pending);
        let at = self.offset - pending.len() as u64;
        let done = self.pwrite_at(&pending, at);
        self.pending = pending;
        self.pending.clear();
        done
    }

    /// Zeros up to the next page boundary (after a compressed block).
    pub fn pad_to_page(&mut self) -> Result<(), String> {
        let pad = self.offset.next_multiple_of(PAGE) - self.offset;
        if pad > 0 {
            self.write_all(&[0u8; PAGE as usize][..pad as usize])?;
        }
        Ok(())
    }

    /// Write at a given offset (the current one does not move; bytes
    /// gathered by `write_all` are not written by it: `flush` first).
    pub fn pwrite_at(&mut self, bytes: &[u8], at: u64) -> Result<(), String> {
        let mut done = 0;
        while done < bytes.len() {
            // SAFETY: pwrite from a live slice of our own memory.
            let n = unsafe {
                libc::pwrite(
                    self.fd,
                    bytes[done..].as_ptr().cast(),
                    bytes.len() - done,
                    (at + done as u64) as i64,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("cannot write the image: {e}"));
            }
            done += n as usize;
        }
        Ok(())
    }
}

/// Frozen: why the process cannot be checkpointed because it holds
/// memfd_secret memory (the kernel keeps those pages from every other
/// process, the image writer's fork included, and an image would hold the
/// secret in plain text). None: it holds none. `maps`: this process's
/// regions, read while frozen.
pub fn secret_refusal(maps: &[Region]) -> Option<&'static str> {
    maps.iter()
        .any(|r| r.path.starts_with("/secretmem"))
        .then_some(
            "the program holds memory of memfd_secret: the kernel keeps it from every other \
         process (the image writer too), and an image would hold the secret in plain text",
        )
}

/// List every region and store the pages that matter into `sink`.
/// Writer-child context: the memory read is the frozen program's.
///
/// The list comes from the writer's own /proc/self/smaps: a fork copies
/// every mapping with its flags (MAP_NORESERVE among them), and smaps
/// tells which regions hold no page at all (Rss and Swap 0), whose page
/// tables are then not walked (a 2 TiB reservation costs nothing).
/// Reading smaps walks every page table (17 ms per GiB): an incremental
/// image whose regions are all those of the image it builds on reads
/// the cheap /proc/self/maps instead and takes each region's NORESERVE
/// from there (see [`with_earlier_flags`]).
pub fn snapshot(sink: &mut Sink, earlier: Option<&Earlier>) -> Result<Vec<Region>, String> {
    let mut regions = match earlier.and_then(|e| with_earlier_flags(&e.regions)) {
        Some(regions) => regions,
        None => {
            let smaps = crate::names::read_proc("/proc/self/smaps")
                .map_err(|e| format!("cannot read /proc/self/smaps: {e}"))?;
            parse_smaps(&smaps)
        }
    };
    // Before the staged regions join: they are not in this fork, and were
    // asked while the program was frozen (`stage::frozen_region`).
    for (r, _) in regions.iter_mut() {
        if r.kind != RegionKind::Special {
            r.sealed = guards::sealed(r.start, r.end, r.prot);
            r.mempolicy = guards::mempolicy(r.start);
        }
    }
    add_staged(&mut regions, earlier)?;
    shared::note_noreserve(&regions);
    let pagemap = sys::openat(libc::AT_FDCWD, c"/proc/self/pagemap", libc::O_RDONLY)
        .map_err(|e| format!("cannot open pagemap: errno {e}"))?;
    // Runs are copied here before they are hashed and written: the writer
    // itself changes some of the memory it stores (its stack, errno, the
    // scratch arena), and hash and bytes must agree. Mapped after the maps
    // were read, so it is not part of the image.
    let Some(bounce) = sys::map_anon(MAX_EXTENT as usize) else {
        sys::close(pagemap);
        return Err("cannot map the writer's buffer".into());
    };
    let Some(ahead) = sys::map_anon(READ_AHEAD) else {
        sys::close(pagemap);
        return Err("cannot map the writer's buffer".into());
    };
    let pool = compress::current().map(compress::Pool::new).transpose()?;
    let mut w = Writer {
        sink,
        bounce,
        ahead: ReadAhead {
            buf: ahead,
            fd: -1,
            at: 0,
            len: 0,
        },
        pool,
        run: None,
        own: Own::now(),
        release: None,
        earlier: earlier.map(|e| Refs {
            tracked: dirty::Cursor::new(&e.round.tracked),
            written: dirty::Cursor::new(&e.round.written),
            extents: &e.extents,
            at: 0,
            run: None,
            kept: &e.kept,
        }),
    };
    let result = regions.iter_mut().try_for_each(|(r, populated)| {
        w.store_region(r, *populated, pagemap)?;
        w.drain(r)
    });
    if let Some(pool) = w.pool.take() {
        pool.finish();
    }
    sys::close(pagemap);
    result.map(|()| regions.into_iter().map(|(r, _)| r).collect())
}

/// Put the regions left out of the writer's fork (`stage`) back in the
/// list, in address order, each with the NORESERVE flag of the base
/// image's region of the same bounds (staged only when there is one).
fn add_staged(regions: &mut Vec<(Region, bool)>, earlier: Option<&Earlier>) -> Result<(), String> {
    let staged = stage::staged().1;
    if staged.is_empty() {
        return Ok(());
    }
    if stage::is_live() {
        return add_live(regions, staged);
    }
    let Some(e) = earlier else {
        return Err(
            "the image this one was to build on cannot be used (removed or changed?), and \
             memory was left out of the writer for it; the next checkpoint will be whole"
                .into(),
        );
    };
    for s in staged {
        let mut r = s.region.clone();
        let i = e
            .regions
            .binary_search_by_key(&r.start, |x| x.start)
            .ok()
            .filter(|&i| e.regions[i].end == r.end)
            .ok_or_else(|| {
                format!(
                    "the region {:#x}-{:#x} left out of the writer is not in the image this one \
                     builds on",
                    r.start, r.end
                )
            })?;
        r.noreserve = e.regions[i].noreserve;
        r.grows_down = e.regions[i].grows_down;
        r.guards = e.regions[i].guards.clone();
        regions.push((r, true));
    }
    regions.sort_by_key(|(r, _)| r.start);
    Ok(())
}

/// How much of a region a pre-copy reads between two looks at how much
/// the program wrote meanwhile (a look walks the regions' page tables,
/// about 3 ms per GiB).
const LIVE_PIECE: u64 = 64 << 20;

/// Why a pre-copy stopped early (the checkpoint after it is whole).
pub const PRECOPY_GAVE_UP: &str =
    "the program wrote too much of its memory while it was read; the checkpoint is taken whole";

/// `add_staged` for a pre-copy (`stage::stage_live`): each region with
/// its flags as the program's smaps shows them now (read through the
/// descriptor opened while it was frozen), at the same bounds; a region
/// the program has changed since fails the image (the checkpoint after
/// it is then whole).
fn add_live(regions: &mut Vec<(Region, bool)>, staged: &[stage::Staged]) -> Result<(), String> {
    let fd = stage::live_smaps();
    let mut text = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        // SAFETY: read into a live buffer from our own descriptor.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(format!(
                "cannot read the program's smaps: {}",
                std::io::Error::last_os_error()
            ));
        }
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n as usize]);
    }
    let text = String::from_utf8_lossy(&text);
    let now = parse_smaps(&text);
    let flags = vm_flags(&text);
    for s in staged {
        let Some((r, _)) = now
            .iter()
            .find(|(r, _)| r.start == s.region.start && r.end == s.region.end)
        else {
            return Err(format!(
                "the program changed its memory at {:#x}-{:#x} while it was read",
                s.region.start, s.region.end
            ));
        };
        let mut r2 = s.region.clone();
        r2.noreserve = r.noreserve;
        r2.grows_down = r.grows_down;
        // `gu`: it may hold guard pages; asked of the program's pagemap.
        if flags
            .iter()
            .any(|(a, b, f)| *a == r.start && *b == r.end && f.contains(&"gu"))
        {
            scan(
                stage::live_pagemap(),
                r.start,
                r.end,
                false,
                &mut r2.guards,
                &mut |_, _, _| {},
            )?;
        }
        regions.push((r2, true));
    }
    regions.sort_by_key(|(r, _)| r.start);
    Ok(())
}

/// The writer's regions from /proc/self/maps, each flagged NORESERVE as
/// the region of the same bounds in `earlier` (start, end, noreserve,
/// grows down) was (GROWSDOWN too);
/// None when a region is not there (then smaps must be read). A region
/// unmapped and mapped again at the same bounds with the other flag in
/// between keeps the old one: overcommit accounting may differ at
/// restart, never the contents (pages are tracked and stored as usual).
fn with_earlier_flags(earlier: &[EarlierRegion]) -> Option<Vec<(Region, bool)>> {
    let maps = crate::names::read_proc("/proc/self/maps").ok()?;
    parse_maps(&maps)
        .into_iter()
        .map(|mut r| {
            let i = earlier.binary_search_by_key(&r.start, |x| x.start).ok()?;
            (earlier[i].end == r.end).then(|| {
                r.noreserve = earlier[i].noreserve;
                r.grows_down = earlier[i].grows_down;
                (r, true)
            })
        })
        .collect()
}

/// Parse /proc/self/smaps text into regions (as `parse_maps`) with their
/// NORESERVE flag, each paired with whether it holds any page (Rss or
/// Swap not zero; true when smaps does not say).
pub fn parse_smaps(text: &str) -> Vec<(Region, bool)> {
    let mut out: Vec<(Region, bool)> = parse_maps(text).into_iter().map(|r| (r, true)).collect();
    // parse_maps skips some lines ([vsyscall], ckpt's reservation): walk
    // the text again and match the region by its start.
    let mut cur: Option<usize> = None;
    let mut next = 0;
    let mut pages = 0u64;
    for line in text.lines() {
        let first = line.split(' ').next().unwrap_or("");
        if let Some((a, _)) = first.split_once('-') {
            if let Ok(start) = u64::from_str_radix(a, 16) {
                cur = out[next..]
                    .iter()
                    .position(|(r, _)| r.start == start)
                    .map(|i| next + i);
                if let Some(i) = cur {
                    next = i + 1;
                }
                pages = 0;
                continue;
            }
        }
        let Some(i) = cur else { continue };
        if let Some(v) = line
            .strip_prefix("Rss:")
            .or_else(|| line.strip_prefix("Swap:"))
        {
            pages += v
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(1);
        } else if let Some(flags) = line.strip_prefix("VmFlags:") {
            out[i].0.noreserve = flags.split_whitespace().any(|f| f == "nr");
            // MAP_GROWSDOWN: the main stack, and any region mapped so.
            out[i].0.grows_down |= flags.split_whitespace().any(|f| f == "gd");
            // `gu`: it may hold guard pages, which count in neither.
            out[i].1 = pages > 0 || flags.split_whitespace().any(|f| f == "gu");
            cur = None;
        }
    }
    out
}

/// Each region of /proc/self/smaps text with its VmFlags (`dc`, `lo`, ...).
pub fn vm_flags(text: &str) -> Vec<(u64, u64, Vec<&str>)> {
    let mut out = Vec::new();
    let mut range = None;
    for line in text.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some((start, end)) = range.take() {
                out.push((start, end, flags.split_whitespace().collect()));
            }
            continue;
        }
        let first = line.split(' ').next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(s), Ok(e)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                range = Some((s, e));
            }
        }
    }
    out
}

/// Where this process's regions start (frozen: scratch allocation only).
/// Largest file mapped shared whose contents go into the image.
pub const SAVED_FILE_MAX: u64 = 1 << 20;

/// The small files (at most [`SAVED_FILE_MAX`]) the program maps shared,
/// with their contents, so a restart can make them again if they are gone.
/// While frozen (the program writes them through its mappings).
pub fn saved_files(maps: &[Region]) -> Vec<crate::image::SavedFile> {
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<crate::image::SavedFile> = Vec::new();
    for r in maps {
        if r.kind != crate::image::RegionKind::FileShared || out.iter().any(|f| f.path == r.path) {
            continue;
        }
        let path = crate::names::path(&r.path);
        let Ok(m) = std::fs::metadata(&path) else {
            continue;
        };
        if !m.is_file() || m.ino() != r.ino || m.len() > SAVED_FILE_MAX {
            continue;
        }
        if let Ok(contents) = std::fs::read(&path) {
            out.push(crate::image::SavedFile {
                path: r.path.clone(),
                ino: r.ino,
                mode: m.mode() & 0o7777,
                contents,
            });
        }
    }
    out
}

/// This process's regions, as /proc/self/maps lists them.
pub fn own_maps() -> Vec<Region> {
    parse_maps(&crate::names::read_proc("/proc/self/maps").unwrap_or_default())
}

/// How many of `starts` (regions of this process, read just before the
/// fork) process `child`, a fresh fork, lacks: fork copies every region
/// but those advised MADV_DONTFORK. 0 when the child's map cannot be read.
pub fn missing_in(child: i32, starts: &[u64]) -> usize {
    let maps = crate::names::read_proc(format!("/proc/{child}/maps")).unwrap_or_default();
    let have: Vec<u64> = parse_maps(&maps).iter().map(|r| r.start).collect();
    if have.is_empty() {
        return 0;
    }
    // Both in address order (maps lists them so).
    starts
        .iter()
        .filter(|s| have.binary_search(s).is_err())
        .count()
}

/// What an incremental image may take from earlier images: the round's
/// findings and the stored extents of the image taken at the previous
/// round (with those it referred to itself).
pub struct Earlier {
    pub round: &'static dirty::Round,
    /// The earlier image's regions, by start.
    pub regions: Vec<EarlierRegion>,
    /// Each stored extent of private anonymous memory, in address order,
    /// with `src` as in the image being written.
    pub extents: Vec<Extent>,
    /// The earlier image's kept file mappings (see `kept`).
    pub kept: Vec<KeptBase>,
}

/// A region of the earlier image: what a region of the same bounds takes
/// from it when this image's writer does not read it from the kernel.
pub struct EarlierRegion {
    pub start: u64,
    pub end: u64,
    pub noreserve: bool,
    pub grows_down: bool,
    /// Its guard pages (a region left out of the writer's fork is not
    /// scanned for them: see `stage::guards_changed`).
    pub guards: Vec<(u64, u64)>,
}

/// A writable shared file mapping the earlier image keeps: its bounds,
/// file and offset, and its extents (address order, `src` as in the
/// image being written).
pub struct KeptBase {
    pub start: u64,
    pub end: u64,
    pub ino: u64,
    pub offset: u64,
    pub extents: Vec<Extent>,
}

/// Walks [`Earlier`] along the pages being stored.
struct Refs<'a> {
    tracked: dirty::Cursor<'a>,
    written: dirty::Cursor<'a>,
    extents: &'a [Extent],
    at: usize,
    /// The reference being collected.
    run: Option<Extent>,
    kept: &'a [KeptBase],
}

impl Refs<'_> {
    /// Where an earlier image holds page `a` as it is now: tracked this
    /// round, not written since the previous one, and stored then (a page
    /// stored nowhere was zero). `a` must not decrease between calls.
    /// The answer is a reference to it and to the pages after it that
    /// are held the same way, in the same extent, up to `end`.
    fn find(&mut self, a: u64, end: u64) -> Option<Extent> {
        if !self.tracked.contains(a) || self.written.contains(a) {
            return None;
        }
        while self.at < self.extents.len() && {
            let e = &self.extents[self.at];
            e.addr + e.len <= a
        } {
            self.at += 1;
        }
        let e = self.extents.get(self.at)?;
        (e.addr <= a).then(|| {
            let end = end
                .min(self.tracked.boundary(a))
                .min(self.written.boundary(a))
                .min(e.addr + e.len)
                .min(a + MAX_REF);
            reference_into(e, a, end - a)
        })
    }
}

/// A reference to the `len` bytes at `addr` of the pages extent `e`
/// (of an earlier image) holds: a raw extent is addressed by file
/// offset, a compressed block's pages by their place in the block.
fn reference_into(e: &Extent, addr: u64, len: u64) -> Extent {
    let into = addr - e.addr;
    Extent {
        addr,
        len,
        hash: 0,
        file_offset: if e.codec == 0 {
            e.file_offset + into
        } else {
            e.file_offset
        },
        skip: if e.codec == 0 { 0 } else { e.skip + into },
        ..e.clone()
    }
}

/// Pages per pagemap read.
const BATCH: usize = 512;
/// Largest extent (one bounce-buffer copy).
const MAX_EXTENT: u64 = 1 << 20;
/// Largest reference to an earlier image (nothing is copied for it).
const MAX_REF: u64 = 1 << 30;

struct Writer<'a> {
    sink: &'a mut Sink,
    bounce: &'a mut [u8],
    /// Copies of memory (staged, captured) are read through this.
    ahead: ReadAhead<'a>,
    /// Compressing threads, when images are compressed.
    pool: Option<compress::Pool>,
    /// The run being collected: (start address, length).
    run: Option<(u64, u64)>,
    /// Incremental: pages an earlier image holds unchanged.
    earlier: Option<Refs<'a>>,
    own: Own,
    /// In a region whose pages the writer gives up once stored: from
    /// where they are still held.
    release: Option<u64>,
}

/// Reads of a copy of memory (a memfd the pages were copied into, in the
/// order they are stored) several MiB at a time: one pread for many
/// runs of a page or two (a pread per page cost 4 ms per GiB changed 1%).
struct ReadAhead<'a> {
    buf: &'a mut [u8],
    /// The descriptor, offset and length `buf` holds (fd -1: nothing).
    fd: i32,
    at: u64,
    len: u64,
}

impl ReadAhead<'_> {
    /// `len` (at most `MAX_EXTENT`) bytes at `at` of `fd`, if it has them.
    fn get(&mut self, fd: i32, at: u64, len: u64) -> Option<&[u8]> {
        let held = fd == self.fd && at >= self.at && at + len <= self.at + self.len;
        if !held {
            self.fd = -1;
            let got = sys::pread_at(fd, self.buf, at) as u64;
            if got < len {
                return None;
            }
            (self.fd, self.at, self.len) = (fd, at, got);
        }
        let lo = (at - self.at) as usize;
        self.buf.get(lo..lo + len as usize)
    }
}

/// Bytes read ahead from a copy of memory (at least `MAX_EXTENT`).
const READ_AHEAD: usize = 4 << 20;

/// What the writer needs of the memory it shares with the frozen program
/// after storing it: its stack, its thread's TLS, ckpt's arena (the
/// gathered state, the writer's allocations).
pub(crate) struct Own {
    sp: u64,
    tp: u64,
    arena: (u64, u64),
    /// Where the arena's pages in use at the writer's fork end (see
    /// `arena_parts`); None outside a writer.
    arena_live: Option<u64>,
}

/// Whether the writer gives up stored pages (off until the python
/// writer's allocation failure is understood).
const RELEASE_ON: bool = false;
/// Regions smaller than this keep their pages in the writer.
const RELEASE_MIN: u64 = 4 << 20;
/// Stored pages are given up this many bytes at a time.
const RELEASE_STEP: u64 = 64 << 20;
/// How far above the checkpointing thread's stack pointer (and below its
/// thread pointer: the static TLS) it may have written after the round's
/// scan: its frames from the checkpoint call to the writer's fork.
const OWN_WINDOW: u64 = 1 << 20;
/// The thread's descriptor above its thread pointer (glibc's struct
/// pthread, about 2.3 KiB).
const TCB_WINDOW: u64 = 64 << 10;
/// glibc's HEAP_MAX_SIZE on 64-bit: a thread arena's heap mapping is at
/// most this long and aligned to it.
const MALLOC_HEAP_MAX: u64 = 64 << 20;

impl Own {
    /// In the thread that forks the writer (or in the writer).
    pub(crate) fn now() -> Own {
        let here = 0u8;
        Own {
            sp: core::ptr::addr_of!(here) as u64,
            tp: crate::glibc::thread_pointer(),
            arena: crate::alloc::arena_range().map_or((0, 0), |(a, l)| (a as u64, (a + l) as u64)),
            arena_live: crate::alloc::arena_range()
                .zip(crate::alloc::writer_floor())
                .map(|((a, _), f)| (a + f).next_multiple_of(PAGE as usize) as u64),
        }
    }

    /// ckpt's arena in two parts: the pages in use when the writer forked
    /// (the checkpoint's values, which the restored thread returns
    /// through: always stored as the writer holds them, never taken from
    /// an earlier image, since some were written after the round's scan),
    /// and the rest, which nothing reads again (the previous window's
    /// leftovers, the writer's own allocations: never stored; a restart
    /// gives zeros there, and the next window allocates over them). Both
    /// empty outside a writer.
    fn arena_parts(&self) -> ((u64, u64), (u64, u64)) {
        match self.arena_live {
            Some(live) => ((self.arena.0, live), (live, self.arena.1)),
            None => ((0, 0), (0, 0)),
        }
    }

    /// Whether `r` is the program's private anonymous memory that the
    /// writer reads only to store it: none of the writer's own (its
    /// stack, its thread's TLS, ckpt's arena), no stack, and never the
    /// C library's malloc heaps: the writer still calls libc functions
    /// that allocate (opendir, when it prunes). Those are `[heap]` and
    /// the arenas of other threads, mappings of at most HEAP_MAX_SIZE
    /// (64 MiB) aligned to it; a large malloc is a mapping of its own.
    pub(crate) fn program_only(&self, r: &Region) -> bool {
        let malloc_heap = r.path == "[heap]"
            || (r.start.is_multiple_of(MALLOC_HEAP_MAX) && r.end - r.start <= MALLOC_HEAP_MAX);
        r.kind == RegionKind::Anonymous
            && !r.shared
            && !r.grows_down
            && !malloc_heap
            && !self.holds_thread(r)
            && (r.end <= self.arena.0 || self.arena.1 <= r.start)
    }

    /// Whether page `a` may have been written by the checkpointing thread
    /// after the round's scan, before the writer forked: the arena's live
    /// part, its stack from the fork up through its checkpoint call, its
    /// TLS. Such a page is stored as the writer holds it, never taken
    /// from an earlier image (which holds it as the previous checkpoint
    /// left it). Windows around the two pointers rather than the whole
    /// regions: a thread's mapping may have merged with the program's.
    fn written_after_round(&self, a: u64) -> bool {
        self.own_ranges().iter().any(|&(lo, hi)| lo <= a && a < hi)
    }

    /// Where the ranges `written_after_round` and `arena_parts` name begin
    /// or end first above `a`: a reference to an earlier image that
    /// starts at `a` must end there (a region may hold them merged with
    /// the program's memory).
    fn next_bound(&self, a: u64) -> u64 {
        let dead = self.arena_parts().1;
        self.own_ranges()
            .iter()
            .chain([&dead])
            .flat_map(|&(lo, hi)| [lo, hi])
            .filter(|&b| b > a)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The arena's live part, the stack window, the TLS window.
    fn own_ranges(&self) -> [(u64, u64); 3] {
        let sp = self.sp & !(PAGE - 1);
        [
            self.arena_parts().0,
            (sp, sp + OWN_WINDOW),
            (self.tp.saturating_sub(OWN_WINDOW), self.tp + TCB_WINDOW),
        ]
    }

    /// Whether `r` holds the stack or the TLS of the thread that forked
    /// the writer.
    fn holds_thread(&self, r: &Region) -> bool {
        let holds = |a: u64| r.start <= a && a < r.end;
        holds(self.sp) || holds(self.tp)
    }

    /// Whether the writer may drop its copy of `r`'s pages once they are
    /// in the image. Each page dropped is one the program can write again
    /// without a copy-on-write fault, and memory the machine gets back
    /// while the writer syncs, publishes and folds.
    fn releasable(&self, r: &Region) -> bool {
        self.program_only(r) && r.end - r.start >= RELEASE_MIN
    }
}

impl Writer<'_> {
    fn store_region(
        &mut self,
        r: &mut Region,
        populated: bool,
        pagemap: i32,
    ) -> Result<(), String> {
        // Set anew each time (an incremental image starts from the base's;
        // a region left out of the fork keeps the guards `add_staged` or
        // `add_live` gave it).
        r.kept = 0;
        let guards_now = std::mem::take(&mut r.guards);
        if let Some(c) = shared::captured(r.start, r.end)? {
            r.kept = c.kept;
            self.refer_kept(r, c.same)?;
            return self.store_captured(r, c.fd, c.runs);
        }
        let (fd, staged) = stage::staged();
        if let Some(st) = staged.iter().find(|x| x.region.start == r.start) {
            r.guards = guards_now;
            return self.store_staged(r, fd, &st.runs);
        }
        if shared::needs_capture(r) {
            // Its pages are not in this fork: never store it empty.
            return Err(format!(
                "the memory at {:#x}-{:#x} ({}) was not copied while the program was frozen",
                r.start, r.end, r.path
            ));
        }
        let wanted: fn(u64) -> bool = match r.kind {
            RegionKind::Special | RegionKind::FileShared => return Ok(()),
            RegionKind::FilePrivate => {
                |c| c & IS_SWAPPED != 0 || (c & IS_PRESENT != 0 && c & IS_FILE == 0)
            }
            RegionKind::Anonymous | RegionKind::SharedAnonymous => {
                |c| c & (IS_PRESENT | IS_SWAPPED) != 0
            }
        };
        if !populated {
            return Ok(());
        }
        if r.prot & libc::PROT_READ as u32 == 0 {
            // This is the writer child's own copy: reading it changes nothing.
            // SAFETY: the range is a mapping of this process.
            unsafe {
                libc::mprotect(
                    r.start as *mut _,
                    (r.end - r.start) as usize,
                    libc::PROT_READ,
                )
            };
        }
        let mut failed = None;
        let referable = r.kind == RegionKind::Anonymous && !r.shared;
        let file = r.kind == RegionKind::FilePrivate;
        // Off: a python program's writer still died after releasing
        // ("memory allocation of 256 bytes failed") with malloc heaps
        // kept; not found yet. See the session note.
        self.release = (RELEASE_ON && self.own.releasable(r)).then_some(r.start);
        let mut guards = Vec::new();
        scan(
            pagemap,
            r.start,
            r.end,
            file,
            &mut guards,
            &mut |addr, len, cats| {
                if failed.is_some() {
                    return;
                }
                let mut a = addr;
                while a < addr + len {
                    if self.release.is_some_and(|from| a >= from + RELEASE_STEP) {
                        self.release_below(a, false);
                    }
                    let dead = self.own.arena_parts().1;
                    if dead.0 <= a && a < dead.1 {
                        // Nothing the restored program reads: not stored.
                        if let Err(e) = self.flush(r) {
                            failed = Some(e);
                            return;
                        }
                        a = dead.1.min(addr + len);
                        continue;
                    }
                    if referable {
                        let held = match &mut self.earlier {
                            Some(e) if !self.own.written_after_round(a) => {
                                e.find(a, (addr + len).min(self.own.next_bound(a)))
                            }
                            _ => None,
                        };
                        if let Some(held) = held {
                            if let Err(e) = self.flush(r) {
                                failed = Some(e);
                                return;
                            }
                            a += held.len;
                            self.refer(r, held);
                            continue;
                        }
                        self.flush_ref(r);
                    }
                    // SAFETY: the page lies in a readable mapping of this process.
                    let page = unsafe { std::slice::from_raw_parts(a as *const u8, PAGE as usize) };
                    let res = if wanted(cats) && cats & IS_PFNZERO == 0 && !is_zero(page) {
                        match &mut self.run {
                            Some((start, len)) if *start + *len == a && *len < MAX_EXTENT => {
                                *len += PAGE;
                                Ok(())
                            }
                            _ => self.flush(r).map(|()| self.run = Some((a, PAGE))),
                        }
                    } else {
                        self.flush(r)
                    };
                    if let Err(e) = res {
                        failed = Some(e);
                        return;
                    }
                    a += PAGE;
                }
            },
        )?;
        if let Some(e) = failed {
            return Err(e);
        }
        r.guards = guards;
        self.flush_ref(r);
        self.flush(r)?;
        self.release_below(r.end, true);
        self.release = None;
        Ok(())
    }

    /// Give up the pages of a releasable region below `addr` that are
    /// stored (copied to the file or into a compressing thread's slot;
    /// the run being collected is not yet): every `RELEASE_STEP`, or
    /// all with `last`.
    fn release_below(&mut self, addr: u64, last: bool) {
        let Some(from) = self.release else {
            return;
        };
        let upto = self.run.map_or(addr, |(start, _)| start.min(addr));
        if upto <= from || (!last && upto - from < RELEASE_STEP / 2) {
            return;
        }
        // SAFETY: [from, upto) lies in a region of the program's private
        // anonymous memory (`Own::releasable`) that this writer, a fork,
        // has stored and never reads again; dropping its copy leaves the
        // program's pages as they are.
        unsafe { libc::madvise(from as *mut _, (upto - from) as usize, libc::MADV_DONTNEED) };
        self.release = Some(upto);
    }

    /// `page` (pages held by an earlier image): extend the reference
    /// being collected, or start another.
    fn refer(&mut self, r: &mut Region, page: Extent) {
        let run = self.earlier.as_mut().and_then(|e| e.run.as_mut());
        match run {
            Some(x) if follows(x, &page) && x.len + page.len <= MAX_REF => x.len += page.len,
            _ => {
                self.flush_ref(r);
                if let Some(e) = self.earlier.as_mut() {
                    e.run = Some(page);
                }
            }
        }
    }

    fn flush_ref(&mut self, r: &mut Region) {
        if let Some(x) = self.earlier.as_mut().and_then(|e| e.run.take()) {
            r.extents.push(x);
        }
    }

    /// A kept file mapping's pages unchanged since the earlier image
    /// (`same`, sorted): references to where that image holds them
    /// (nothing where it stored nothing: they were zero).
    fn refer_kept(&mut self, r: &mut Region, same: &[(u64, u64)]) -> Result<(), String> {
        if same.is_empty() {
            return Ok(());
        }
        let base = self.earlier.as_ref().and_then(|e| {
            e.kept
                .iter()
                .find(|k| (k.start, k.end, k.ino, k.offset) == (r.start, r.end, r.ino, r.offset))
        });
        let Some(base) = base else {
            return Err(format!(
                "the image this one was to build on cannot be used (removed or changed?), and \
                 the pages of {} unchanged since were not copied again; the next checkpoint \
                 will be whole",
                r.path
            ));
        };
        let mut i = 0;
        for &(a, b) in same {
            i += base.extents[i..].partition_point(|e| e.addr + e.len <= a);
            for e in base.extents[i..].iter().take_while(|e| e.addr < b) {
                let (s, t) = (e.addr.max(a), (e.addr + e.len).min(b));
                r.extents.push(reference_into(e, s, t - s));
            }
        }
        Ok(())
    }

    /// Store the pages `shared::capture` copied while the program was
    /// frozen (in memfd `fd`), but those all zero.
    fn store_captured(
        &mut self,
        r: &mut Region,
        fd: i32,
        runs: &[shared::Run],
    ) -> Result<(), String> {
        runs.iter()
            .try_for_each(|run| self.store_copied(r, fd, run))
    }

    /// Store a region left out of the fork (`stage`): its pages as the
    /// round found them (`present`), those written since the previous
    /// round from their copy (`runs`, in memfd `fd`), the others by
    /// reference to the earlier image that holds them (or nothing, where
    /// that stored nothing: a zero page).
    fn store_staged(
        &mut self,
        r: &mut Region,
        fd: i32,
        runs: &[shared::Run],
    ) -> Result<(), String> {
        let Some(round) = dirty::round() else {
            return Err("memory was left out of the writer without a round".into());
        };
        let (start, end) = (r.start, r.end);
        let live = stage::is_live();
        let first = round.present.partition_point(|x| x.1 <= start);
        let mut run = runs.iter().peekable();
        for &(ps, pe) in round.present[first..].iter().take_while(|x| x.0 < end) {
            let (ps, pe) = (ps.max(start), pe.min(end));
            let mut a = ps;
            while a < pe {
                while run.next_if(|x| x.addr + x.len <= a).is_some() {}
                let next = match run.peek() {
                    Some(x) if x.addr <= a => {
                        // Written: from the copy (live: a piece at a time,
                        // each after a look at how much the program wrote).
                        let mut len = (x.addr + x.len).min(pe) - a;
                        if live {
                            if stage::live_written_too_much() {
                                return Err(PRECOPY_GAVE_UP.into());
                            }
                            len = len.min(LIVE_PIECE);
                        }
                        self.flush_ref(r);
                        let part = shared::Run {
                            addr: a,
                            len,
                            offset: x.offset + (a - x.addr),
                        };
                        self.store_copied(r, fd, &part)?;
                        a += len;
                        continue;
                    }
                    Some(x) => x.addr.min(pe),
                    None => pe,
                };
                match self.earlier.as_mut().and_then(|e| e.find(a, next)) {
                    Some(held) => {
                        a += held.len;
                        self.refer(r, held);
                    }
                    None => {
                        // Unchanged, and stored nowhere: zero.
                        self.flush_ref(r);
                        a += PAGE;
                    }
                }
            }
        }
        self.flush_ref(r);
        Ok(())
    }

    /// Store the non-zero pages of `run`, copied at its offset in `fd`.
    fn store_copied(&mut self, r: &mut Region, fd: i32, run: &shared::Run) -> Result<(), String> {
        let mut done = 0;
        while done < run.len {
            let len = (run.len - done).min(MAX_EXTENT);
            let Some(chunk) = self.ahead.get(fd, run.offset + done, len) else {
                return Err("cannot read the copy of the program's memory".into());
            };
            // Each stretch of non-zero pages is one extent.
            let mut i = 0;
            while i < len {
                let page = |at: u64| &chunk[at as usize..(at + PAGE) as usize];
                if is_zero(page(i)) {
                    i += PAGE;
                    continue;
                }
                let mut j = i + PAGE;
                while j < len && !is_zero(page(j)) {
                    j += PAGE;
                }
                let bytes = &chunk[i as usize..j as usize];
                let addr = run.addr + done + i;
                let sink = &mut *self.sink;
                match self.pool.as_mut() {
                    Some(pool) => pool.submit(
                        addr,
                        bytes.len(),
                        |slot| slot.copy_from_slice(bytes),
                        &mut |p| emit(sink, r, p),
                    )?,
                    None => emit(sink, r, plain(addr, bytes))?,
                }
                i = j;
            }
            done += len;
        }
        Ok(())
    }

    fn flush(&mut self, r: &mut Region) -> Result<(), String> {
        let Some((addr, len)) = self.run.take() else {
            return Ok(());
        };
        // The run is copied before it is hashed or compressed (see `bounce`).
        let copy = |to: &mut [u8]| {
            // SAFETY: the run lies in a readable mapping of this process and
            // does not overlap `to` (the bounce buffer or a slot of the
            // pool, both mapped after the maps were read).
            unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, to.as_mut_ptr(), to.len()) }
        };
        let sink = &mut *self.sink;
        if let Some(pool) = self.pool.as_mut() {
            return pool.submit(addr, len as usize, copy, &mut |p| emit(sink, r, p));
        }
        let bytes = &mut self.bounce[..len as usize];
        copy(bytes);
        emit(sink, r, plain(addr, bytes))
    }

    /// After a region: every run of it queued for compression written out,
    /// its extents in address order again.
    fn drain(&mut self, r: &mut Region) -> Result<(), String> {
        let Some(pool) = self.pool.as_mut() else {
            return Ok(());
        };
        let sink = &mut *self.sink;
        pool.drain(&mut |p| emit(sink, r, p))?;
        r.extents.sort_unstable_by_key(|e| e.addr);
        Ok(())
    }
}

/// `bytes` at `addr`, stored as they are.
fn plain(addr: u64, bytes: &[u8]) -> compress::Packed<'_> {
    compress::Packed {
        addr,
        plain: bytes,
        packed: None,
        codec: crate::image::Codec::Lz4,
    }
}

/// Write a run of pages as one extent of `r`: its compressed form when it
/// has one, else its bytes as they are.
fn emit(sink: &mut Sink, r: &mut Region, p: compress::Packed) -> Result<(), String> {
    let file_offset = sink.offset;
    let len = p.plain.len() as u64;
    if let Some(z) = p.packed {
        let hash = xxhash_rust::xxh3::xxh3_64(z);
        sink.write_all(z)?;
        sink.pad_to_page()?;
        r.extents.push(Extent {
            addr: p.addr,
            len,
            file_offset,
            hash,
            codec: p.codec as u8,
            stored: z.len() as u64,
            block: len,
            ..Default::default()
        });
        return Ok(());
    }
    sink.write_all(p.plain)?;
    r.extents.push(Extent {
        addr: p.addr,
        len,
        file_offset,
        hash: xxhash_rust::xxh3::xxh3_64(p.plain),
        ..Default::default()
    });
    Ok(())
}

/// Whether reference `p` continues reference `x`: the same
/// earlier image, and the next bytes there (of the same block).
fn follows(x: &Extent, p: &Extent) -> bool {
    x.addr + x.len == p.addr
        && x.src == p.src
        && x.codec == p.codec
        && if x.codec == 0 {
            x.file_offset + x.len == p.file_offset
        } else {
            x.file_offset == p.file_offset && x.skip + x.len == p.skip
        }
}

fn is_zero(page: &[u8]) -> bool {
    // SAFETY: any bit pattern is a valid u64.
    let (pre, words, post) = unsafe { page.align_to::<u64>() };
    pre.iter().all(|&b| b == 0) && words.iter().all(|&w| w == 0) && post.iter().all(|&b| b == 0)
}

/// The address space layout fields of /proc/self/stat (for PR_SET_MM_MAP)
/// and the auxiliary vector.
pub fn mm_info() -> crate::image::MmInfo {
    let stat = crate::names::read_proc("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" of comm; field 3 (state) is the first.
    let rest = stat.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // /proc/PID/stat numbering: field n is f[n - 3].
    let at = |n: usize| f.get(n - 3).copied().unwrap_or(0);
    let auxv = std::fs::read("/proc/self/auxv")
        .unwrap_or_default()
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    crate::image::MmInfo {
        start_code: at(26),
        end_code: at(27),
        start_stack: at(28),
        start_data: at(45),
        end_data: at(46),
        start_brk: at(47),
        arg_start: at(48),
        arg_end: at(49),
        env_start: at(50),
        env_end: at(51),
        // SAFETY: brk(0) only queries the current break.
        brk: unsafe { libc::syscall(libc::SYS_brk, 0) } as u64,
        auxv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_are_classified() {
        let text = "\
55d0c0000000-55d0c0001000 r--p 00000000 fe:00 1234    /usr/bin/prog
55d0c0001000-55d0c0002000 rw-p 00001000 fe:00 1234    /usr/bin/prog
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0       [heap]
7f0000000000-7f0000001000 rw-s 00000000 fe:00 99      /tmp/shared.dat
7f0000001000-7f0000002000 rw-s 00000000 00:01 7       /dev/zero (deleted)
7f0000002000-7f0000003000 rw-p 00000000 00:00 0
7e0000000000-7e0004000000 ---p 00000000 00:00 0
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0       [stack]
7ffc00100000-7ffc00102000 r-xp 00000000 00:00 0       [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]
";
        let r = parse_maps(text);
        let kinds: Vec<_> = r.iter().map(|r| r.kind).collect();
        use RegionKind::*;
        assert_eq!(
            kinds,
            [
                FilePrivate,
                FilePrivate,
                Anonymous,
                FileShared,
                SharedAnonymous,
                Anonymous,
                Anonymous,
                Special
            ]
        );
        assert_eq!(r[0].path, "/usr/bin/prog");
        assert_eq!(r[0].dev, libc::makedev(0xfe, 0));
        assert_eq!(r[1].offset, 0x1000);
        assert_eq!(r[1].prot, (libc::PROT_READ | libc::PROT_WRITE) as u32);
        assert!(r[6].grows_down && !r[2].grows_down);
        assert!(r[3].shared);
    }

    #[test]
    fn smaps_gives_noreserve_and_emptiness() {
        let text = "\
7c0000000000-7e0000000000 rw-p 00000000 00:00 0 
Size:           2147483648 kB
Rss:                  64 kB
Swap:                  0 kB
VmFlags: rd wr mr mw me nr 
7e0000000000-7e0004000000 ---p 00000000 00:00 0 
Rss:                   0 kB
VmFlags: mr mw me nr 
7f0000000000-7f0000100000 ---p 00000000 00:00 0 
Rss:                   0 kB
Swap:                  0 kB
VmFlags: mr mw me 
7f0000100000-7f0000101000 rw-p 00000000 00:00 0 
Rss:                   0 kB
Swap:                  4 kB
VmFlags: rd wr mr mw me ac 
";
        let r = parse_smaps(text);
        assert_eq!(r.len(), 3, "ckpt's reservation is skipped");
        assert!(r[0].0.noreserve && r[0].1);
        assert!(!r[1].0.noreserve && !r[1].1);
        assert!(!r[2].0.noreserve && r[2].1, "swapped pages count");
    }
}
