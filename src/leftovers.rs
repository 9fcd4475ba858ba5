//! Files and directories the killed run made after the checkpoint.
//!
//! The job's log (`ckpt::files::joblog`) names every file a process of
//! the job opened for writing and every directory, FIFO, link or unix
//! socket file it made (`ckpt::files::record_made`); the image
//! holds the log as it was at the checkpoint (`Meta::job_written`). What
//! the log names now but did not then, the killed run touched first
//! after the checkpoint: one born after the checkpoint did not exist at
//! it, and a restarted run that found it would append to it twice (a
//! `part2.txt`), skip work it thinks done (make's `.o` files), or fail
//! (`mkdir`, `mkfifo`, `ln -s`: EEXIST; `bind`: EADDRINUSE). So is a
//! file the log named then too, that was not there at the checkpoint (the
//! image's snapshot of the job's files found none) and is now, born after
//! it: a lock file made again (git's `index.lock`, the job killed before
//! it renamed it into place: the restarted run's lock failed). Such files
//! are removed before the program runs, then such directories once empty,
//! each said in one line; the rest (older than the checkpoint, of unknown
//! age, or renamed over a file that was there) are named in a warning.
//! `--keep-files` leaves them all, and says so.

use crate::human::{count, first_few};
use ckpt::files::joblog;
use ckpt::image::Meta;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// How many of the killed run's files a restart names as it removes them;
/// the rest are counted in one line ([`say_the_rest`]): a `make -j`
/// killed mid-build leaves hundreds of objects.
pub const NAMED: usize = 20;
static REMOVED: AtomicUsize = AtomicUsize::new(0);

/// Say that `p`, made after the checkpoint by the killed run, was removed
/// (by name for the first [`NAMED`]).
pub fn say_removed(p: &std::path::Path) {
    let n = REMOVED.fetch_add(1, Relaxed);
    if n < NAMED {
        eprintln!(
            "ckpt restart: {}: removed (made after the checkpoint, by the run this restart \
             replaces; --keep-files leaves it)",
            p.display()
        );
    }
}

/// One line for the removals [`say_removed`] did not name.
pub fn say_the_rest() {
    let n = REMOVED.load(Relaxed);
    if n > NAMED {
        eprintln!(
            "ckpt restart: removed {} made after the checkpoint, by the run this restart \
             replaces (--keep-files leaves them)",
            count(n - NAMED, "more file", "more files")
        );
    }
}

/// What the killed run made after the checkpoint.
pub struct Leftover {
    path: PathBuf,
    dir: bool,
}

impl Leftover {
    /// Remove it (a directory only when empty by now), and say so.
    pub fn remove(&self) {
        let done = if self.dir {
            std::fs::remove_dir(&self.path)
        } else {
            std::fs::remove_file(&self.path)
        };
        match done {
            Ok(()) => say_removed(&self.path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "ckpt restart: warning: {}: made after the checkpoint, and left: {e}",
                self.path.display()
            ),
        }
    }
}

/// Whether the image knows a file at path `p` at the checkpoint (a
/// descriptor of it, or a file the job wrote and closed that was there).
pub fn there_at_checkpoint(metas: &[&Meta], p: &str) -> bool {
    metas
        .iter()
        .any(|x| x.fds.iter().any(|f| f.path == p) || x.closed_files.iter().any(|c| c.path == p))
}

