//! `ckpt inspect IMAGE`: check an image and show what it holds.

use crate::cli::InspectArgs;
use crate::Failure;
use ckpt::image::{self, Meta};
use serde::Serialize;
use std::path::Path;

use crate::loaded::{load, Loaded};

pub fn inspect(mut args: InspectArgs) -> Result<(), Failure> {
    // From a store: its generation exported into a private directory.
    let _export;
    if let Some((db, name)) = crate::store::parse(args.image.as_os_str()) {
        let store = crate::store::Store::open(&db, false).map_err(Failure::new)?;
        let name = store.pick(name.as_deref()).map_err(Failure::new)?;
        let export = crate::store::Export::new(&db).map_err(Failure::new)?;
        args.image = store.export(&name, &export.dir).map_err(Failure::new)?;
        _export = export;
    }
    if args.image.join(ckpt::tree::MANIFEST).is_file() {
        return crate::tree_inspect::inspect(&args.image, args.json);
    }
    // Not while a writer prunes the directory (it may rewrite this image).
    let _lock = args
        .image
        .parent()
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .and_then(|d| image::DirLock::take(d, false, 60_000).ok());
    let loaded = load(&current_version(&args.image)).map_err(Failure::new)?;
    let text = if args.json {
        to_json(&loaded).map_err(Failure::new)?
    } else {
        crate::report::render(&loaded)
    };
    crate::print_stdout(&text)
}

/// `path`, or where the checkpoint written there is now (renamed when
/// older images were pruned), said on stderr.
pub fn current_version(path: &Path) -> std::path::PathBuf {
    match ckpt::writer::fold::current_version(path) {
        Some(now) => {
            eprintln!(
                "ckpt: {} is now {} (the same checkpoint, rewritten when older images were pruned)",
                path.display(),
                now.display()
            );
            now
        }
        None => path.to_path_buf(),
    }
}

/// Facts about the file itself, beside the metadata.
#[derive(Serialize)]
struct ImageFacts {
    path: String,
    format_version: u32,
    file_bytes: u64,
    meta_bytes: u64,
    data_bytes: u64,
}

/// `{"image": {...}, <every Meta field>}`: scripts index the metadata by
/// Meta's own field names.
#[derive(Serialize)]
struct JsonReport<'a> {
    image: ImageFacts,
    #[serde(flatten)]
    meta: &'a Meta,
}

