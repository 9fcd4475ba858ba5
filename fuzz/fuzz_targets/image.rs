//! An image as `ckpt restart` reads it: header, metadata, structure,
//! padding, extent checksums. Must never panic, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ckpt::verify::image(data);
});
