//! Hostile metadata behind valid checksums: the bytes are taken as the
//! image's MessagePack metadata and given a correct header, so decoding
//! and the structure checks see them (checksums stop a plain byte fuzzer
//! at the header). Must never panic.
#![no_main]
use ckpt::image::{encode_meta, header_for, DATA_OFFSET, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut image = vec![0u8; DATA_OFFSET as usize];
    image.extend_from_slice(data);
    let h = header_for(data, DATA_OFFSET, 0);
    image[..HEADER_LEN].copy_from_slice(&h.encode());
    if let Ok((_, meta)) = ckpt::verify::image(&image) {
        // What decodes must encode again.
        let mut again = Vec::new();
        encode_meta(&meta, &mut again).expect("decoded metadata encodes");
    }
});
