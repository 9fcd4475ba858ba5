//! Compressed memory, made plain for the restorer.
//!
//! The restorer is a tiny static program that copies raw extents into the
//! program's memory; it decompresses nothing. Before it starts, every
//! compressed extent (an image's own blocks and references into earlier
//! images' ones) is decompressed here, on every core, into one memfd the
//! restorer reads like an image: each block once, whichever extents
//! share it. The memfd is inherited by the restorer (no CLOEXEC) and
//! closed with every other descriptor the program did not have once it
//! is restored.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use ckpt::image::{Extent, Meta, Region, RegionKind};

use crate::Failure;

/// Where the plain bytes of each compressed extent are.
pub struct Staged {
    fd: OwnedFd,
    /// (src, address) → offset in `fd`.
    at: HashMap<(u32, u64), u64>,
}

impl Staged {
    /// The descriptor and offset holding `e`'s plain pages.
    pub fn place(&self, e: &Extent) -> Option<(i32, u64)> {
        let off = self.at.get(&(e.src, e.addr))?;
        Some((self.fd.as_raw_fd(), *off))
    }

    /// Leave the descriptor open for the restorer (it is not CLOEXEC).
    pub fn into_raw(self) -> i32 {
        std::os::fd::IntoRawFd::into_raw_fd(self.fd)
    }
}

/// Decompress every compressed extent of the regions of `meta` that
/// `wanted` takes (read from `sources`, indexed by `src`) into a memfd;
/// `None` when there is none. (With a pager, it fills anonymous memory
/// itself: only private file mappings' written pages are staged.)
pub fn stage(
    meta: &Meta,
    sources: &[i32],
    wanted: &dyn Fn(&Region) -> bool,
) -> Result<Option<Staged>, Failure> {
    let wanted: Vec<&Extent> = meta
        .regions
        .iter()
        .filter(|r| r.kind != RegionKind::Special && wanted(r))
        .flat_map(|r| &r.extents)
        .filter(|e| e.codec != 0)
        .collect();
    if wanted.is_empty() {
        return Ok(None);
    }
    // One job per block: (src, block offset) with the extents it serves.
    let mut blocks: HashMap<(u32, u64), Vec<(&Extent, u64)>> = HashMap::new();
    let mut at = HashMap::new();
    let mut total = 0u64;
    for e in wanted {
        if sources.get(e.src as usize).is_none() {
            return Err(Failure::new(format!(
                "the memory at {:#x} refers to an earlier image the image does not name",
                e.addr
            )));
        }
        blocks
            .entry((e.src, e.file_offset))
            .or_default()
            .push((e, total));
        at.insert((e.src, e.addr), total);
        total += e.len;
    }
    // SAFETY: memfd_create with a C name; no CLOEXEC: the restorer reads it.
    let raw = unsafe { libc::memfd_create(c"ckpt-decompressed".as_ptr(), 0) };
    if raw < 0 {
        return Err(Failure::new(format!(
            "cannot make a memfd for decompressed memory: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ftruncate of our own memfd.
    if unsafe { libc::ftruncate(raw, total as i64) } != 0 {
        return Err(Failure::new(format!(
            "cannot size the memfd for decompressed memory ({total} bytes): {}",
            std::io::Error::last_os_error()
        )));
    }
    let jobs: Vec<_> = blocks.into_iter().collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicU64::new(0);
    let mut bar = crate::progress::Bar::new(crate::progress::is_wanted(), "decompressing", total);
    let failed = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> Result<(), String> {
                    let mut stored = Vec::new();
                    let mut plain = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(((src, _), extents)) = jobs.get(i) else {
                            return Ok(());
                        };
                        let first = extents[0].0;
                        for (e, _) in extents {
                            if (e.codec, e.stored, e.block)
                                != (first.codec, first.stored, first.block)
                            {
                                return Err(format!(
                                    "the memory at {:#x} and at {:#x} describe one block two ways",
                                    first.addr, e.addr
                                ));
                            }
                        }
                        stored.resize(first.stored as usize, 0);
                        plain.resize(first.block as usize, 0);
                        read_at(sources[*src as usize], &mut stored, first.file_offset)?;
                        ckpt::memory::compress::decompress(first.codec, &stored, &mut plain)
                            .map_err(|why| {
                                format!(
                                    "the memory at {:#x} cannot be decompressed: {why}",
                                    first.addr
                                )
                            })?;
                        for (e, off) in extents {
                            let part = &plain[e.skip as usize..(e.skip + e.len) as usize];
                            write_at(raw, part, *off)?;
                            done.fetch_add(e.len, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        while crate::progress::is_wanted() && !handles.iter().all(|h| h.is_finished()) {
            bar.set(done.load(std::sync::atomic::Ordering::Relaxed));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        handles.into_iter().find_map(|h| {
            h.join()
                .unwrap_or_else(|_| Err("a decompressing thread failed".into()))
                .err()
        })
    });
    bar.finish();
    if let Some(why) = failed {
        return Err(Failure::new(format!("corrupt image: {why}")));
    }
    Ok(Some(Staged { fd, at }))
}

fn read_at(fd: i32, buf: &mut [u8], at: u64) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    // SAFETY: borrowing a descriptor that outlives this call, without
    // closing it (ManuallyDrop).
    let f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    f.read_exact_at(buf, at)
        .map_err(|e| format!("cannot read the image at {at}: {e}"))
}

fn write_at(fd: i32, buf: &[u8], at: u64) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    // SAFETY: as in `read_at`.
    let f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    f.write_all_at(buf, at)
        .map_err(|e| format!("cannot write decompressed memory: {e}"))
}
