//! Renames the killed run made after the checkpoint, undone.
//!
//! A program that rotates its log (python's RotatingFileHandler, logrotate
//! run by the job: `app.log` → `app.log.1`, then a new `app.log`), moves
//! work between spool directories (`mv in/x done/`) or renames a finished
//! part into place left its files under other names than the image
//! knows: the restart refused ("replaced by another file"), or the
//! restarted run found its input gone. Every rename a process of a
//! `ckpt run` job makes is in the job's log, in order, after the mark the
//! checkpoint left there (`ckpt::files::joblog`); the restart undoes them
//! before it looks at any file.
//!
//! Renames of files ([`replay`]): replayed from the checkpoint on, they
//! tell where each file there at the checkpoint is now. Each goes back to
//! its name (names swapped through a third too); the killed run's files
//! (made after the checkpoint: the rotated-to new log, git's `index.lock`
//! renamed into place) are removed; a file the renames replaced comes
//! back from the image when it holds it (the roll-back of written files
//! makes it again); each step is said, and what cannot be done (a file
//! older than the checkpoint at a name no rename explains, a replaced
//! file the image does not hold) is a warning.
//!
//! Renames of directories, which move every path beneath them
//! ([`in_reverse`]): renamed back newest first; what stands at the old
//! name, made after the checkpoint, is removed first; a rename over a
//! file that was there, or one whose old name holds a file older than the
//! checkpoint, is not undone, nor is any earlier rename of those names: a
//! warning names them.
//!
//! `--keep-files` leaves them all, and says so.
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
    if let Some(said) = replay(metas, &renames, checkpoint) {
        return said;
    }
    in_reverse(&renames, checkpoint)
}

/// What a path holds, replaying the renames from the checkpoint on.
#[derive(Debug, Clone, PartialEq)]
enum Holds {
    /// The file that was at this path at the checkpoint (when there was
    /// one: a file made there after it and renamed away is told by its
    /// birth time).
    FileOf(String),
    /// A file made after the checkpoint (made where a rename had taken
    /// one away).
    New,
    /// Nothing: its file was renamed away.
    Nothing,
}

