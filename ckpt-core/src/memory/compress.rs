//! Compressed extents (`ckpt run --compress[=lz4|zstd]`).
//!
//! Verbs: `configure` (start-up, from `CKPT_COMPRESS`, or the API),
//! `Compressor::compress` (writer: one extent, at most 1 MiB, at a time),
//! `read_extent` / `decompress` (restart: back to the bytes the program had).
//!
//! Each stored run of pages is compressed on its own into one block that
//! starts on a page of the image and is padded with zeros to the next
//! one: unchanged blocks stay byte-identical and page-aligned across
//! generations (the database store shares them), and an incremental image
//! can refer to any page of a block of an earlier one (`Extent::skip`).
//! A block that would not save at least a page is stored as it is.
//!
//! Writer context (a fork of the frozen program): no libc malloc. lz4 is
//! pure Rust and allocates its small hash table from the writer's arena
//! (freed at once, which the arena takes back); zstd's context lives in a
//! workspace mapped here (`ZSTD_initStaticCCtx`), so it never allocates.

use crate::image::{Codec, Extent, PAGE};
use core::sync::atomic::{AtomicU8, Ordering::Relaxed};
use zstd_safe::zstd_sys;

/// zstd's level: its fastest regular one. Level 3 (the library's default)
/// compresses a few percent better at about half the speed, and the
/// writer's time is what the user waits for.
pub const ZSTD_LEVEL: i32 = 1;

/// Largest block the writer makes (one extent's run).
pub const MAX_BLOCK: u64 = 1 << 20;

static CODEC: AtomicU8 = AtomicU8::new(0);

/// The codec for images from now on (`None`: stored as they are).
pub fn configure(codec: Option<Codec>) {
    CODEC.store(codec.map_or(0, |c| c as u8), Relaxed);
}

/// The codec set by [`configure`].
pub fn current() -> Option<Codec> {
    Codec::from_u8(CODEC.load(Relaxed))
}

/// Start-up: `CKPT_COMPRESS` = `lz4`, `zstd` (or `1`: zstd), `none`/`0`.
/// Returns what was wrong with a value it did not take.
pub fn configure_from_env() -> Result<(), String> {
    let Some(v) = std::env::var_os("CKPT_COMPRESS") else {
        return Ok(());
    };
    let v = v.to_string_lossy();
    let codec = match v.as_ref() {
        "" | "0" => None,
        "1" => Some(Codec::Zstd),
        s => Codec::parse(s).map_err(|e| format!("CKPT_COMPRESS: {e}"))?,
    };
    configure(codec);
    Ok(())
}

/// Compresses extents for one image (writer context; see the module).
pub struct Compressor {
    codec: Codec,
    out: &'static mut [u8],
    zstd: *mut zstd_sys::ZSTD_CCtx,
}

/// Bytes of output room for a block of `n` bytes, either codec.
fn bound(n: usize) -> usize {
    // SAFETY: a pure function of its argument.
    let z = unsafe { zstd_sys::ZSTD_compressBound(n) };
    z.max(lz4_flex::block::get_maximum_output_size(n))
}

/// An anonymous private mapping of `len` bytes (writer context: no malloc).
fn map(len: usize) -> Result<&'static mut [u8], String> {
    // SAFETY: anonymous private mapping, no hint.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err("cannot map the compression buffers".into());
    }
    // SAFETY: the mapping is ours, `len` bytes, never unmapped (the writer
    // ends soon after), unaliased.
    Ok(unsafe { core::slice::from_raw_parts_mut(p as *mut u8, len) })
}

