//! Any byte flipped anywhere in a real image is refused before anything
//! starts: the header (checksummed, reserved bytes zero), the padding
//! before the data, every data byte (each lies in one checksummed extent),
//! the metadata (checksummed), and bytes added or cut at the end. Checked
//! on the bytes (`ckpt::verify::image`, what the fuzz targets run) and
//! through `ckpt restart`.

mod common;
#[path = "common/restart.rs"]
mod rs;

use rs::{checkpoint_and_kill, run_cmd, start_until, Area};
use std::path::{Path, PathBuf};

/// A real image of writer_busy (128 MiB would be slow to flip through:
/// restart_counter holds little).
fn real_image(area: &Area) -> PathBuf {
    let bin = common::TempDir::new("hostile-bin");
    let prog = common::compile_c("restart_counter.c", bin.path());
    let ctl = area.sub("ctl");
    let out = area.file("out");
    let args = [
        ctl.to_string_lossy().into_owned(),
        "400".into(),
        "10".into(),
    ];
    let mut kid = start_until(
        run_cmd(&prog, &args, area.path(), &area.images),
        &out,
        &area.file("err"),
        "under ckpt",
        "line 30 ",
    );
    checkpoint_and_kill(&mut kid, &area.images)
}

fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 0x5a;
    b
}

#[test]
fn every_flipped_byte_is_refused() {
    let area = Area::new("hostile");
    let image = real_image(&area);
    let bytes = std::fs::read(&image).unwrap();
    let (header, _) =
        ckpt::verify::image(&bytes).unwrap_or_else(|e| panic!("a real image is refused: {e}"));
    let data_end = (header.data_offset + header.data_len) as usize;
    // Every byte before the data and every byte of the metadata; data
    // bytes at a stride (each extent's checksum covers them all).
    let mut positions: Vec<usize> = (0..header.data_offset as usize).collect();
    positions.extend(data_end..bytes.len());
    positions.extend((header.data_offset as usize..data_end).step_by(997));
    for &at in &positions {
        if ckpt::verify::image(&flipped(&bytes, at)).is_ok() {
            panic!("a flipped byte at {at} of {} was not noticed", bytes.len());
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(
        ckpt::verify::image(&longer).is_err(),
        "a byte added at the end was not noticed"
    );
    assert!(
        ckpt::verify::image(&bytes[..bytes.len() - 1]).is_err(),
        "a byte cut from the end was not noticed"
    );
    eprintln!("{} flipped images refused", positions.len());
}

fn restart_refuses(area: &Area, image: &Path, bytes: &[u8], what: &str) {
    std::fs::write(image, bytes).unwrap();
    let r = common::ckpt(area.path(), ["restart".as_ref(), image.as_os_str()]);
    assert_eq!(
        r.status.code(),
        Some(1),
        "{what}: restart went ahead: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("corrupt image") || r.stderr.contains("checksum"),
        "{what}: unclear refusal: {}",
        r.stderr
    );
}

#[test]
fn restart_refuses_a_flipped_padding_reserved_or_data_byte() {
    let area = Area::new("hostile-restart");
    let image = real_image(&area);
    let bytes = std::fs::read(&image).unwrap();
    let (header, _) = ckpt::verify::image(&bytes).unwrap();
    restart_refuses(&area, &image, &flipped(&bytes, 100), "reserved header byte");
    restart_refuses(&area, &image, &flipped(&bytes, 2000), "padding byte");
    let data = header.data_offset as usize + 12345;
    restart_refuses(&area, &image, &flipped(&bytes, data), "data byte");
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"junk");
    restart_refuses(&area, &image, &longer, "bytes after the end");
}
