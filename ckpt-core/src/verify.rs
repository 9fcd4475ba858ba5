//! What a restart reads from an image, checked before anything is
//! touched: the layout, the regions and extents, and that every byte of
//! the file is accounted for. The header and the metadata carry their own
//! checksums, every byte of the data section lies in exactly one extent
//! with its own checksum, and the rest (the header's reserved bytes, the
//! padding before the data) must be zero, with nothing after the
//! metadata: so any byte flipped anywhere is refused.
//!
//! `ckpt restart` runs [`structure`] and [`padding`] and hashes the
//! extents on every core; [`image`] does all of it on bytes in memory
//! (tests, the fuzz targets in `fuzz/`).

use crate::image::{self, Header, ImageError, Meta, DATA_OFFSET, HEADER_LEN, PAGE};

/// Highest user-space address on x86_64 (4-level paging, as the restorer
/// assumes).
pub const USER_TOP: u64 = 0x7fff_ffff_f000;

fn layout(msg: String) -> ImageError {
    ImageError::Layout(msg)
}

/// The image's first `DATA_OFFSET` bytes past the header's checksummed
/// part must be zero (reserved bytes and padding).
pub fn padding(head: &[u8]) -> Result<(), ImageError> {
    let end = head.len().min(DATA_OFFSET as usize);
    match head[HEADER_LEN.min(end)..end].iter().position(|&b| b != 0) {
        Some(i) => Err(layout(format!(
            "byte {} of the padding after the header is not zero",
            HEADER_LEN + i
        ))),
        None => Ok(()),
    }
}

/// Layout, regions and extents, against the file's length: the metadata
/// follows the data and ends the file; regions are page-aligned, ordered,
/// apart and in user space; each extent lies in its region, and the
/// extents tile the data section exactly (no byte of it outside one).
pub fn structure(header: &Header, meta: &Meta, file_len: u64) -> Result<(), ImageError> {
    header.check_layout()?;
    if header.page_size != PAGE as u32 {
        return Err(layout(format!(
            "page size {} (expected {PAGE})",
            header.page_size
        )));
    }
    if header.flags != 0 {
        return Err(layout(format!("unknown header flags {:#x}", header.flags)));
    }
    if image::is_incremental(header.version) == meta.deps.is_empty() {
        return Err(layout(format!(
            "format version {} with {} earlier images referred to",
            header.version,
            meta.deps.len()
        )));
    }
    let data_end = header.data_offset + header.data_len;
    if header.meta_offset != data_end {
        return Err(layout(format!(
            "metadata at {} does not follow the data (which ends at {data_end})",
            header.meta_offset
        )));
    }
    let need = header.required_len();
    if file_len != need {
        return Err(if file_len < need {
            ImageError::Truncated {
                need,
                have: file_len,
            }
        } else {
            layout(format!(
                "{} bytes after the end of the image",
                file_len - need
            ))
        });
    }
    let mut prev_end = 0u64;
    let mut extents: Vec<&image::Extent> = Vec::new();
    for r in &meta.regions {
        let aligned = r.start % PAGE == 0 && r.end % PAGE == 0;
        if !aligned || r.start >= r.end || r.end > USER_TOP || r.start < prev_end {
            return Err(layout(format!(
                "region {:#x}-{:#x} is not a page-aligned user range after the previous one",
                r.start, r.end
            )));
        }
        prev_end = r.end;
        for e in &r.extents {
            let shape = e.len > 0
                && e.len % PAGE == 0
                && e.addr % PAGE == 0
                && e.file_offset % PAGE == 0
                && e.addr >= r.start
                && e.addr.checked_add(e.len).is_some_and(|x| x <= r.end)
                && codec_shape(e);
            if e.src != 0 {
                // A reference into an earlier image: only private
                // anonymous memory (see memory::dirty) and the kept pages
                // of a shared file mapping (memory::kept) are taken from
                // one; its bounds are checked against that file at restart.
                let kept_pages = r.kind == image::RegionKind::FileShared
                    && e.addr.saturating_add(e.len)
                        <= r.start
                            .saturating_add(r.kept.saturating_add(PAGE - 1) & !(PAGE - 1));
                let ok = shape
                    && e.src as usize <= meta.deps.len()
                    && (r.kind == image::RegionKind::Anonymous || kept_pages)
                    && e.file_offset >= header.data_offset
                    && e.file_offset.checked_add(e.footprint()).is_some();
                if !ok {
                    return Err(layout(format!(
                        "extent at {:#x} refers to an earlier image it may not",
                        e.addr
                    )));
                }
                continue;
            }
            // An image's own block holds exactly its extent's pages.
            let own = e.codec == 0 || (e.skip == 0 && e.block == e.len);
            let ok = shape
                && own
                && e.file_offset >= header.data_offset
                && e.file_offset
                    .checked_add(e.footprint())
                    .is_some_and(|x| x <= data_end);
            if !ok {
                return Err(layout(format!(
                    "extent at {:#x} lies outside its region or the data section",
                    e.addr
                )));
            }
            extents.push(e);
        }
    }
    extents.sort_by_key(|e| e.file_offset);
    let mut at = header.data_offset;
    for e in extents {
        if e.file_offset != at {
            return Err(layout(format!(
                "data bytes {at}..{} belong to no extent, or to two",
                e.file_offset.max(at)
            )));
        }
        at += e.footprint();
    }
    if at != data_end {
        return Err(layout(format!(
            "data bytes {at}..{data_end} belong to no extent"
        )));
    }
    Ok(())
}

/// Whether the fields a compressed block adds fit together: none for
/// pages stored as they are; a known codec, a block of whole pages no
/// larger than a writer makes, and this extent's pages inside it.
fn codec_shape(e: &image::Extent) -> bool {
    if e.codec == 0 {
        return e.stored == 0 && e.block == 0 && e.skip == 0;
    }
    image::Codec::from_u8(e.codec).is_some()
        && e.stored > 0
        && e.block.is_multiple_of(PAGE)
        && e.block <= crate::memory::compress::MAX_BLOCK
        && e.skip.is_multiple_of(PAGE)
        && e.skip.checked_add(e.len).is_some_and(|x| x <= e.block)
}

/// Whether own extent `e`'s stored bytes in `data` (the image from its
/// first byte; `structure` checked the bounds) match its checksum, and a
/// compressed block's padding to its page is zero.
pub fn stored_bytes_ok(e: &image::Extent, data: &[u8]) -> bool {
    let lo = e.file_offset as usize;
    let hi = lo + e.footprint() as usize;
    let stored = if e.codec == 0 { e.len } else { e.stored } as usize;
    xxhash_rust::xxh3::xxh3_64(&data[lo..lo + stored]) == e.hash
        && data[lo + stored..hi].iter().all(|&b| b == 0)
}

/// Check a whole image held in memory: header, metadata, structure,
/// padding and every extent's checksum.
pub fn image(bytes: &[u8]) -> Result<(Header, Meta), ImageError> {
    let (header, meta) = image::parse(bytes)?;
    structure(&header, &meta, bytes.len() as u64)?;
    padding(bytes)?;
    for r in &meta.regions {
        for e in r.extents.iter().filter(|e| e.src == 0) {
            if !stored_bytes_ok(e, bytes) {
                return Err(layout(format!(
                    "memory at {:#x} does not match its checksum",
                    e.addr
                )));
            }
        }
    }
    Ok((header, meta))
}
