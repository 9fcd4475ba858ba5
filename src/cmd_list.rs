//! `ckpt list [DIR]`: the checkpoint images (generations) in a directory.

use crate::cli::ListArgs;
use crate::human::{fmt_size, fmt_utc_ms, Table};
use crate::Failure;
use ckpt::image;
use std::path::{Path, PathBuf};

/// One image as listed.
pub struct Entry {
    pub path: PathBuf,
    pub modified: std::time::SystemTime,
    pub bytes: u64,
    /// The metadata when the image is whole, else why it is not.
    pub meta: Result<image::Meta, String>,
}

/// The images (`ckpt-*.img`) of `dir`, oldest first (by the time they
/// were published). Header, metadata and layout are checked; page data
/// is not read.
pub fn entries(dir: &Path) -> Result<Vec<Entry>, Failure> {
    let rd = std::fs::read_dir(dir).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    let mut v: Vec<Entry> = rd
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("ckpt-") && n.ends_with(".img")
        })
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            let path = e.path();
            let meta = image::read_file(&path).and_then(|(h, meta)| {
                ckpt::verify::structure(&h, &meta, m.len())
                    .map(|()| meta)
                    .map_err(|e| e.to_string())
            });
            Some(Entry {
                modified: m.modified().ok()?,
                bytes: m.len(),
                path,
                meta,
            })
        })
        .collect();
    v.sort_by_key(|e| e.modified);
    Ok(v)
}

pub fn list(args: ListArgs) -> Result<(), Failure> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let all = entries(&dir)?;
    if args.json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|e| match &e.meta {
                Ok(m) => serde_json::json!({
                    "path": e.path, "bytes": e.bytes, "whole": true,
                    "program": m.process.comm, "pid": m.process.pid,
                    "created_unix_ms": m.created_unix_ms, "seq": m.seq,
                    "threads": m.threads.len(), "processes": 1,
                }),
                Err(why) => serde_json::json!({
                    "path": e.path, "bytes": e.bytes, "whole": false, "error": why,
                }),
            })
            .collect();
        let text = serde_json::to_string_pretty(&rows).map_err(|e| Failure::new(e.to_string()))?;
        return crate::print_stdout(&format!("{text}\n"));
    }
    if all.is_empty() {
        return crate::print_stdout(&format!(
            "no checkpoint images (ckpt-*.img) in {}\n",
            dir.display()
        ));
    }
    let mut t = Table::new(&[
        "IMAGE",
        "PROGRAM",
        "PID",
        "TAKEN (UTC)",
        "SIZE",
        "THREADS",
        "PROCESSES",
        "STATE",
    ]);
    for e in &all {
        let name = e
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &e.meta {
            Ok(m) => t.row(vec![
                name,
                m.process.comm.clone(),
                m.process.pid.to_string(),
                fmt_utc_ms(m.created_unix_ms),
                fmt_size(e.bytes),
                m.threads.len().to_string(),
                "1".into(),
                "whole".into(),
            ]),
            Err(why) => t.row(vec![
                name,
                "-".into(),
                "-".into(),
                "-".into(),
                fmt_size(e.bytes),
                "-".into(),
                "-".into(),
                format!("damaged: {why}"),
            ]),
        }
    }
    crate::print_stdout(&t.render(0))
}