pub fn to_json(l: &Loaded) -> Result<String, String> {
    let report = JsonReport {
        image: ImageFacts {
            path: l.path.to_string_lossy().into_owned(),
            format_version: l.header.version,
            file_bytes: l.file_bytes,
            meta_bytes: l.header.meta_len,
            data_bytes: l.header.data_len,
        },
        meta: &l.meta,
    };
    let mut s = serde_json::to_string_pretty(&crate::lean_json::Lean(&report))
        .map_err(|e| format!("cannot encode JSON: {e}"))?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;
    use ckpt::image::{build, Header, FORMAT_VERSION, HEADER_LEN};
    use std::path::PathBuf;

    fn image_bytes() -> Vec<u8> {
        build(&crate::report::tests::sample_meta()).unwrap()
    }

    fn write(t: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let p = t.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Loading must fail with one line that names the file.
    fn refused(p: &Path) -> String {
        let e = load(p)
            .err()
            .unwrap_or_else(|| panic!("{} was accepted", p.display()));
        assert!(
            !e.contains('\n') && e.starts_with(&p.display().to_string()),
            "{e}"
        );
        e
    }

    #[test]
    fn valid_image_loads_in_both_modes() {
        let t = TempDir::new("inspect-ok");
        let bytes = image_bytes();
        let p = write(&t, "good.img", &bytes);
        let l = load(&p).unwrap();
        assert_eq!(l.meta, crate::report::tests::sample_meta());

        let v: serde_json::Value = serde_json::from_str(&to_json(&l).unwrap()).unwrap();
        assert_eq!(v["image"]["path"], p.to_string_lossy().as_ref());
        assert_eq!(v["image"]["format_version"], FORMAT_VERSION);
        assert_eq!(v["image"]["file_bytes"], bytes.len());
        assert_eq!(v["image"]["data_bytes"], 0);
        assert_eq!(v["fds"][0]["kind"], "tty");
        assert_eq!(v["fds"][1]["fd"], 3);
        assert_eq!(v["fds"][1]["kind"], "file");
        assert_eq!(v["threads"][0]["state"], "frozen");
        assert_eq!(v["timers"][0]["notify"], "thread_id");
        assert_eq!(v["process"]["cwd"], "/home/user");
        assert_eq!(v["seq"], 3);

        let text = crate::report::render(&l);
        for part in [
            "Process",
            "Threads (2)",
            "Descriptors (3)",
            "Timers (1)",
            "/tmp/out.log",
        ] {
            assert!(text.contains(part), "missing {part}:\n{text}");
        }
        let args = InspectArgs {
            image: p,
            json: true,
        };
        assert!(inspect(args).is_ok());
    }

    #[test]
    fn missing_empty_and_garbage_files_are_refused() {
        let t = TempDir::new("inspect-bad");
        assert!(refused(&t.path().join("nope.img")).contains("No such file"));
        assert!(refused(t.path()).contains("is a directory"));
        assert!(refused(&write(&t, "empty", b"")).contains("not a ckpt image"));
        assert!(refused(&write(&t, "short", b"CKPT")).contains("not a ckpt image"));
        let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert!(refused(&write(&t, "garbage", &garbage)).contains("bad magic"));
        let f = inspect(InspectArgs {
            image: t.path().join("nope.img"),
            json: false,
        })
        .unwrap_err();
        assert_eq!(f.code, 1);
    }

    #[test]
    fn every_truncation_is_refused() {
        let t = TempDir::new("inspect-cut");
        let bytes = image_bytes();
        for len in 0..bytes.len() {
            refused(&write(&t, "cut.img", &bytes[..len]));
        }
    }

    #[test]
    fn bit_flips_are_refused_or_harmless() {
        let t = TempDir::new("inspect-flip");
        let bytes = image_bytes();
        let want = crate::report::tests::sample_meta();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << (i % 8);
            let p = write(&t, "flip.img", &bad);
            // Reserved header bytes and the padding up to the (empty) data
            // section are outside every checksum and unused.
            match load(&p) {
                Ok(l) => assert!(
                    (88..image::DATA_OFFSET as usize).contains(&i) && l.meta == want,
                    "flip at {i} accepted"
                ),
                Err(e) => assert!(!e.contains('\n')),
            }
        }
    }

    #[test]
    fn crafted_headers_with_valid_checksums_are_refused() {
        let t = TempDir::new("inspect-craft");
        let bytes = image_bytes();
        let good = Header::decode(&bytes).unwrap();
        let with = |h: Header| {
            let mut v = bytes.clone();
            v[..HEADER_LEN].copy_from_slice(&h.encode());
            write(&t, "craft.img", &v)
        };
        let cases = [
            (
                Header {
                    meta_len: u64::MAX,
                    ..good
                },
                "overflow",
            ),
            (
                Header {
                    data_offset: u64::MAX,
                    data_len: 2,
                    ..good
                },
                "overflow",
            ),
            (
                Header {
                    meta_offset: 0,
                    ..good
                },
                "offset 0",
            ),
            (
                Header {
                    meta_offset: 200,
                    ..good
                },
                "offset 200",
            ),
            (
                Header {
                    meta_len: 1 << 40,
                    ..good
                },
                "truncated",
            ),
            (
                Header {
                    version: 99,
                    ..good
                },
                "version 99",
            ),
            (Header { arch: 183, ..good }, "architecture"),
            (
                Header {
                    meta_len: good.meta_len - 1,
                    ..good
                },
                "corrupt",
            ),
        ];
        for (h, want) in cases {
            let e = refused(&with(h));
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }
}
