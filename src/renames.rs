//! Renames the killed run made after the checkpoint, undone.
//!
//! A program that rotates its log (python's RotatingFileHandler, logrotate
//! run by the job: `app.log` → `app.log.1`, then a new `app.log`), moves
//! work between spool directories (`mv in/x done/`) or renames a finished
//! part into place left its files under other names than the image
//! knows: the restart refused ("replaced by another file"), or the
//! restarted run found its input gone. Every rename a process of a
//! `ckpt run` job makes is in the job's log, in order, after the mark the
//! checkpoint left there (`ckpt::files::joblog`); the restart renames each
//! back, newest first, before it looks at any file:
//! - what stands at the old name now and was made after the checkpoint
//!   by the run this restart replaces (the rotated-to new log) is removed
//!   first, and said;
//! - a rename over a file that was there, or one whose old name holds a
//!   file older than the checkpoint, is not undone (its earlier contents
//!   are not in the image), nor is any earlier rename of those names: a
//!   warning names them;
//! - `--keep-files` leaves them all, and says so.
//!
//! Files there at the checkpoint that the killed run removed after it
//! (logged too, with their birth time) cannot come back when the image
//! does not hold them: [`removed`] names them.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::human::{count, first_few};
use ckpt::files::joblog;
use ckpt::image::Meta;

/// Undo the renames made after the checkpoint (see the module). `metas`:
/// every process of the image (the root's holds the job's log). Each
/// step is said on stderr; returns warnings.
pub fn undo(metas: &[&Meta], keep: bool) -> Vec<String> {
    let Some(renames) = after_mark(metas, joblog::renames_after) else {
        return Vec::new();
    };
    if renames.is_empty() {
        return Vec::new();
    }
    if keep {
        return vec![format!(
            "{} made after the checkpoint {} left as {} (--keep-files): the restarted run \
             may not find its files under the names it had them",
            count(renames.len(), "rename", "renames"),
            if renames.len() == 1 { "is" } else { "are" },
            if renames.len() == 1 {
                "it is"
            } else {
                "they are"
            },
        )];
    }
    let checkpoint = crate::leftovers::frozen_at(metas);
    let mut tainted: Vec<PathBuf> = Vec::new();
    let mut left: Vec<String> = Vec::new();
    for r in renames.iter().rev() {
        let (from, to) = (ckpt::names::path(&r.to), ckpt::names::path(&r.from));
        let touches = |p: &Path| tainted.iter().any(|t| p.starts_with(t) || t.starts_with(p));
        let why = if touches(&from) || touches(&to) {
            Some("a later rename of those names was not undone")
        } else if r.replaced {
            Some("it replaced a file that was there, whose contents the image does not hold")
        } else if std::fs::symlink_metadata(&from).is_err() {
            Some("the new name is gone")
        } else {
            match std::fs::symlink_metadata(&to) {
                Err(_) => None,
                // Born after the checkpoint: not the image's file, even
                // with the number of one since removed (inodes are reused).
                Ok(m) if !m.is_dir() && m.created().is_ok_and(|b| b > checkpoint) => {
                    // Made at the old name after the rename (a rotated-to
                    // new log): the restarted run makes it again.
                    match std::fs::remove_file(&to) {
                        Ok(()) => {
                            eprintln!(
                                "ckpt restart: {}: removed (made after the checkpoint, by the run \
                                 this restart replaces; --keep-files leaves it)",
                                to.display()
                            );
                            None
                        }
                        Err(_) => Some("a file made since stands at the old name"),
                    }
                }
                Ok(_) => Some("a file older than the checkpoint stands at the old name"),
            }
        };
        let done = why.is_none()
            && match std::fs::rename(&from, &to) {
                Ok(()) => {
                    eprintln!(
                        "ckpt restart: {}: renamed back to {} (renamed after the checkpoint, by \
                         the run this restart replaces; --keep-files leaves it)",
                        from.display(),
                        to.display()
                    );
                    true
                }
                Err(_) => false,
            };
        if !done {
            left.push(format!(
                "{} -> {} ({})",
                to.display(),
                from.display(),
                why.unwrap_or("the rename back failed")
            ));
            tainted.push(from);
            tainted.push(to);
        }
    }
    if left.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "{} made after the checkpoint {} not undone, and {} as the killed run left {}: {}",
        count(left.len(), "rename", "renames"),
        if left.len() == 1 { "is" } else { "are" },
        if left.len() == 1 {
            "its names stay"
        } else {
            "their names stay"
        },
        if left.len() == 1 { "it" } else { "them" },
        first_few(&left)
    )]
}

/// Regular files there at the checkpoint that the killed run removed
/// after it (the job's log has each removal, with the file's birth time):
/// one warning naming them, unless the image holds or knows them (the
/// rollback makes those again, or says why not). `metas`: as for
/// [`undo`]; after it.
pub fn removed(metas: &[&Meta]) -> Vec<String> {
    let Some(gone) = after_mark(metas, joblog::removed_after) else {
        return Vec::new();
    };
    let checkpoint_ns = crate::leftovers::frozen_at(metas)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let known = |p: &str| {
        metas.iter().any(|m| {
            m.fds.iter().any(|f| f.path == p) || m.closed_files.iter().any(|c| c.path == p)
        })
    };
    let mut lost: Vec<&str> = Vec::new();
    for (p, born) in &gone {
        if (*born != 0 && *born > checkpoint_ns)
            || lost.contains(&p.as_str())
            || known(p)
            || std::fs::symlink_metadata(ckpt::names::path(p)).is_ok()
        {
            continue;
        }
        lost.push(p);
    }
    if lost.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "{} there at the checkpoint {} removed by the killed run after it, and the image does \
         not hold {}: the restarted run will not find {}: {}",
        count(lost.len(), "file", "files"),
        if lost.len() == 1 { "was" } else { "were" },
        if lost.len() == 1 { "it" } else { "them" },
        if lost.len() == 1 { "it" } else { "them" },
        first_few(
            &lost
                .iter()
                .map(|p| ckpt::names::shown(p).into_owned())
                .collect::<Vec<_>>()
        )
    )]
}

/// What `read` finds in the job's log (the image's root holds its path
/// and the checkpoint's mark) after the checkpoint's mark.
fn after_mark<T>(metas: &[&Meta], read: fn(&[u8], &str) -> Option<Vec<T>>) -> Option<Vec<T>> {
    let root = metas.iter().find(|m| m.job_log.is_some())?;
    let log = root.job_log.as_deref()?;
    let bytes = std::fs::read(ckpt::names::path(log)).ok()?;
    read(&bytes, root.job_mark.as_deref()?)
}
