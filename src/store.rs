//! Checkpoints kept in a database (`--store sqlite:PATH`): an embedded
//! SQLite file instead of a directory of images.
//!
//! - Each generation is one row (`generations`) with what `ckpt list`
//!   shows, and its files (one image, or a tree's manifest and per-process
//!   images) as rows of `files`, each a list of chunk hashes.
//! - Contents are content-addressed **4 KiB chunks** (`chunks`, found by
//!   their BLAKE3 hash, with a reference count; rows in insertion order,
//!   so 64 KiB database pages fill up, the hash in an index of its own):
//!   an image's memory is
//!   page-aligned in its file, so every page a program did not change
//!   between two checkpoints is stored once, whatever moved around it.
//!   BLAKE3 and not a faster non-cryptographic hash: the pages hold the
//!   program's data, which may come from anyone, and a crafted collision
//!   would silently swap one page for another.
//! - A rollback journal, not WAL: an import is mostly new pages, which a
//!   rollback journal writes once (WAL writes them twice); measured 20-30%
//!   faster on 256 MiB.
//! - Importing a checkpoint is one transaction: a crash or a SIGKILL at
//!   any moment leaves the previous generations whole (SQLite's journal).
//!   Removing a generation drops the references it held; chunks no other
//!   generation uses are deleted, and their space given back
//!   (`auto_vacuum = incremental`).
//! - The image writer (a fork of the program) cannot run SQLite: `ckpt
//!   checkpoint --store` has the image written into a private staging
//!   directory beside the database, imports it, and removes it. Restart
//!   and inspect export a generation into a private directory first and
//!   read it there, exactly as from files; each chunk is checked against
//!   its hash on the way out.

use crate::human::{fmt_size, fmt_utc_ms, Table};
use crate::Failure;
use rusqlite::{params, Connection, OptionalExtension};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const PREFIX: &str = "sqlite:";
const CHUNK: usize = 4096;
const SCHEMA_VERSION: i64 = 1;

/// `sqlite:PATH[#NAME]` → (PATH, NAME).
pub fn parse(spec: &std::ffi::OsStr) -> Option<(PathBuf, Option<String>)> {
    let s = spec.to_str()?;
    let rest = s.strip_prefix(PREFIX)?;
    let (path, name) = match rest.rsplit_once('#') {
        Some((p, n)) => (p, Some(n.to_string())),
        None => (rest, None),
    };
    Some((PathBuf::from(path), name))
}

/// One generation as listed.
pub struct Generation {
    pub name: String,
    pub program: String,
    pub pid: i64,
    pub created_unix_ms: u64,
    pub bytes: u64,
    pub threads: i64,
    pub processes: i64,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

fn err(path: &Path) -> impl Fn(rusqlite::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

impl Store {
    /// Open the store at `path`; `create` makes it when missing. A store
    /// of another user, or one others can write, is refused (whoever
    /// writes it chooses what a restart runs).
    pub fn open(path: &Path, create: bool) -> Result<Store, String> {
        match std::fs::metadata(path) {
            Ok(m) => {
                // SAFETY: getuid cannot fail.
                let me = unsafe { libc::getuid() };
                if m.uid() != me {
                    return Err(format!(
                        "{}: owned by uid {}, not by you (uid {me}): refused",
                        path.display(),
                        m.uid()
                    ));
                }
                if m.permissions().mode() & 0o022 != 0 {
                    return Err(format!("{}: others can write it: refused", path.display()));
                }
            }
            Err(_) if create => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    if !parent.is_dir() {
                        return Err(format!("{}: no such directory", parent.display()));
                    }
                }
                // Made private before SQLite writes anything into it.
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        let conn = Connection::open(path).map_err(err(path))?;
        let s = Store {
            conn,
            path: path.to_path_buf(),
        };
        s.setup()?;
        Ok(s)
    }

    fn setup(&self) -> Result<(), String> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| format!("{}: not a ckpt store ({e})", self.path.display()))?;
        if version == 0 {
            // Set before the first table: large pages hold many 4 KiB
            // chunks each; incremental vacuum gives removed chunks' space back.
            self.conn
                .execute_batch(
                    "PRAGMA page_size = 65536;
                     PRAGMA auto_vacuum = INCREMENTAL;
                     PRAGMA journal_mode = DELETE;
                     BEGIN;
                     CREATE TABLE generations(
                        id INTEGER PRIMARY KEY,
                        name TEXT NOT NULL UNIQUE,
                        program TEXT NOT NULL,
                        pid INTEGER NOT NULL,
                        created_unix_ms INTEGER NOT NULL,
                        bytes INTEGER NOT NULL,
                        threads INTEGER NOT NULL,
                        processes INTEGER NOT NULL);
                     CREATE TABLE files(
                        gen_id INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
                        rel_path TEXT NOT NULL,
                        len INTEGER NOT NULL,
                        hashes BLOB NOT NULL,
                        PRIMARY KEY(gen_id, rel_path));
                     CREATE TABLE chunks(
                        id INTEGER PRIMARY KEY,
                        hash BLOB NOT NULL UNIQUE,
                        refs INTEGER NOT NULL,
                        data BLOB NOT NULL);
                     PRAGMA user_version = 1;
                     COMMIT;",
                )
                .map_err(|e| format!("{}: not a ckpt store ({e})", self.path.display()))?;
        } else if version != SCHEMA_VERSION {
            return Err(format!(
                "{}: a ckpt store of another version ({version}; this ckpt reads {SCHEMA_VERSION})",
                self.path.display()
            ));
        }
        self.conn
            .execute_batch("PRAGMA foreign_keys = ON; PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL;")
            .map_err(err(&self.path))?;
        // Another command importing meanwhile (a periodic checkpoint and
        // one asked by hand): wait for it.
        self.conn
            .busy_timeout(std::time::Duration::from_secs(120))
            .map_err(err(&self.path))?;
        Ok(())
    }

