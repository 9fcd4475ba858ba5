//! Replays the fuzz targets' inputs on the stable compiler: the seeds
//! (real images and plans, which must be accepted) and every input that
//! ever crashed a target (fuzz/regressions/TARGET/*, which must now be
//! answered without a panic). The targets themselves: fuzz/Cargo.toml.

use std::path::{Path, PathBuf};

fn files(dir: &str) -> Vec<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_none_or(|e| e != "md"));
    v.sort();
    v
}

/// The `meta` target: bytes as metadata behind a correct header.
fn meta_target(data: &[u8]) -> Result<(), String> {
    use ckpt::image::{encode_meta, header_for, DATA_OFFSET, HEADER_LEN};
    let mut image = vec![0u8; DATA_OFFSET as usize];
    image.extend_from_slice(data);
    let h = header_for(data, DATA_OFFSET, 0);
    image[..HEADER_LEN].copy_from_slice(&h.encode());
    let (_, meta) = ckpt::verify::image(&image).map_err(|e| e.to_string())?;
    let mut again = Vec::new();
    encode_meta(&meta, &mut again)
}

#[test]
fn seeds_are_accepted() {
    let images = files("seeds/image");
    assert!(!images.is_empty(), "no image seeds");
    for p in images {
        let b = std::fs::read(&p).unwrap();
        ckpt::verify::image(&b).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    for p in files("seeds/plan") {
        let b = std::fs::read(&p).unwrap();
        ckpt_restorer::plan::Plan::parse(&b).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    for p in files("seeds/meta") {
        let b = std::fs::read(&p).unwrap();
        meta_target(&b).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

#[test]
fn inputs_that_once_crashed_are_answered() {
    for p in files("regressions/image") {
        let _ = ckpt::verify::image(&std::fs::read(&p).unwrap());
    }
    for p in files("regressions/plan") {
        let b = std::fs::read(&p).unwrap();
        if let Ok(v) = ckpt_restorer::plan::Plan::parse(&b) {
            for r in v.regions() {
                let _ = v.region_containing(r.start);
            }
        }
    }
    for p in files("regressions/meta") {
        let _ = meta_target(&std::fs::read(&p).unwrap());
    }
}
