//! Files the program maps shared and writable: what the killed run wrote
//! through such a mapping after the checkpoint is in the file, so the
//! restart writes the pages the image keeps (`Region::kept`) back into it
//! before the restorer maps it (the restorer never writes a shared file
//! mapping). Zero pages are not stored: every stretch of the kept range
//! no extent covers is made zero again.

use std::os::unix::fs::FileExt;

use ckpt::image::{Extent, Region, RegionKind};

use crate::staging::Staged;
use crate::Failure;

/// Whether `r`'s stored pages belong in its file rather than in memory.
pub fn kept(r: &Region) -> bool {
    r.kind == RegionKind::FileShared && r.kept > 0
}

/// Write `r`'s kept pages back into its file, open read-write at `fd`:
/// the extents' bytes from `sources` (or their plain copies in `staged`),
/// zeros between them.
pub fn put_back(
    r: &Region,
    fd: i32,
    sources: &[i32],
    staged: Option<&Staged>,
) -> Result<(), Failure> {
    // SAFETY: `fd` is open for the restart's whole length; ManuallyDrop
    // leaves it open.
    let file = std::mem::ManuallyDrop::new(unsafe {
        <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd)
    });
    let failed = |what: &str, e: std::io::Error| {
        Failure::new(format!(
            "cannot write {} back as it was at the checkpoint ({what}): {e}",
            r.path
        ))
    };
    let at = |addr: u64| r.offset + (addr - r.start);
    let end = r.start + r.kept;
    // A file cut shorter since the checkpoint reaches its mapped end again.
    let len = file.metadata().map_err(|e| failed("stat", e))?.len();
    if len < at(end) {
        file.set_len(at(end)).map_err(|e| failed("extend", e))?;
    }
    let mut extents: Vec<&Extent> = r.extents.iter().filter(|e| e.addr < end).collect();
    extents.sort_by_key(|e| e.addr);
    let mut buf = vec![0u8; 1 << 20];
    let mut now = vec![0u8; 1 << 20];
    let mut pos = r.start;
    for e in extents {
        zero(&file, at(pos), e.addr.saturating_sub(pos)).map_err(|x| failed("zero", x))?;
        let (src, mut off) = match staged {
            Some(st) if e.codec != 0 => st.place(e).ok_or_else(|| {
                Failure::new(format!("the memory at {:#x} was not decompressed", e.addr))
            })?,
            _ => (
                *sources.get(e.src as usize).ok_or_else(|| {
                    Failure::new(format!(
                        "the memory at {:#x} refers to an earlier image the image does not name",
                        e.addr
                    ))
                })?,
                e.file_offset,
            ),
        };
        // SAFETY: `src` is an image (or staging) descriptor open for the
        // restart; ManuallyDrop leaves it open.
        let src = std::mem::ManuallyDrop::new(unsafe {
            <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(src)
        });
        let stop = (e.addr + e.len).min(end);
        let mut a = e.addr;
        while a < stop {
            let n = ((stop - a) as usize).min(buf.len());
            src.read_exact_at(&mut buf[..n], off)
                .map_err(|x| failed("read the image", x))?;
            // Written only where it differs: most of a large file is
            // usually as it was.
            let got = read_some(&file, &mut now[..n], at(a)).map_err(|x| failed("read", x))?;
            if got < n || now[..n] != buf[..n] {
                file.write_all_at(&buf[..n], at(a))
                    .map_err(|x| failed("write", x))?;
            }
            a += n as u64;
            off += n as u64;
        }
        pos = pos.max(stop);
    }
    zero(&file, at(pos), end.saturating_sub(pos)).map_err(|x| failed("zero", x))
}

/// Make `len` bytes at `off` of `file` zero, writing only where they are
/// not (a hole punched instead would change how a preallocated file is
/// laid out on disk).
fn zero(file: &std::fs::File, off: u64, len: u64) -> std::io::Result<()> {
    let mut now = vec![0u8; len.min(1 << 20) as usize];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(now.len() as u64) as usize;
        let got = read_some(file, &mut now[..n], off + done)?;
        if now[..got].iter().any(|&b| b != 0) {
            now[..n].fill(0);
            file.write_all_at(&now[..n], off + done)?;
        }
        done += n as u64;
    }
    Ok(())
}

/// Read up to `buf.len()` bytes at `off` (fewer at the end of the file).
fn read_some(file: &std::fs::File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], off + got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Whether the image keeps the first `size` bytes of the file at `path`
/// (`ino` on `dev`) through its writable shared mappings (a restart then
/// puts back any change to them, however it was made). Maps name a file
/// of an overlay by the device below it: the path stands in.
pub fn keeps_whole(meta: &ckpt::image::Meta, path: &str, dev: u64, ino: u64, size: u64) -> bool {
    let mut spans: Vec<(u64, u64)> = meta
        .regions
        .iter()
        .filter(|r| kept(r) && r.ino == ino && (r.dev == dev || r.path == path))
        .map(|r| (r.offset, r.offset + r.kept))
        .collect();
    spans.sort_unstable();
    let mut reach = 0;
    for (a, b) in spans {
        if a > reach {
            break;
        }
        reach = reach.max(b);
    }
    reach >= size
}
