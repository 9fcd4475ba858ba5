//! A region's extents, packed: one MessagePack byte string holding every
//! extent in a few varints, instead of a map with field names per extent.
//!
//! An incremental image of 4 GiB changed 1% has 21,000 extents; named,
//! they took 2.8 ms to decode (1.1 MB of metadata) at every restart, and
//! as long to encode in the writer. Images of format versions 2 and 3
//! hold them named: those are still read (`visit_seq`).
//!
//! Layout: a format byte ([`PACKED`]), then per extent a flags byte
//! (bit 0: `src` follows; bit 1: a compressed block: `codec`, `stored`,
//! `block`, `skip` follow), `addr`, `len`, `file_offset` as LEB128
//! varints, `hash` as 8 bytes little-endian, then the optional fields.

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

use super::Extent;

/// The first byte of a packed list: its layout's number.
const PACKED: u8 = 1;
const HAS_SRC: u8 = 1;
const COMPRESSED: u8 = 2;

/// `extents` packed (see the module's doc).
pub fn pack(extents: &[Extent]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + extents.len() * 24);
    out.push(PACKED);
    for e in extents {
        let compressed = e.codec != 0 || e.stored != 0 || e.block != 0 || e.skip != 0;
        let flags = if e.src != 0 { HAS_SRC } else { 0 } | if compressed { COMPRESSED } else { 0 };
        out.push(flags);
        for v in [e.addr, e.len, e.file_offset] {
            put(&mut out, v);
        }
        out.extend_from_slice(&e.hash.to_le_bytes());
        if e.src != 0 {
            put(&mut out, u64::from(e.src));
        }
        if compressed {
            out.push(e.codec);
            for v in [e.stored, e.block, e.skip] {
                put(&mut out, v);
            }
        }
    }
    out
}

/// The extents `pack` made of them; an error says what is malformed.
pub fn unpack(b: &[u8]) -> Result<Vec<Extent>, String> {
    let (&format, mut rest) = b.split_first().ok_or("extents: empty")?;
    if format != PACKED {
        return Err(format!("extents: unknown packing {format}"));
    }
    // Each extent takes 12 bytes at least: a bound that a damaged length
    // cannot turn into a huge allocation.
    let mut out = Vec::with_capacity(rest.len() / 12);
    while let Some((&flags, r)) = rest.split_first() {
        rest = r;
        if flags & !(HAS_SRC | COMPRESSED) != 0 {
            return Err(format!("extents: unknown flags {flags:#x}"));
        }
        let addr = take(&mut rest)?;
        let len = take(&mut rest)?;
        let file_offset = take(&mut rest)?;
        let (hash, r) = rest.split_first_chunk::<8>().ok_or("extents: truncated")?;
        rest = r;
        let mut e = Extent {
            addr,
            len,
            file_offset,
            hash: u64::from_le_bytes(*hash),
            ..Extent::default()
        };
        if flags & HAS_SRC != 0 {
            e.src = u32::try_from(take(&mut rest)?).map_err(|_| "extents: source out of range")?;
        }
        if flags & COMPRESSED != 0 {
            let (&codec, r) = rest.split_first().ok_or("extents: truncated")?;
            rest = r;
            e.codec = codec;
            e.stored = take(&mut rest)?;
            e.block = take(&mut rest)?;
            e.skip = take(&mut rest)?;
        }
        out.push(e);
    }
    Ok(out)
}

/// Append `v` as a LEB128 varint.
fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Take a LEB128 varint from the front of `b`.
fn take(b: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            break;
        }
        v |= bits << (7 * i);
        if byte & 0x80 == 0 {
            *b = &b[i + 1..];
            return Ok(v);
        }
    }
    Err("extents: truncated or overlong number".into())
}

/// For `#[serde(with = "extents")]` on [`super::Region::extents`]:
/// packed in an image, each extent with its fields in a human-readable
/// form (`ckpt inspect --json`).
pub fn serialize<S: Serializer>(extents: &[Extent], s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        return s.collect_seq(extents);
    }
    s.serialize_bytes(&pack(extents))
}

/// Packed (a byte string) or, from images of versions 2 and 3, a
/// sequence of named extents.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Extent>, D::Error> {
    d.deserialize_any(Packed)
}

struct Packed;

impl<'de> Visitor<'de> for Packed {
    type Value = Vec<Extent>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("packed extents or a sequence of extents")
    }

    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Vec<Extent>, E> {
        unpack(b).map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Extent>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(e) = seq.next_element::<Extent>()? {
            out.push(e);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Extent> {
        vec![
            Extent {
                addr: 0x7f12_3456_7000,
                len: 4096,
                file_offset: 4096,
                hash: 0xdead_beef_0123_4567,
                ..Extent::default()
            },
            Extent {
                addr: 0x7f12_3456_8000,
                len: 99 * 4096,
                file_offset: 1 << 40,
                hash: 0,
                src: 3,
                ..Extent::default()
            },
            Extent {
                addr: 0x5555_0000_0000,
                len: 8192,
                file_offset: 12288,
                hash: u64::MAX,
                src: 0,
                codec: 2,
                stored: 777,
                block: 1 << 20,
                skip: 4096,
            },
            Extent {
                addr: u64::MAX - 4095,
                len: 4096,
                file_offset: u64::MAX,
                hash: 1,
                src: u32::MAX,
                codec: 1,
                stored: u64::MAX,
                block: 0,
                skip: 0,
            },
        ]
    }

    #[test]
    fn packed_extents_come_back_field_for_field() {
        let v = sample();
        assert_eq!(unpack(&pack(&v)).unwrap(), v);
        assert_eq!(unpack(&pack(&[])).unwrap(), Vec::new());
    }

    #[test]
    fn a_damaged_packing_is_an_error_not_a_panic() {
        let p = pack(&sample());
        for cut in 0..p.len() {
            let r = unpack(&p[..cut]);
            // Cut at an extent's end, it reads as fewer extents; elsewhere
            // it fails.
            if let Ok(v) = r {
                assert!(v.len() < sample().len());
            }
        }
        let mut bad = p.clone();
        bad[0] = 9;
        assert!(unpack(&bad).unwrap_err().contains("packing"));
        let mut bad = p.clone();
        bad[1] = 0x80;
        assert!(unpack(&bad).unwrap_err().contains("flags"));
        // An overlong varint (11 bytes of continuation).
        let mut bad = vec![PACKED, 0];
        bad.extend([0xff; 11]);
        assert!(unpack(&bad).is_err());
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Named {
        extents: Vec<Extent>,
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct WithPacked {
        #[serde(with = "super")]
        extents: Vec<Extent>,
    }

    #[test]
    fn named_extents_of_older_images_are_still_read() {
        let v = sample();
        let old = rmp_serde::to_vec_named(&Named { extents: v.clone() }).unwrap();
        let got: WithPacked = rmp_serde::from_slice(&old).unwrap();
        assert_eq!(got.extents, v);
        let new = rmp_serde::to_vec_named(&WithPacked { extents: v.clone() }).unwrap();
        assert!(new.len() < old.len());
        let got: WithPacked = rmp_serde::from_slice(&new).unwrap();
        assert_eq!(got.extents, v);
        // In JSON, each extent with its field names.
        let json = serde_json::to_value(WithPacked { extents: v.clone() }).unwrap();
        assert_eq!(json["extents"][2]["codec"], 2);
        let got: WithPacked = serde_json::from_value(json).unwrap();
        assert_eq!(got.extents, v);
    }
}