/// `metas`: every process of the image (the root's holds the job's log).
/// What to remove (files first, then directories deepest first), and
/// warnings. Read before the restart writes the log back.
pub fn plan(metas: &[&Meta], keep: bool) -> (Vec<Leftover>, Vec<String>) {
    let Some(root) = metas.iter().find(|m| m.job_log.is_some()) else {
        return (Vec::new(), Vec::new());
    };
    let log = root.job_log.as_deref().unwrap_or_default();
    let then: std::collections::HashSet<&str> =
        root.job_written.iter().map(String::as_str).collect();
    let checkpoint = frozen_at(metas);
    // Files some process had open or wrote by the checkpoint (a process
    // of a tree frozen after the root read the log) are the image's.
    let known = |m: &std::fs::Metadata| {
        metas.iter().any(|x| {
            x.fds.iter().any(|f| f.dev == m.dev() && f.ino == m.ino())
                || x.closed_files
                    .iter()
                    .any(|c| c.dev == m.dev() && c.ino == m.ino())
        })
    };
    if !ckpt::names::path(log).exists() {
        return (
            Vec::new(),
            vec![format!(
                "the job's log of what it made ({log}) is gone (the machine restarted, or it \
                 ended over a week ago): files and directories its processes made after the \
                 checkpoint cannot be found, and are left as they are"
            )],
        );
    }
    let now = joblog::read(log);
    // Paths something was renamed over: a file was there before.
    let mark = std::str::from_utf8(joblog::REPLACED_MARK).unwrap_or_default();
    let replaced: std::collections::HashSet<&str> =
        now.iter().filter_map(|p| p.strip_suffix(mark)).collect();
    // ckpt's control sockets are named by pids: one the killed run made
    // may be another live process's by now (logs written before 2026-12
    // name them).
    let mut out = Vec::new();
    let mut older = Vec::new();
    // Paths of files there at the checkpoint (the roll-back of written
    // files answers for them), and whether the image's list of them is
    // whole.
    let held = |p: &str| there_at_checkpoint(metas, p);
    let whole = metas.iter().all(|x| x.closed_files_dropped == 0);
    for p in &now {
        if p.ends_with(mark) || joblog::is_control_socket(log.as_bytes(), p.as_bytes()) {
            continue;
        }
        if then.contains(p.as_str()) {
            // Written before the checkpoint too, but no file was there at
            // it (the image's snapshot of the job's files found none): one
            // there now, born after the checkpoint, is the killed run's (a
            // lock file made again, the job killed before it renamed it
            // into place).
            let path = ckpt::names::path(p);
            let born_after = |m: &std::fs::Metadata| m.created().is_ok_and(|b| b > checkpoint);
            if whole
                && !held(p)
                && !replaced.contains(p.as_str())
                && p.as_bytes().last() != Some(&joblog::DIR_MARK)
                && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && born_after(&m))
            {
                out.push(Leftover { path, dir: false });
            }
            continue;
        }
        let dir = p.len() > 1 && p.as_bytes().last() == Some(&joblog::DIR_MARK);
        let path = ckpt::names::path(if dir { &p[..p.len() - 1] } else { p });
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        // A directory for a directory's record; anything else (a file, a
        // FIFO, a link, a socket's file) for the others. One born after the
        // checkpoint is not the image's file, even with the number of one
        // removed since (inodes are reused).
        let born_after = m.created().is_ok_and(|b| b > checkpoint);
        if dir != m.is_dir() || (known(&m) && !born_after) {
            continue;
        }
        match m.created() {
            Ok(born) if born > checkpoint && !replaced.contains(p.as_str()) => {
                out.push(Leftover { path, dir })
            }
            _ => older.push(path),
        }
    }
    // Files before directories, deeper directories before theirs.
    out.sort_by_key(|l| (l.dir, std::cmp::Reverse(l.path.components().count())));
    let mut warnings = Vec::new();
    if keep && !out.is_empty() {
        warnings.push(format!(
            "{} made after the checkpoint {} kept as {} (--keep-files): {}",
            count(out.len(), "file or directory", "files or directories"),
            if out.len() == 1 { "is" } else { "are" },
            if out.len() == 1 { "it is" } else { "they are" },
            list(out.iter().map(|l| &l.path))
        ));
        out.clear();
    }
    if !older.is_empty() {
        warnings.push(format!(
            "{} the job had not written by the checkpoint {} written after it (by the run this restart replaces), \
             and ckpt has not {} contents as they were: left as {}: {}",
            count(older.len(), "file", "files"),
            if older.len() == 1 { "was" } else { "were" },
            if older.len() == 1 { "its" } else { "their" },
            if older.len() == 1 {
                "it is"
            } else {
                "they are"
            },
            list(older.iter())
        ));
    }
    (out, warnings)
}

/// When the job was frozen for the checkpoint (its last process): what
/// was born after it, the killed run made.
pub fn frozen_at(metas: &[&Meta]) -> std::time::SystemTime {
    metas
        .iter()
        .map(|m| m.frozen_at())
        .max()
        .unwrap_or(std::time::UNIX_EPOCH)
}

/// The first few paths, and how many more.
fn list<'a>(paths: impl Iterator<Item = &'a PathBuf>) -> String {
    first_few(&paths.map(|p| p.display().to_string()).collect::<Vec<_>>())
}