impl Compressor {
    pub fn new(codec: Codec) -> Result<Compressor, String> {
        let out = map(bound(MAX_BLOCK as usize))?;
        let mut zstd = core::ptr::null_mut();
        if codec == Codec::Zstd {
            // SAFETY: pure size computation.
            let need = unsafe { zstd_sys::ZSTD_estimateCCtxSize(ZSTD_LEVEL) };
            let work = map(need)?;
            // SAFETY: `work` is `need` bytes, 8-byte aligned (a fresh
            // mapping), kept for the writer's life.
            zstd = unsafe { zstd_sys::ZSTD_initStaticCCtx(work.as_mut_ptr().cast(), need) };
            if zstd.is_null() {
                return Err("cannot set up zstd".into());
            }
        }
        Ok(Compressor { codec, out, zstd })
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// `input` compressed, when that saves at least a page once padded.
    pub fn compress(&mut self, input: &[u8]) -> Option<&[u8]> {
        let n = match self.codec {
            Codec::Lz4 => lz4_flex::block::compress_into(input, self.out).ok()?,
            Codec::Zstd => {
                // SAFETY: the context was made by initStaticCCtx; both
                // buffers are live with the lengths given.
                let r = unsafe {
                    zstd_sys::ZSTD_compressCCtx(
                        self.zstd,
                        self.out.as_mut_ptr().cast(),
                        self.out.len(),
                        input.as_ptr().cast(),
                        input.len(),
                        ZSTD_LEVEL,
                    )
                };
                // SAFETY: a pure function of the code.
                if unsafe { zstd_sys::ZSTD_isError(r) } != 0 {
                    return None;
                }
                r
            }
        };
        let padded = (n as u64).div_ceil(PAGE) * PAGE;
        (padded + PAGE <= input.len() as u64).then(|| &self.out[..n])
    }
}

/// Decompress `input` (codec `codec`) into exactly `out.len()` bytes.
pub fn decompress(codec: u8, input: &[u8], out: &mut [u8]) -> Result<(), String> {
    let got = match Codec::from_u8(codec) {
        Some(Codec::Lz4) => {
            lz4_flex::block::decompress_into(input, out).map_err(|e| format!("lz4: {e}"))?
        }
        Some(Codec::Zstd) => zstd_safe::decompress(out, input)
            .map_err(|c| format!("zstd: {}", zstd_safe::get_error_name(c)))?,
        None => return Err(format!("unknown compression {codec}")),
    };
    if got != out.len() {
        return Err(format!(
            "a block decompresses to {got} bytes, not the {} it should",
            out.len()
        ));
    }
    Ok(())
}

/// Read `e`'s pages from `fd` (the file its `src` names) into `out`
/// (`e.len` bytes), decompressing its block if it is one.
pub fn read_extent(fd: i32, e: &Extent, out: &mut [u8]) -> Result<(), String> {
    if e.codec == 0 {
        return read_exact_at(fd, out, e.file_offset);
    }
    if e.block > 64 * MAX_BLOCK || e.skip + out.len() as u64 > e.block {
        return Err(format!(
            "the block of the memory at {:#x} is malformed",
            e.addr
        ));
    }
    let mut stored = vec![0u8; e.stored as usize];
    read_exact_at(fd, &mut stored, e.file_offset)?;
    let mut block = vec![0u8; e.block as usize];
    decompress(e.codec, &stored, &mut block)
        .map_err(|why| format!("the memory at {:#x} cannot be decompressed: {why}", e.addr))?;
    out.copy_from_slice(&block[e.skip as usize..e.skip as usize + out.len()]);
    Ok(())
}

fn read_exact_at(fd: i32, buf: &mut [u8], at: u64) -> Result<(), String> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: pread into a live buffer of the given length.
        let n = unsafe {
            libc::pread(
                fd,
                buf[done..].as_mut_ptr().cast(),
                buf.len() - done,
                (at + done as u64) as i64,
            )
        };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return Err(format!(
                "cannot read {} bytes of the image at {}",
                buf.len(),
                at + done as u64
            ));
        }
        done += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..MAX_BLOCK as usize)
            .map(|i| ((i / 7) as u8).wrapping_mul(31) & 0x3f)
            .collect()
    }

    #[test]
    fn blocks_come_back_exactly_with_either_codec() {
        for codec in [Codec::Lz4, Codec::Zstd] {
            let data = sample();
            let mut c = Compressor::new(codec).unwrap();
            let z = c.compress(&data).expect("compressible").to_vec();
            assert!(z.len() < data.len() / 2, "{codec:?}: {}", z.len());
            let mut back = vec![0u8; data.len()];
            decompress(codec as u8, &z, &mut back).unwrap();
            assert_eq!(back, data);
            // A wrong length or a damaged block is refused, never garbage.
            let mut short = vec![0u8; data.len() - 4096];
            assert!(decompress(codec as u8, &z, &mut short).is_err());
            let mut bad = z.clone();
            bad.truncate(bad.len() / 2);
            assert!(decompress(codec as u8, &bad, &mut back).is_err());
        }
    }

    #[test]
    fn incompressible_blocks_are_stored_as_they_are() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..256 << 10)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for codec in [Codec::Lz4, Codec::Zstd] {
            assert!(Compressor::new(codec).unwrap().compress(&data).is_none());
        }
    }
}