    /// Where `ckpt checkpoint --store` has images written before import:
    /// a private directory beside the database, emptied first (a staged
    /// image left by an interrupted import is not part of the store).
    pub fn staging(&self) -> Result<PathBuf, String> {
        private_dir(&self.path, "staging-")
    }

    /// The highest generation number in the store (a tree image staged in
    /// an empty directory must be numbered above it).
    pub fn max_seq(&self) -> Result<u64, String> {
        Ok(self
            .generations()?
            .iter()
            .filter_map(|g| {
                let stem = g
                    .name
                    .strip_suffix(".img")
                    .or_else(|| g.name.strip_suffix(".tree"))?;
                stem.rsplit('.').next()?.parse::<u64>().ok()
            })
            .max()
            .unwrap_or(0))
    }

    /// Import the checkpoint `image` (an image file, or a `.tree`
    /// directory) as one generation, in one transaction.
    /// With `keep`, the generations beyond the newest `keep` go in the
    /// same transaction (never the new one, never before it is in).
    pub fn import(
        &mut self,
        image: &Path,
        listed: &crate::cmd_list::Entry,
        keep: Option<u32>,
    ) -> Result<String, String> {
        let name = image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or("the image has no name")?;
        let meta = listed.meta.as_ref().map_err(|e| format!("{name}: {e}"))?;
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        if image.is_dir() {
            let mut rd: Vec<_> = std::fs::read_dir(image)
                .map_err(|e| format!("{}: {e}", image.display()))?
                .flatten()
                .collect();
            rd.sort_by_key(|e| e.file_name());
            for e in rd {
                files.push((e.file_name().to_string_lossy().into_owned(), e.path()));
            }
        } else {
            files.push((String::new(), image.to_path_buf()));
        }
        // IMMEDIATE: the write lock first (waiting for another import), not
        // a read lock to upgrade later, which SQLite would refuse at once.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err(&self.path))?;
        // A generation of the same name (a restarted program numbers its
        // checkpoints on from the one it came back from) is replaced, as
        // a file of that name would be.
        let old: Option<i64> = tx
            .query_row("SELECT id FROM generations WHERE name = ?1", [&name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err(&self.path))?;
        if let Some(id) = old {
            drop_generation(&tx, id).map_err(err(&self.path))?;
        }
        tx.execute(
            "INSERT INTO generations(name, program, pid, created_unix_ms, bytes, threads, processes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                name,
                meta.process.comm,
                meta.process.pid,
                meta.created_unix_ms as i64,
                listed.bytes as i64,
                listed.threads as i64,
                listed.processes as i64
            ],
        )
        .map_err(|e| format!("{}: {name}: {e}", self.path.display()))?;
        let gen_id = tx.last_insert_rowid();
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO chunks(hash, refs, data) VALUES (?1, 1, ?2)
                     ON CONFLICT(hash) DO UPDATE SET refs = refs + 1",
                )
                .map_err(err(&self.path))?;
            for (rel, path) in &files {
                let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let mut hashes = Vec::with_capacity(data.len().div_ceil(CHUNK) * 32);
                for chunk in data.chunks(CHUNK) {
                    let h = blake3::hash(chunk);
                    put.execute(params![h.as_bytes().as_slice(), chunk])
                        .map_err(err(&self.path))?;
                    hashes.extend_from_slice(h.as_bytes());
                }
                tx.execute(
                    "INSERT INTO files(gen_id, rel_path, len, hashes) VALUES (?1, ?2, ?3, ?4)",
                    params![gen_id, rel, data.len() as i64, hashes],
                )
                .map_err(err(&self.path))?;
            }
        }
        if let Some(keep) = keep {
            let doomed: Vec<i64> = tx
                .prepare("SELECT id FROM generations ORDER BY created_unix_ms DESC, id DESC")
                .and_then(|mut q| {
                    q.query_map([], |r| r.get(0))?
                        .collect::<Result<Vec<i64>, _>>()
                })
                .map_err(err(&self.path))?
                .into_iter()
                .filter(|&id| id != gen_id)
                .skip(keep.max(1) as usize - 1)
                .collect();
            for id in doomed {
                drop_generation(&tx, id).map_err(err(&self.path))?;
            }
        }
        tx.commit().map_err(err(&self.path))?;
        if keep.is_some() {
            // Give the freed pages back to the file system.
            self.conn
                .execute_batch("PRAGMA incremental_vacuum;")
                .map_err(err(&self.path))?;
        }
        Ok(name)
    }

    /// Every generation, oldest first.
    pub fn generations(&self) -> Result<Vec<Generation>, String> {
        let mut q = self
            .conn
            .prepare(
                "SELECT name, program, pid, created_unix_ms, bytes, threads, processes
                 FROM generations ORDER BY created_unix_ms, id",
            )
            .map_err(err(&self.path))?;
        let rows = q
            .query_map([], |r| {
                Ok(Generation {
                    name: r.get(0)?,
                    program: r.get(1)?,
                    pid: r.get(2)?,
                    created_unix_ms: r.get::<_, i64>(3)? as u64,
                    bytes: r.get::<_, i64>(4)? as u64,
                    threads: r.get(5)?,
                    processes: r.get(6)?,
                })
            })
            .map_err(err(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(err(&self.path))
    }

    /// `name`, or the newest generation.
    pub fn pick(&self, name: Option<&str>) -> Result<String, String> {
        let all = self.generations()?;
        match name {
            Some(n) if all.iter().any(|g| g.name == n) => Ok(n.to_string()),
            Some(n) => Err(format!("{}: no generation {n}", self.path.display())),
            None => all
                .last()
                .map(|g| g.name.clone())
                .ok_or_else(|| format!("{}: no checkpoint in this store", self.path.display())),
        }
    }

    /// Write generation `name` into `into` (an empty private directory):
    /// returns the image's path there. Each chunk is checked on the way.
    pub fn export(&self, name: &str, into: &Path) -> Result<PathBuf, String> {
        let gen_id: i64 = self
            .conn
            .query_row("SELECT id FROM generations WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err(&self.path))?
            .ok_or_else(|| format!("{}: no generation {name}", self.path.display()))?;
        let mut q = self
            .conn
            .prepare("SELECT rel_path, len, hashes FROM files WHERE gen_id = ?1 ORDER BY rel_path")
            .map_err(err(&self.path))?;
        let files: Vec<(String, i64, Vec<u8>)> = q
            .query_map([gen_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(err(&self.path))?
            .collect::<Result<_, _>>()
            .map_err(err(&self.path))?;
        let top = into.join(name);
        let tree = files.iter().any(|f| !f.0.is_empty());
        if tree {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&top)
                .map_err(|e| format!("{}: {e}", top.display()))?;
        }
        let mut get = self
            .conn
            .prepare_cached("SELECT data FROM chunks WHERE hash = ?1")
            .map_err(err(&self.path))?;
        for (rel, len, hashes) in files {
            let dst = if rel.is_empty() {
                top.clone()
            } else {
                top.join(&rel)
            };
            let mut data = Vec::with_capacity(len.max(0) as usize);
            for h in hashes.chunks(32) {
                let chunk: Vec<u8> = get
                    .query_row([h], |r| r.get(0))
                    .optional()
                    .map_err(err(&self.path))?
                    .ok_or_else(|| {
                        format!("{}: {name}: a chunk is missing", self.path.display())
                    })?;
                if blake3::hash(&chunk).as_bytes().as_slice() != h {
                    return Err(format!(
                        "{}: {name}: a chunk is damaged",
                        self.path.display()
                    ));
                }
                data.extend_from_slice(&chunk);
            }
            if data.len() as i64 != len {
                return Err(format!(
                    "{}: {name}: {rel} has the wrong length",
                    self.path.display()
                ));
            }
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&dst)
                .and_then(|mut f| std::io::Write::write_all(&mut f, &data))
                .map_err(|e| format!("{}: {e}", dst.display()))?;
        }
        Ok(top)
    }

    /// Nothing pending outside the database file (its size is then the
    /// store's size): the rollback journal is gone once a transaction
    /// commits; a store made in WAL mode by an earlier ckpt is folded.
    pub fn settle(&self) -> Result<(), String> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(err(&self.path))
    }
}

/// Remove generation `id` and the chunks no other generation uses.
fn drop_generation(tx: &rusqlite::Transaction, id: i64) -> rusqlite::Result<()> {
    let lists: Vec<Vec<u8>> = tx
        .prepare("SELECT hashes FROM files WHERE gen_id = ?1")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut drop_ref = tx.prepare_cached("UPDATE chunks SET refs = refs - 1 WHERE hash = ?1")?;
    for list in &lists {
        for h in list.chunks(32) {
            drop_ref.execute([h])?;
        }
    }
    tx.execute("DELETE FROM generations WHERE id = ?1", [id])?;
    tx.execute("DELETE FROM chunks WHERE refs <= 0", [])?;
    Ok(())
}

/// A private directory `PATH.whatPID` beside the database for this
/// command, after removing those of commands that are gone (a SIGKILL,
/// or a restart that became the program).
fn private_dir(db: &Path, what: &str) -> Result<PathBuf, String> {
    let parent = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = sibling(db, what);
    let stem = stem
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Ok(rd) = std::fs::read_dir(parent) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = n.strip_prefix(&stem).and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            // SAFETY: signal 0 only checks that the process exists.
            if unsafe { libc::kill(pid, 0) } != 0 {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = sibling(db, &format!("{what}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// `PATH.what` beside the database.
fn sibling(db: &Path, what: &str) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push(format!(".{what}"));
    PathBuf::from(s)
}

/// A private directory to export into, removed on drop.
pub struct Export {
    pub dir: PathBuf,
}

impl Export {
    pub fn new(db: &Path) -> Result<Export, String> {
        let dir = private_dir(db, "export-")?;
        // `ckpt restart` ends with exit(), past every destructor.
        if EXPORTED.set((std::process::id(), dir.clone())).is_ok() {
            // SAFETY: registering a plain extern "C" fn.
            unsafe { libc::atexit(remove_export_at_exit) };
        }
        Ok(Export { dir })
    }
}

static EXPORTED: std::sync::OnceLock<(u32, PathBuf)> = std::sync::OnceLock::new();

extern "C" fn remove_export_at_exit() {
    // Only in the command itself, not in a child of its that exits.
    if let Some((pid, dir)) = EXPORTED.get() {
        if *pid == std::process::id() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `ckpt list sqlite:PATH`.
pub fn list(db: &Path, json: bool) -> Result<(), Failure> {
    let store = Store::open(db, false).map_err(Failure::new)?;
    let all = store.generations().map_err(Failure::new)?;
    let spec = |g: &Generation| format!("{PREFIX}{}#{}", db.display(), g.name);
    if json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|g| {
                serde_json::json!({
                    "path": spec(g), "bytes": g.bytes, "whole": true,
                    "program": g.program, "pid": g.pid,
                    "created_unix_ms": g.created_unix_ms,
                    "threads": g.threads, "processes": g.processes,
                    "needs": Vec::<String>::new(),
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&rows).map_err(|e| Failure::new(e.to_string()))?;
        return crate::print_stdout(&format!("{text}\n"));
    }
    if all.is_empty() {
        return crate::print_stdout(&format!("no checkpoints in {}\n", db.display()));
    }
    let mut t = Table::new(&[
        "IMAGE",
        "PROGRAM",
        "PID",
        "TAKEN (UTC)",
        "SIZE",
        "THREADS",
        "PROCESSES",
    ]);
    for g in &all {
        t.row(vec![
            spec(g),
            g.program.clone(),
            g.pid.to_string(),
            fmt_utc_ms(g.created_unix_ms),
            fmt_size(g.bytes),
            g.threads.to_string(),
            g.processes.to_string(),
        ]);
    }
    crate::print_stdout(&t.render(0))
}
