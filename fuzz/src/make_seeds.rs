//! Seeds for the fuzz targets from a real image (`ckpt checkpoint` of any
//! program): the image with its memory left out (metadata intact), the
//! same with one small extent, and a restore plan for its regions.

use ckpt_restorer::plan::{write_plan, PlanExtent, PlanHeader, PlanRegion, PlanSpecial};
use std::path::Path;

fn main() {
    let path = std::env::args().nth(1).expect("usage: make_seeds IMAGE");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let bytes = std::fs::read(&path).expect("read image");
    let (_, mut meta) = ckpt::verify::image(&bytes).expect("a valid image");
    for r in &mut meta.regions {
        r.extents.clear();
    }
    let seed = ckpt::image::build(&meta).expect("build");
    ckpt::verify::image(&seed).expect("the seed is valid");
    std::fs::write(out.join("image/metadata-only.bin"), &seed).unwrap();

    // One extent of one page in the first anonymous region.
    let mut meta1 = meta.clone();
    let page = vec![0xabu8; 4096];
    if let Some(r) = meta1
        .regions
        .iter_mut()
        .find(|r| r.path.is_empty() && r.end - r.start >= 4096)
    {
        r.extents.push(ckpt::image::Extent {
            addr: r.start,
            len: 4096,
            file_offset: ckpt::image::DATA_OFFSET,
            hash: extent_hash(&page),
            src: 0,
            ..Default::default()
        });
    }
    let mut with = vec![0u8; ckpt::image::DATA_OFFSET as usize];
    with.extend_from_slice(&page);
    let meta_offset = with.len() as u64;
    let mut enc = Vec::new();
    ckpt::image::encode_meta(&meta1, &mut enc).unwrap();
    with.extend_from_slice(&enc);
    let h = ckpt::image::header_for(&enc, meta_offset, 4096);
    with[..ckpt::image::HEADER_LEN].copy_from_slice(&h.encode());
    if ckpt::verify::image(&with).is_ok() {
        std::fs::write(out.join("image/one-extent.bin"), &with).unwrap();
    }

    // A plan for every region (files from descriptor 3), one extent in
    // the first private writable anonymous region, the kernel's special
    // mappings, entry in the first executable region.
    let regions: Vec<PlanRegion> = meta
        .regions
        .iter()
        .filter(|r| !r.path.starts_with('['))
        .map(|r| {
            let anon = r.path.is_empty();
            let kind = if r.shared { 0x01 } else { 0x02 };
            PlanRegion {
                start: r.start,
                end: r.end,
                prot: r.prot,
                flags: kind | if anon { 0x20 } else { 0 },
                fd: if anon { -1 } else { 3 },
                paged: 0,
                offset: if anon { 0 } else { r.offset },
            }
        })
        .collect();
    let extents: Vec<PlanExtent> = regions
        .iter()
        .find(|r| r.fd < 0 && r.flags & 0x02 != 0 && r.prot & 0x2 != 0)
        .map(|r| PlanExtent {
            addr: r.start,
            len: 4096,
            file_offset: 4096,
            fd: 3,
            _pad: 0,
        })
        .into_iter()
        .collect();
    let specials: Vec<PlanSpecial> = meta
        .regions
        .iter()
        .filter(|r| r.path.starts_with("[v"))
        .map(|r| PlanSpecial::new(r.path.as_bytes(), r.start, r.end - r.start))
        .collect();
    let mut h = PlanHeader::new();
    h.image_fd = 4;
    h.set_comm(b"seed");
    h.entry = regions
        .iter()
        .find(|r| r.prot & 0x4 != 0)
        .map_or(0, |r| r.start);
    h.entry_stack = regions
        .iter()
        .rev()
        .find(|r| r.prot & 0x2 != 0)
        .map_or(0, |r| r.end);
    let mut plan = Vec::new();
    write_plan(&h, &regions, &extents, &specials, &[], &mut |b| {
        plan.extend_from_slice(b)
    });
    ckpt_restorer::plan::Plan::parse(&plan).expect("the plan seed is valid");
    std::fs::write(out.join("plan/regions.plan"), &plan).unwrap();
    println!("seeds written to {}", out.display());
}

/// The extent checksum (xxh3-64, as the image format uses).
fn extent_hash(b: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(b)
}