/// Undo the renames of files (not of directories, which move every path
/// beneath them: `None`, for [`in_reverse`]) by replaying them from the
/// checkpoint on: where each file there at the checkpoint is now, which
/// files are the killed run's, and which the renames replaced. Files are
/// then moved back to the names they had, the killed run's removed (a
/// lock file renamed into place: git's `index.lock` → `index`, each
/// commit), and a replaced one the image holds is left to the roll-back
/// of written files (`cmd_restart::plan_rollback`), which makes it again;
/// one it does not hold is said.
fn replay(
    metas: &[&Meta],
    renames: &[joblog::Renamed],
    checkpoint: std::time::SystemTime,
) -> Option<Vec<String>> {
    let paths: std::collections::BTreeSet<&str> = renames
        .iter()
        .flat_map(|r| [r.from.as_str(), r.to.as_str()])
        .collect();
    // A path beneath another (sorted, those beneath `p` come first from
    // `p/` on).
    let under = |p: &str| {
        let dir = format!("{p}/");
        paths
            .range::<str, _>((
                std::ops::Bound::Included(dir.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some_and(|q| q.starts_with(&dir))
    };
    let is_dir =
        |p: &str| std::fs::symlink_metadata(ckpt::names::path(p)).is_ok_and(|m| m.is_dir());
    if paths.iter().any(|p| under(p) || is_dir(p)) {
        return None;
    }
    let mut holds: std::collections::HashMap<&str, Holds> = std::collections::HashMap::new();
    // (rename, the name whose checkpoint file it replaced)
    let mut replaced: Vec<(&joblog::Renamed, String, bool)> = Vec::new();
    for r in renames.iter().filter(|r| r.from != r.to) {
        let moved = match holds.get(r.from.as_str()) {
            None => Holds::FileOf(r.from.clone()),
            Some(Holds::Nothing) => Holds::New,
            Some(h) => h.clone(),
        };
        if r.replaced {
            match holds.get(r.to.as_str()) {
                None => replaced.push((r, r.to.clone(), false)),
                Some(Holds::FileOf(q)) => replaced.push((r, q.clone(), true)),
                Some(_) => {}
            }
        }
        holds.insert(r.to.as_str(), moved);
        holds.insert(r.from.as_str(), Holds::Nothing);
    }
    let image_has = |p: &str| crate::leftovers::there_at_checkpoint(metas, p);
    let kept = |p: &str| {
        metas
            .iter()
            .any(|m| m.written_files.iter().any(|w| w.path == p))
    };
    let written_then = |p: &str| metas.iter().any(|m| m.job_written.iter().any(|w| w == p));
    // Every path the job's log names now (written before the checkpoint
    // or after it).
    let written: std::collections::HashSet<String> = metas
        .iter()
        .find_map(|m| m.job_log.as_deref())
        .map(|log| joblog::read(log).into_iter().collect())
        .unwrap_or_default();
    // Replaced files the image does not hold. One the job wrote that was
    // not there at the checkpoint (its snapshot of the files the job wrote
    // did not find it) was the killed run's, as was one moved in by an
    // earlier rename from a name the job first wrote after the checkpoint
    // (a temporary file saved over the state file, then replaced by the
    // next one).
    let gone: Vec<&(&joblog::Renamed, String, bool)> = replaced
        .iter()
        .filter(|(_, q, moved_in)| {
            let made_after = *moved_in && !written_then(q) && written.contains(q.as_str());
            !kept(q) && !made_after && (image_has(q) || !written_then(q))
        })
        .collect();
    let mut lost: Vec<String> = gone
        .iter()
        .map(|(r, q, _)| {
            format!(
                "{} (replaced by {} after the checkpoint)",
                ckpt::names::shown(q),
                ckpt::names::shown(&r.from)
            )
        })
        .collect();
    lost.sort();
    lost.dedup();
    let born_after = |m: &std::fs::Metadata| m.created().is_ok_and(|b| b > checkpoint);
    let born_before = |m: &std::fs::Metadata| m.created().is_ok_and(|b| b <= checkpoint);
    let mut left: Vec<String> = Vec::new();
    let remove = |p: &Path, left: &mut Vec<String>| match std::fs::remove_file(p) {
        Ok(()) => crate::leftovers::say_removed(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => left.push(format!(
            "{} (made after the checkpoint, and left: {e})",
            p.display()
        )),
    };
    // The killed run's files first: they free the names files go back to.
    let mut moves: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut names: Vec<&&str> = holds.keys().collect();
    names.sort();
    for p in names {
        let path = ckpt::names::path(p);
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        // What replaced a file that is lost stays (an atomic save over a
        // file the job found there: what it holds is nearer than nothing).
        let replacing = gone.iter().any(|(_, q, _)| q == *p);
        match &holds[*p] {
            Holds::FileOf(q) if q == *p => {}
            _ if replacing && !born_before(&m) => {}
            Holds::FileOf(q) if !born_after(&m) => moves.push((path, ckpt::names::path(q))),
            Holds::FileOf(_) => remove(&path, &mut left),
            Holds::New | Holds::Nothing if born_before(&m) => left.push(format!(
                "{} (a file older than the checkpoint stands there)",
                path.display()
            )),
            Holds::New | Holds::Nothing => remove(&path, &mut left),
        }
    }
    // Then each file back to its name, once that name is free (a file
    // moving back from there first; swapped names through a third).
    while !moves.is_empty() {
        let free = moves
            .iter()
            .position(|(_, to)| std::fs::symlink_metadata(to).is_err());
        let Some(i) = free else {
            // A name held by a file that goes nowhere: that move is not made.
            let is_source = |p: &PathBuf| moves.iter().any(|(f, _)| f == p);
            if let Some(k) = moves.iter().position(|(_, to)| !is_source(to)) {
                let (from, to) = moves.remove(k);
                left.push(format!(
                    "{} -> {} (a file made since stands at the old name)",
                    to.display(),
                    from.display()
                ));
                continue;
            }
            // Names swapped (each held by a file going elsewhere): the
            // first file steps aside, freeing the name another goes to.
            let from = moves[0].0.clone();
            let aside = PathBuf::from(format!(
                "{}.ckpt-restart-{}",
                from.display(),
                std::process::id()
            ));
            if std::fs::rename(&from, &aside).is_err() {
                let (from, to) = moves.remove(0);
                left.push(format!(
                    "{} -> {} (the rename back failed)",
                    to.display(),
                    from.display()
                ));
                continue;
            }
            moves[0].0 = aside;
            continue;
        };
        let (from, to) = moves.remove(i);
        match std::fs::rename(&from, &to) {
            Ok(()) => eprintln!(
                "ckpt restart: {}: renamed back to {} (renamed after the checkpoint, by \
                 the run this restart replaces; --keep-files leaves it)",
                from.display(),
                to.display()
            ),
            Err(e) => left.push(format!(
                "{} -> {} (the rename back failed: {e})",
                to.display(),
                from.display()
            )),
        }
    }
    let mut said = Vec::new();
    if !left.is_empty() {
        said.push(format!(
            "{} of the renames made after the checkpoint {} not undone, and {} as the killed run left {}: {}",
            count(left.len(), "file", "files"),
            if left.len() == 1 { "is" } else { "are" },
            if left.len() == 1 { "its name stays" } else { "their names stay" },
            if left.len() == 1 { "it" } else { "them" },
            first_few(&left)
        ));
    }
    if !lost.is_empty() {
        said.push(format!(
            "{} there at the checkpoint {} replaced by a rename after it, and the image does not \
             hold {}: the restarted run finds what replaced {}: {}",
            count(lost.len(), "file", "files"),
            if lost.len() == 1 { "was" } else { "were" },
            if lost.len() == 1 { "it" } else { "them" },
            if lost.len() == 1 { "it" } else { "them" },
            first_few(&lost)
        ));
    }
    Some(said)
}

/// Undo the renames newest first (see the module): the way for renames
/// of directories.
fn in_reverse(renames: &[joblog::Renamed], checkpoint: std::time::SystemTime) -> Vec<String> {
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
                            crate::leftovers::say_removed(&to);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;
    use std::time::{Duration, SystemTime};

    fn renamed(dir: &Path, from: &str, to: &str, replaced: bool) -> joblog::Renamed {
        let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
        joblog::Renamed {
            from: p(from),
            to: p(to),
            replaced,
        }
    }

    fn read(dir: &Path, name: &str) -> Option<String> {
        std::fs::read_to_string(dir.join(name)).ok()
    }

    /// Names swapped through a third come back (the files there are older
    /// than the checkpoint); a file made after it at a name a rename took
    /// a file from is removed; one renamed into place where nothing was,
    /// made after the checkpoint, is removed, not put back at its old name.
    #[test]
    fn a_swap_comes_back_and_the_killed_runs_files_go() {
        let t = TempDir::new("renames-swap");
        let d = t.path();
        // As the killed run left them: a and b swapped through t.
        std::fs::write(d.join("a"), "right").unwrap();
        std::fs::write(d.join("b"), "left").unwrap();
        let renames = [
            renamed(d, "a", "t", false),
            renamed(d, "b", "a", false),
            renamed(d, "t", "b", false),
        ];
        let later = SystemTime::now() + Duration::from_secs(3600);
        let said = replay(&[&Meta::default()], &renames, later).unwrap();
        assert!(said.is_empty(), "{said:?}");
        assert_eq!(read(d, "a").as_deref(), Some("left"));
        assert_eq!(read(d, "b").as_deref(), Some("right"));
        assert!(!d.join("t").exists());
        assert!(std::fs::read_dir(d).unwrap().count() == 2);

        // A lock made after the checkpoint, renamed where nothing was,
        // and another made where it had been.
        std::fs::write(d.join("ref"), "new").unwrap();
        std::fs::write(d.join("ref.lock"), "newer").unwrap();
        let renames = [renamed(d, "ref.lock", "ref", false)];
        let earlier = SystemTime::now() - Duration::from_secs(3600);
        let said = replay(&[&Meta::default()], &renames, earlier).unwrap();
        assert!(said.is_empty(), "{said:?}");
        assert!(!d.join("ref").exists() && !d.join("ref.lock").exists());
    }

    /// A file that cannot go back (a file older than the checkpoint holds
    /// its name), and one the renames replaced that the image does not
    /// hold, are said; nothing loops.
    #[test]
    fn what_cannot_come_back_is_said() {
        let t = TempDir::new("renames-blocked");
        let d = t.path();
        std::fs::write(d.join("x"), "stands").unwrap();
        std::fs::write(d.join("y"), "was x").unwrap();
        std::fs::write(d.join("z"), "was w").unwrap();
        let renames = [renamed(d, "x", "y", true), renamed(d, "w", "z", false)];
        let later = SystemTime::now() + Duration::from_secs(3600);
        let said = replay(&[&Meta::default()], &renames, later).unwrap();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].contains("stands there"), "{said:?}");
        assert!(said[1].contains("replaced by a rename"), "{said:?}");
        assert_eq!(read(d, "x").as_deref(), Some("stands"));
        assert_eq!(read(d, "y").as_deref(), Some("was x"));
        assert_eq!(read(d, "w").as_deref(), Some("was w"));
    }

    /// An atomic save over a file the image does not hold (the job found
    /// it there): what replaced it stays, and the loss is said.
    #[test]
    fn what_replaced_a_lost_file_stays() {
        let t = TempDir::new("renames-save");
        let d = t.path();
        std::fs::write(d.join("config"), "version 20").unwrap();
        let renames = [renamed(d, "cfg.tmp", "config", true)];
        let earlier = SystemTime::now() - Duration::from_secs(3600);
        let said = replay(&[&Meta::default()], &renames, earlier).unwrap();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("replaced by a rename"), "{said:?}");
        assert_eq!(read(d, "config").as_deref(), Some("version 20"));
        assert!(!d.join("cfg.tmp").exists());
    }

    /// Renames of a directory and of a file beneath it are not replayed
    /// (the directory's moves every path beneath it), also when a name
    /// sorts between them (`d.lock` before `d/x`).
    #[test]
    fn renames_beneath_a_renamed_directory_are_not_replayed() {
        let t = TempDir::new("renames-dirs");
        let d = t.path();
        let renames = [
            renamed(d, "d.lock", "e", false),
            renamed(d, "d", "f", false),
            renamed(d, "d/x", "d/y", false),
        ];
        let now = SystemTime::now();
        assert!(replay(&[&Meta::default()], &renames, now).is_none());
    }
}
