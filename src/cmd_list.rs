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
    /// The metadata when the image is whole (of its root, for a tree),
    /// else why it is not.
    pub meta: Result<image::Meta, String>,
    /// Processes it holds (a tree image holds several).
    pub processes: usize,
    /// Threads of all its processes.
    pub threads: usize,
}

/// A tree image (a `ckpt-….tree` directory, see `ckpt::tree`): its
/// root's metadata, its process and thread counts and size; every member
/// image checked like a single one.
fn tree_entry(path: &Path) -> Result<(image::Meta, usize, usize, u64), String> {
    let m = ckpt::tree::Manifest::read(path)?;
    let (mut root, mut threads, mut bytes) = (None, 0, 0);
    for p in &m.processes {
        let Some(name) = &p.image else { continue };
        let f = path.join(name);
        let len = std::fs::metadata(&f)
            .map_err(|e| format!("{}: {e}", f.display()))?
            .len();
        let (h, meta) = image::read_file(&f)?;
        ckpt::verify::structure(&h, &meta, len).map_err(|e| format!("{}: {e}", f.display()))?;
        threads += meta.threads.len();
        bytes += len;
        if p.pid == m.root {
            root = Some(meta);
        }
    }
    let root = root.ok_or("the manifest's root has no image")?;
    Ok((root, m.processes.len(), threads, bytes))
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
            n.starts_with("ckpt-") && (n.ends_with(".img") || n.ends_with(".tree"))
        })
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            let path = e.path();
            if m.is_dir() {
                return Some(match tree_entry(&path) {
                    Ok((meta, processes, threads, bytes)) => Entry {
                        modified: m.modified().ok()?,
                        bytes,
                        path,
                        meta: Ok(meta),
                        processes,
                        threads,
                    },
                    Err(why) => Entry {
                        modified: m.modified().ok()?,
                        bytes: 0,
                        path,
                        meta: Err(why),
                        processes: 0,
                        threads: 0,
                    },
                });
            }
            let meta = image::read_file(&path).and_then(|(h, meta)| {
                ckpt::verify::structure(&h, &meta, m.len())
                    .map(|()| meta)
                    .map_err(|e| e.to_string())
            });
            let threads = meta.as_ref().map_or(0, |m| m.threads.len());
            Some(Entry {
                modified: m.modified().ok()?,
                bytes: m.len(),
                path,
                meta,
                processes: 1,
                threads,
            })
        })
        .collect();
    v.sort_by_key(|e| e.modified);
    Ok(v)
}

pub fn list(args: ListArgs) -> Result<(), Failure> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    if let Some((db, _)) = crate::store::parse(dir.as_os_str()) {
        return crate::store::list(&db, args.json);
    }
    // Not while a writer prunes the directory (see `ckpt::writer`).
    let _lock = image::DirLock::take(&dir, false, 60_000).ok();
    let all = entries(&dir)?;
    if args.json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|e| match &e.meta {
                Ok(m) => serde_json::json!({
                    "path": e.path, "bytes": e.bytes, "whole": true,
                    "program": m.process.comm, "pid": m.process.pid,
                    "created_unix_ms": m.created_unix_ms, "seq": m.seq,
                    "threads": e.threads, "processes": e.processes,
                    "needs": m.deps.iter().map(|d| &d.name).collect::<Vec<_>>(),
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
            "no checkpoint images (ckpt-*.img, ckpt-*.tree) in {}\n",
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
                e.threads.to_string(),
                e.processes.to_string(),
                match m.deps.len() {
                    0 => "whole".into(),
                    // A tree's earlier images are linked inside it.
                    _ if e.path.is_dir() => "whole, incremental (earlier images inside)".into(),
                    n => format!("whole, incremental (needs {n} earlier)"),
                },
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
    let mut text = t.render(0);
    // Bases (see `--keep`): named by the images, listed once, below.
    let mut bases: Vec<&str> = all
        .iter()
        .filter_map(|e| e.meta.as_ref().ok())
        .flat_map(|m| m.deps.iter().map(|d| d.name.as_str()))
        .filter(|n| n.ends_with(".base"))
        .collect();
    bases.sort_unstable();
    bases.dedup();
    for b in bases {
        let size = std::fs::metadata(dir.join(b))
            .map(|m| fmt_size(m.len()))
            .unwrap_or_else(|_| "missing".into());
        text.push_str(&format!(
            "{b} ({size}): an older whole image the images above take most of their \
             memory from (not a generation; --keep folds it once less than half is used)\n"
        ));
    }
    crate::print_stdout(&text)
}
