//! `ckpt restart IMAGE`: check everything that can be checked while
//! nothing is destroyed yet, then become the restorer (same pid), which
//! swaps the image's memory in and jumps into the program's own
//! post-restart code.
//!
//! Checked before anything happens: the image (header, metadata and every
//! extent's checksum), the address range the restorer needs, the kernel's
//! vdso layout, and every file the image needs (mapped files and open
//! descriptors: present, and the same file — device and inode — as at the
//! checkpoint). A failed check is one line and exit status 1; the program
//! is not started and no file is touched.

use crate::cli::RestartArgs;
use crate::{shim_path, Failure};
use ckpt::files::{stdio_rule, Passthrough};
use ckpt::image::{self, FdKind, Meta, RegionKind};
use ckpt_restorer::plan::{
    self, MmFields, PlanExtent, PlanFinal, PlanHeader, PlanRegion, PlanSpecial,
};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

/// When this restart began: a file born since was made by it (for
/// another process of the same tree, say).
static STARTED: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();

pub fn restart(mut args: RestartArgs) -> Result<(), Failure> {
    STARTED.get_or_init(std::time::SystemTime::now);
    // Which of this command's own descriptors 0-2 a file the program
    // wrote there goes on through (see `ckpt::files::shared_stream`).
    ckpt::files::note_shared_streams();
    // From a store: its generation exported into a private directory
    // (removed when this command ends; by the next store command when it
    // became the program).
    let _export;
    if let Some((db, name)) = crate::store::parse(args.image.as_os_str()) {
        let store = crate::store::Store::open(&db, false).map_err(Failure::new)?;
        let export = crate::store::Export::new(&db).map_err(Failure::new)?;
        args.image = from_store(&store, name.as_deref(), args.latest, &export.dir)?;
        args.latest = false;
        _export = export;
    }
    crate::progress::set_wanted(crate::progress::wanted(args.quiet));
    if let Some(tree) = crate::tree_restart::tree_image(&args.image, args.latest)? {
        return crate::tree_restart::restart(&tree, &args);
    }
    // No writer of the program prunes the directory (renames, removes
    // images) while the image and the earlier ones it needs are opened.
    let images_dir = if args.image.is_dir() {
        args.image.clone()
    } else {
        args.image
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf()
    };
    let lock = image::DirLock::take(&images_dir, false, 60_000);
    if let Err(e) = &lock {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            eprintln!(
                "ckpt: warning: {}: a writer has been pruning these images for a minute; \
                 going on without waiting for it",
                images_dir.display()
            );
        }
    }
    // A lazy restart checks most of the memory as it copies it in (see
    // `pager::checked_late`); `late`: those extents were not checked here.
    let lazy_hint = !args.eager && !args.no_namespace && crate::pager::lazy_possible();
    let (path, header, meta, file, deps, late) = if args.latest {
        let (p, h, m, f, d) = latest_whole(&args.image)?;
        (p, h, m, f, Some(d), false)
    } else {
        let path = newest_image(&args.image)?;
        let (header, meta) = image::read_file(&path).map_err(Failure::new)?;
        let late = lazy_hint && crate::pager::worth_it(&meta);
        let file = open_verified(&path, &header, &meta, late)?;
        (path, header, meta, file, None, late)
    };
    let path = &path;
    if meta.precopy {
        return Err(Failure::new(format!(
            "{}: the first half of a checkpoint (its memory was read while the program ran);              it cannot be restarted alone: restart the image taken right after it",
            path.display()
        )));
    }
    check_identity(path, &meta)?;
    // Before any file is looked at for rollback: the old job is gone.
    crate::stale_job::check(meta.job.as_deref(), args.kill_old)?;
    // After the image's own identity check: its earlier images are the
    // same user's, and a refusal should name the image first.
    let (deps, late_deps, deps_late) = match deps {
        Some(d) => (d, Vec::new(), Vec::new()),
        None => open_deps(path, &meta, late)?,
    };
    drop(lock);
    check_reserved_range(&meta)?;
    let specials = check_vdso(&meta)?;
    // Files renamed after the checkpoint have their names back before any
    // is looked at.
    for w in crate::renames::undo(&[&meta], args.keep_files)
        .into_iter()
        .chain(crate::renames::removed(&[&meta]))
    {
        eprintln!("ckpt: warning: {w}");
    }
    let (cuts, warnings) = plan_rollback(&meta, args.keep_files)?;
    let rolled_back = cuts.iter().map(Cut::key).collect();
    for w in check_descriptors(
        &meta,
        args.strict,
        args.keep_files,
        &rolled_back,
        &ckpt::tree::Handoff::default(),
    )? {
        eprintln!("ckpt: warning: {w}");
    }
    let (leftovers, more) = crate::leftovers::plan(&[&meta], args.keep_files);
    let streams = shared_streams_said(&[&meta]);
    for w in warnings.into_iter().chain(more).chain(streams) {
        eprintln!("ckpt: warning: {w}");
    }
    if meta.job.is_none() {
        warn_if_still_running(&meta);
    }
    let mapped = open_mapped_files(&meta)?;
    let restorer = shim_path::find_restorer().map_err(Failure::new)?;
    let image_fd = OwnedFd::from(file);
    let dep_fds: Vec<i32> = deps.into_iter().map(|f| f.into_raw_fd()).collect();
    let sources: Vec<i32> = std::iter::once(image_fd.as_raw_fd())
        .chain(dep_fds.iter().copied())
        .collect();
    // The restart command's own pid: `ckpt checkpoint` of it reaches the
    // program (see `ckpt::restart::control_name`).
    let alias = std::process::id() as i32;
    // In a namespace this command stays as the program's parent and
    // fills its anonymous memory (see `crate::pager`), lazily unless
    // asked not to.
    let pager = if args.no_namespace || !crate::pager::worth_it(&meta) {
        None
    } else {
        // The files are cut back by the pager once the restorer's own
        // copies are done (eager: once memory is in).
        crate::pager::Pager::start(&meta, &sources, &late_deps, !args.eager, late, &|| {
            cuts.iter()
                .try_for_each(|c| c.apply())
                .map_err(|f| f.message)
        })?
    };
    // Not lazy after all: what the pager would have checked, now.
    let image_raw = image_fd.as_raw_fd();
    let check_now = |late: bool| -> Result<(), Failure> {
        if !late {
            return Ok(());
        }
        // SAFETY: dup of the image descriptor, which stays open throughout.
        let fd = unsafe { libc::fcntl(image_raw, libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            return Err(Failure::new(format!(
                "cannot read the image again: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: `fd` is ours alone, closed when `f` drops.
        let f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        verify_extents(&f, &header, &meta, &|_, _| false)
            .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
        // And the extents of earlier images the pager would have checked.
        deps_late.iter().try_for_each(|d| d.check_all())
    };
    check_now(late && pager.is_none())?;
    let pager_fds = pager.as_ref().map(|p| p.plan_fds());
    // A lazy restart's program is told its pager socket.
    let lazy_fd = pager_fds
        .filter(|p| p.lazy)
        .map(|p| ckpt::tree::EntryFd::Lazy(p.sock));
    let entry_arg = ckpt::tree::pack_entry_arg(alias, lazy_fd);
    let plan_fd = write_plan(&meta, &sources, &mapped, &specials, entry_arg, pager_fds)?;
    // Every check passed: now files may be touched (with a pager, by it).
    restore_job_log(&meta);
    leftovers
        .iter()
        .for_each(crate::leftovers::Leftover::remove);
    crate::leftovers::say_the_rest();
    if pager.is_none() {
        for c in &cuts {
            c.apply()?;
        }
    }
    // Keep every descriptor the restorer needs open across exec.
    let image_fd = image_fd.into_raw_fd();
    for fd in mapped
        .values()
        .copied()
        .chain([image_fd, plan_fd])
        .chain(dep_fds)
    {
        clear_cloexec(fd);
    }
    let prog =
        CString::new(restorer.as_os_str().as_bytes()).map_err(|e| Failure::new(e.to_string()))?;
    let mut arg = CString::new(plan_fd.to_string()).unwrap_or_default();
    if !args.no_namespace {
        // Returns only when the namespace could not be made.
        let memory = meta.memory_bytes();
        let mut pager = pager;
        let why = crate::restart_ns::run(
            &[&prog, &arg],
            meta.process.pid,
            meta.process.session_leader,
            meta.clocks,
            crate::restart_ns::Ipc {
                sysv: &meta.process.sysv_ipc,
                mqueues: crate::restart_ns::Ipc::has_mqueues(&meta),
            },
            &mut |child| match pager.take() {
                Some(p) => p.wait(child),
                None => crate::progress::watch_restore(child, memory),
            },
        );
        eprintln!(
            "ckpt: warning: restarting without a pid namespace ({why}): the program gets a new pid and new thread ids"
        );
        if let Some(p) = pager {
            // This command becomes the restorer: no pager, a plan
            // without one (the old one closed).
            p.abandon();
            check_now(late)?;
            for c in &cuts {
                c.apply()?;
            }
            // SAFETY: closing the plan memfd we made.
            unsafe { libc::close(plan_fd) };
            let entry_arg = ckpt::tree::pack_entry_arg(alias, None);
            let plan_fd = write_plan(&meta, &sources, &mapped, &specials, entry_arg, None)?;
            clear_cloexec(plan_fd);
            arg = CString::new(plan_fd.to_string()).unwrap_or_default();
        }
    }
    // Here without a namespace (asked, or refused by the kernel).
    for o in &meta.process.sysv_ipc {
        eprintln!(
            "ckpt: warning: System V {} {} is not made again without a namespace: the program finds it as the kernel holds it now",
            o.kind(),
            o.id
        );
    }
    crate::restart_ns::lead_session(meta.process.session_leader);
    let argv = [prog.as_ptr(), arg.as_ptr(), std::ptr::null()];
    // SAFETY: execv with NUL-terminated strings and a null-terminated argv.
    unsafe { libc::execv(prog.as_ptr(), argv.as_ptr()) };
    Err(Failure::new(format!(
        "cannot run {}: {}",
        restorer.display(),
        std::io::Error::last_os_error()
    )))
}

/// An image holds a whole program, code included: whoever can write one
/// that is restarted gets the restarter's identity. So the image file must
/// belong to the user the program ran as and be writable by nobody else;
/// the program comes back as exactly that user, which only root can do for
/// another user than itself.
pub(crate) fn check_identity(path: &std::path::Path, meta: &Meta) -> Result<(), Failure> {
    let st =
        std::fs::metadata(path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    if st.mode() & 0o022 != 0 {
        return Err(Failure::new(format!(
            "{} can be written by other users than its owner (mode {:o}): refusing to restart it (chmod go-w to allow)",
            path.display(),
            st.mode() & 0o7777
        )));
    }
    // SAFETY: getters without preconditions.
    let (me, my_gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let Some(c) = &meta.process.creds else {
        // An image of an older ckpt: the program comes back as the
        // restarter, so only the image's owner may restart it.
        if st.uid() != me {
            return Err(Failure::new(format!(
                "{} records no credentials (an older ckpt wrote it) and belongs to uid {}: only its owner can restart it",
                path.display(),
                st.uid()
            )));
        }
        return Ok(());
    };
    let [ruid, euid, _, fsuid] = c.uids;
    if st.uid() != fsuid && st.uid() != euid {
        return Err(Failure::new(format!(
            "{} belongs to uid {}, but the program it holds ran as uid {euid}: refusing to restart it",
            path.display(),
            st.uid()
        )));
    }
    if me != 0 && (c.uids.iter().any(|&u| u != me) || c.gids.iter().any(|&g| g != my_gid)) {
        return Err(Failure::new(format!(
            "the program ran as uid {ruid} gid {} (effective {euid}/{}); only root can restart a program as another user or group",
            c.gids[0], c.gids[1]
        )));
    }
    if me != 0 {
        let mine = own_groups();
        if mine.iter().any(|g| !c.groups.contains(g)) {
            eprintln!(
                "ckpt: warning: the program had the supplementary groups {:?}; an unprivileged restart cannot set them, so it has this command's ({mine:?})",
                c.groups
            );
        }
    }
    Ok(())
}

/// This process's supplementary groups.
fn own_groups() -> Vec<u32> {
    let mut g = vec![0 as libc::gid_t; 256];
    // SAFETY: getgroups into a buffer of the size given.
    let n = unsafe { libc::getgroups(g.len() as i32, g.as_mut_ptr()) };
    g.truncate(n.max(0) as usize);
    g
}

/// Restarting an image of a program that still runs is allowed (a copy),
/// but rarely meant: both would write the same files.
pub(crate) fn warn_if_still_running(meta: &Meta) {
    let pid = meta.process.pid;
    let comm = ckpt::names::read_proc(format!("/proc/{pid}/comm")).unwrap_or_default();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    if comm.trim_end() == meta.process.comm && exe == ckpt::names::path(&meta.process.exe) {
        eprintln!(
            "ckpt: warning: process {pid} ({}), which the image was taken from, is still running; both will run",
            meta.process.comm
        );
    }
}

/// IMAGE itself, or for a directory (a run's `--dir`), its newest image.
/// Read an image and check all of it (checksums of every byte).
pub(crate) fn open_checked(
    path: &std::path::Path,
) -> Result<(image::Header, Meta, std::fs::File), Failure> {
    let (header, meta) = image::read_file(path).map_err(Failure::new)?;
    let file = open_verified(path, &header, &meta, false)?;
    Ok((header, meta, file))
}

/// Open the image at `path` (read as `header` and `meta`) and check it;
/// `late`: but for the extents a lazy restart's pager checks itself
/// ([`crate::pager::checked_late`]).
fn open_verified(
    path: &std::path::Path,
    header: &image::Header,
    meta: &Meta,
    late: bool,
) -> Result<std::fs::File, Failure> {
    let file =
        std::fs::File::open(path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    // Per region: whether the pager fills it lazily (its extents summed once).
    let lazy_regions: Vec<bool> = meta
        .regions
        .iter()
        .map(|r| late && crate::pager::paged_region(r, true))
        .collect();
    let later = |i: usize, e: &image::Extent| crate::pager::checked_late(lazy_regions[i], e);
    verify_extents(&file, header, meta, &later)
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    Ok(file)
}

/// An earlier image whose extents a lazy restart's pager is to check
/// ([`crate::pager::late_in_dep`]): `check_all` checks them here instead
/// when the restart turns out eager.
pub(crate) struct DepLate {
    path: std::path::PathBuf,
    header: image::Header,
    meta: Meta,
    file: std::fs::File,
}

impl DepLate {
    fn check_all(&self) -> Result<(), Failure> {
        verify_extents(&self.file, &self.header, &self.meta, &|_, _| false)
            .map_err(|e| Failure::new(format!("{}: {e}", self.path.display())))
    }
}

/// The earlier images an incremental image takes unchanged pages from
/// (beside it, by name), each checked like the image itself: the same
/// file it was written against (its metadata checksum), whole, owned as
/// the image is, and holding every byte referred to. Opened in the order
/// of `meta.deps`. With `late` (a lazy restart), the extents the pager
/// checks itself are not checked here: for each source (the image is
/// source 0) those extents, and the images they are in.
#[allow(clippy::type_complexity)]
pub(crate) fn open_deps(
    path: &std::path::Path,
    meta: &Meta,
    late: bool,
) -> Result<
    (
        Vec<std::fs::File>,
        Vec<Vec<crate::pager::LateExtent>>,
        Vec<DepLate>,
    ),
    Failure,
> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut files = Vec::new();
    let mut late_deps = vec![Vec::new()];
    let mut deferred = Vec::new();
    for (i, d) in meta.deps.iter().enumerate() {
        let fail = |why: String| {
            Failure::new(format!(
                "{}: an incremental image, it takes unchanged memory from {}, which {why}",
                path.display(),
                d.name
            ))
        };
        if d.name.is_empty() || d.name.contains('/') || d.name == "." || d.name == ".." {
            return Err(fail("is not a file name beside it".into()));
        }
        let dep = dir.join(&d.name);
        if !dep.exists() {
            return Err(fail(
                "is missing (removed by hand? ckpt keeps the images a kept one needs)".into(),
            ));
        }
        let (header, dep_meta) = image::read_file(&dep).map_err(Failure::new)?;
        let src = i as u32 + 1;
        let later = if late {
            crate::pager::late_in_dep(meta, src, &dep_meta)
        } else {
            Vec::new()
        };
        let file = std::fs::File::open(&dep)
            .map_err(|e| Failure::new(format!("{}: {e}", dep.display())))?;
        if header.meta_hash != d.meta_hash {
            return Err(fail(
                "is another image now (written over since): refusing to mix them".into(),
            ));
        }
        check_identity(&dep, &dep_meta)?;
        let skip = |_: usize, e: &image::Extent| {
            later
                .binary_search_by_key(&e.file_offset, |x| x.off)
                .is_ok()
        };
        verify_extents(&file, &header, &dep_meta, &skip)
            .map_err(|e| Failure::new(format!("{}: {e}", dep.display())))?;
        let data_end = header.data_offset + header.data_len;
        let outside = meta
            .regions
            .iter()
            .flat_map(|r| &r.extents)
            .filter(|e| e.src == src)
            .find(|e| e.file_offset + e.footprint() > data_end);
        if let Some(e) = outside {
            return Err(fail(format!(
                "does not hold the memory at {:#x} it is said to",
                e.addr
            )));
        }
        if !later.is_empty() {
            let again = file
                .try_clone()
                .map_err(|e| Failure::new(format!("{}: {e}", dep.display())))?;
            deferred.push(DepLate {
                path: dep.clone(),
                header,
                meta: dep_meta,
                file: again,
            });
        }
        late_deps.push(later);
        files.push(file);
    }
    Ok((files, late_deps, deferred))
}

/// `--latest DIR`: the newest image of DIR that is whole (and whose
/// earlier images are); damaged newer ones are passed over with a warning.
#[allow(clippy::type_complexity)]
fn latest_whole(
    dir: &std::path::Path,
) -> Result<
    (
        std::path::PathBuf,
        image::Header,
        Meta,
        std::fs::File,
        Vec<std::fs::File>,
    ),
    Failure,
> {
    if !dir.is_dir() {
        return Err(Failure::new(format!(
            "{}: --latest takes a directory of images",
            dir.display()
        )));
    }
    let all = crate::cmd_list::entries(dir)?;
    for e in all.iter().rev() {
        match open_checked(&e.path)
            .and_then(|(h, m, f)| open_deps(&e.path, &m, false).map(|d| (h, m, f, d.0)))
        {
            Ok((h, m, f, d)) => return Ok((e.path.clone(), h, m, f, d)),
            Err(f) => eprintln!("ckpt: warning: passing over {}", f.message),
        }
    }
    Err(Failure::new(format!(
        "{}: no whole checkpoint image (ckpt-*.img) in this directory",
        dir.display()
    )))
}

fn newest_image(p: &std::path::Path) -> Result<std::path::PathBuf, Failure> {
    if !p.is_dir() {
        let now = crate::cmd_inspect::current_version(p);
        if std::fs::symlink_metadata(&now).is_err() {
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
            return Err(Failure::new(format!(
                "{}: no such file (no image there: images beyond --keep are removed; `ckpt list {}` shows those there)",
                p.display(),
                dir.map_or(".".into(), |d| d.display().to_string())
            )));
        }
        return Ok(now);
    }
    let entries =
        std::fs::read_dir(p).map_err(|e| Failure::new(format!("{}: {e}", p.display())))?;
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("ckpt-") && n.ends_with(".img")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, path)| path)
        .ok_or_else(|| {
            Failure::new(format!(
                "{}: no checkpoint image (ckpt-*.img) in this directory",
                p.display()
            ))
        })
}

/// Every stored extent must lie inside its region and the data section
/// and match its checksum. Hashed from a read-only mapping of the image,
/// on every core: this is most of a large restart's time.
fn verify_extents(
    file: &std::fs::File,
    header: &image::Header,
    meta: &Meta,
    later: &dyn Fn(usize, &image::Extent) -> bool,
) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    ckpt::verify::structure(header, meta, file_len).map_err(|e| e.to_string())?;
    let mut head = vec![0u8; image::DATA_OFFSET as usize];
    file.read_exact_at(&mut head, 0)
        .map_err(|e| format!("cannot read the image: {e}"))?;
    ckpt::verify::padding(&head).map_err(|e| e.to_string())?;
    let end = header.data_offset + header.data_len;
    // References into earlier images are checked with those (`open_deps`).
    let all: Vec<&image::Extent> = meta
        .regions
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.extents.iter().map(move |e| (i, e)))
        .filter(|&(i, e)| e.src == 0 && !later(i, e))
        .map(|(_, e)| e)
        .collect();
    if all.is_empty() {
        return Ok(());
    }
    // SAFETY: read-only private mapping of the whole data section of a
    // file whose length was checked against the header.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            end as usize,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(format!(
            "cannot map the image: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the mapping is `end` bytes long and lives until the munmap below.
    let data = unsafe { std::slice::from_raw_parts(base as *const u8, end as usize) };
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let total: u64 = all.iter().map(|e| e.footprint()).sum();
    let share = total.div_ceil(workers as u64);
    let mut groups: Vec<Vec<&image::Extent>> = vec![Vec::new()];
    let mut in_group = 0;
    for e in all {
        if in_group >= share {
            groups.push(Vec::new());
            in_group = 0;
        }
        in_group += e.footprint();
        groups.last_mut().expect("one group at least").push(e);
    }
    let checked = std::sync::atomic::AtomicU64::new(0);
    let mut bar = crate::progress::Bar::new(crate::progress::is_wanted(), "checking", total);
    let bad = std::thread::scope(|s| {
        let checked = &checked;
        let handles: Vec<_> = groups
            .iter()
            .map(|g| {
                s.spawn(move || {
                    g.iter()
                        .find(|e| {
                            let ok = ckpt::verify::stored_bytes_ok(e, data);
                            checked.fetch_add(e.footprint(), std::sync::atomic::Ordering::Relaxed);
                            !ok
                        })
                        .map(|e| e.addr)
                })
            })
            .collect();
        while crate::progress::is_wanted() && !handles.iter().all(|h| h.is_finished()) {
            bar.set(checked.load(std::sync::atomic::Ordering::Relaxed));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        handles.into_iter().find_map(|h| h.join().ok().flatten())
    });
    bar.finish();
    // SAFETY: unmapping the mapping made above; `data` is no longer used.
    unsafe { libc::munmap(base, end as usize) };
    match bad {
        Some(addr) => Err(format!(
            "corrupt image: checksum mismatch in the memory at {addr:#x}"
        )),
        None => Ok(()),
    }
}

pub(crate) fn check_reserved_range(meta: &Meta) -> Result<(), Failure> {
    let (lo, hi) = (plan::RESTORER_BASE, plan::RESTORER_BASE + plan::RESERVE_LEN);
    if let Some(r) = meta.regions.iter().find(|r| r.start < hi && r.end > lo) {
        return Err(Failure::new(format!(
            "the image has memory at {:#x}-{:#x} ({}), inside the range {lo:#x}-{hi:#x} the restorer needs; it cannot be restarted",
            r.start,
            r.end,
            if r.path.is_empty() { "anonymous" } else { &r.path }
        )));
    }
    Ok(())
}

/// The image's vdso/vvar must have the layout this kernel gives.
pub(crate) fn check_vdso(meta: &Meta) -> Result<Vec<PlanSpecial>, Failure> {
    let own = ckpt::names::read_proc("/proc/self/maps").unwrap_or_default();
    let here: Vec<(String, u64)> = ckpt::memory::parse_maps(&own)
        .into_iter()
        .filter(|r| r.kind == RegionKind::Special)
        .map(|r| (r.path, r.end - r.start))
        .collect();
    let img: Vec<&image::Region> = meta
        .regions
        .iter()
        .filter(|r| r.kind == RegionKind::Special)
        .collect();
    let mut want: Vec<(String, u64)> = img
        .iter()
        .map(|r| (r.path.clone(), r.end - r.start))
        .collect();
    let mut have = here.clone();
    want.sort();
    have.sort();
    if want != have {
        let show = |v: &[(String, u64)]| {
            v.iter()
                .map(|(n, l)| format!("{n} {} KiB", l / 1024))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Failure::new(format!(
            "this kernel's vdso layout differs from the image's (image: {}; here: {}); restart on the kernel that took it",
            show(&want),
            show(&have)
        )));
    }
    Ok(img
        .iter()
        .map(|r| PlanSpecial::new(&ckpt::names::to_bytes(&r.path), r.start, r.end - r.start))
        .collect())
}

/// Descriptors whose files must be the ones of the checkpoint. Returns
/// warnings for read-only files that changed since.
/// `rolled_back`: the files (device, inode) the restart puts back as they
/// were (`plan_rollback` of any process of the job): one the program only
/// reads that changed since is then as it was, and not said. `made`: the
/// descriptors a tree's restart made already for several processes (a
/// socket they share listens already: not checked again).
pub(crate) fn check_descriptors(
    meta: &Meta,
    strict: bool,
    keep_files: bool,
    rolled_back: &std::collections::HashSet<(u64, u64)>,
    made: &ckpt::tree::Handoff,
) -> Result<Vec<String>, Failure> {
    let mut warnings = Vec::new();
    for f in &meta.fds {
        if let Some(s) = f
            .socket
            .as_ref()
            .filter(|_| stdio_rule(f) == Passthrough::Rebuilt && made.fd_for(f.fd).is_none())
        {
            ckpt::files::check_address(s).map_err(|e| {
                Failure::new(format!(
                    "socket {} cannot listen where it listened: {e}",
                    f.fd
                ))
            })?;
        }
        // A deleted file comes back from its saved contents; a file of
        // the process's own /proc (named through /proc/self) is the
        // restarted process's.
        if stdio_rule(f) != Passthrough::Rebuilt
            || !matches!(f.kind, FdKind::File | FdKind::Directory)
            || f.deleted
            || f.path.starts_with("/proc/self/")
        {
            continue;
        }
        let kept = || {
            meta.written_files
                .iter()
                .any(|w| w.dev == f.dev && w.ino == f.ino)
        };
        let st = match std::fs::metadata(ckpt::names::path(&f.path)) {
            Ok(st) => st,
            // Its contents are in the image: made again (`plan_rollback`).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && kept() => continue,
            Err(_) => {
                return Err(Failure::new(format!(
                    "descriptor {} needs {}, which is gone",
                    f.fd,
                    ckpt::names::shown(&f.path)
                )))
            }
        };
        // Born after the checkpoint: another file, even with the number of
        // one removed since (inodes are reused).
        let born_after = st.created().is_ok_and(|b| b > meta.frozen_at());
        if st.dev() != f.dev || st.ino() != f.ino || born_after {
            // Its contents are in the image: they go into the file there
            // now (`plan_rollback`), which the descriptor opens (a
            // journal sqlite deleted and made anew since).
            if kept() && !keep_files {
                continue;
            }
            return Err(Failure::new(format!(
                "descriptor {} needs {}, which was replaced by another file since the checkpoint",
                f.fd, f.path
            )));
        }
        let changed = st.size() as i64 != f.size
            || st.mtime() * 1_000_000_000 + st.mtime_nsec() != f.mtime_ns;
        let read_only = f.flags & libc::O_ACCMODE == libc::O_RDONLY;
        if changed && read_only && f.kind == FdKind::File && !rolled_back.contains(&(f.dev, f.ino))
        {
            let msg = format!(
                "{} (descriptor {}) changed since the checkpoint",
                f.path, f.fd
            );
            if strict {
                return Err(Failure::new(format!("{msg} (--strict)")));
            }
            warnings.push(msg);
        }
    }
    Ok(warnings)
}

/// A file the program wrote to that must go back to its size at the
/// checkpoint, or (`contents`) to its contents then.
pub(crate) struct Cut {
    path: String,
    dev: u64,
    ino: u64,
    from: u64,
    to: u64,
    contents: Option<Vec<u8>>,
    /// Gone since the checkpoint: made again with `contents` and this mode.
    make: Option<u32>,
}

impl Cut {
    /// The file (device, inode).
    pub(crate) fn key(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    pub(crate) fn apply(&self) -> Result<(), Failure> {
        let fail = |e: std::io::Error| {
            Failure::new(format!(
                "cannot cut {} back to its size at the checkpoint: {e}",
                self.path
            ))
        };
        if let (Some(mode), Some(c)) = (self.make, &self.contents) {
            use std::os::unix::fs::PermissionsExt;
            let path = ckpt::names::path(&self.path);
            let create = || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
            };
            let mut made = create();
            // Its directory went too (removed after the checkpoint, as git
            // prunes loose objects): made again, said.
            if made
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            {
                if let Some(dir) = path.parent().filter(|d| !d.exists()) {
                    std::fs::create_dir_all(dir).map_err(fail)?;
                    eprintln!(
                        "ckpt restart: {}: directory made again (it was removed after the checkpoint)",
                        dir.display()
                    );
                    made = create();
                }
            }
            let mut f = match made {
                // Made again meanwhile from the image by the restore of a
                // shared mapping of it (see `open_mapped_files`): its
                // contents are written over it all the same.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(ckpt::names::path(&self.path))
                        .map_err(fail)?;
                    std::io::Write::write_all(&mut &f, c).map_err(fail)?;
                    f.sync_data().map_err(fail)?;
                    return Ok(());
                }
                other => other.map_err(fail)?,
            };
            std::io::Write::write_all(&mut f, c).map_err(fail)?;
            f.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(fail)?;
            f.sync_all().map_err(fail)?;
            eprintln!(
                "ckpt restart: {}: made again from the image ({} bytes; it was gone)",
                ckpt::names::shown(&self.path),
                c.len()
            );
            return Ok(());
        }
        let f = match std::fs::OpenOptions::new()
            .write(true)
            .open(ckpt::names::path(&self.path))
        {
            // Removed since (no descriptor needs it: that is refused
            // before), and too large to have been kept in the image.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!(
                    "ckpt restart: warning: {}: removed after the checkpoint, and its contents \
                     were not kept in the image (larger than what is kept): not made again",
                    ckpt::names::shown(&self.path)
                );
                return Ok(());
            }
            other => other.map_err(fail)?,
        };
        let st = f.metadata().map_err(fail)?;
        if st.dev() != self.dev || st.ino() != self.ino {
            return Err(Failure::new(format!(
                "{} was replaced while the restart started",
                self.path
            )));
        }
        if let Some(c) = &self.contents {
            use std::os::unix::fs::FileExt;
            f.write_all_at(c, 0).map_err(fail)?;
            f.set_len(c.len() as u64).map_err(fail)?;
            f.sync_data().map_err(fail)?;
            eprintln!(
                "ckpt restart: {}: put back as it was at the checkpoint ({} bytes; it changed since; --keep-files leaves it)",
                self.path,
                c.len()
            );
            return Ok(());
        }
        f.set_len(self.to).map_err(fail)?;
        eprintln!(
            "ckpt restart: {}: cut back from {} to {} bytes (written after the checkpoint; --keep-files leaves it)",
            self.path, self.from, self.to
        );
        Ok(())
    }
}

/// A file the program wrote, to roll back: one it had open for writing
/// (`fd`), or one it wrote and closed.
struct Written<'a> {
    path: &'a str,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    /// The descriptor, its offset and whether it appends.
    fd: Option<(i32, i64, bool)>,
    /// Open for reading and writing, not appending: the program may have
    /// changed it anywhere (a database, a read-modify-write file).
    anywhere: bool,
}

impl Written<'_> {
    /// How messages name it.
    fn label(&self) -> String {
        match self.fd {
            Some((fd, ..)) => format!("{} (descriptor {fd})", self.path),
            None => format!("{} (written and closed by the program)", self.path),
        }
    }
}

/// The job's log of the files its processes wrote, as it was at the
/// checkpoint (`ckpt::files::joblog`), when the image is a job's root's.
pub(crate) fn restore_job_log(meta: &Meta) {
    let Some(log) = &meta.job_log else { return };
    let path = ckpt::names::path(log);
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let made = match path.parent() {
        Some(dir) => ckpt::control::ensure_runtime_dir(dir, uid),
        None => Ok(()),
    };
    if let Err(e) = made.and_then(|()| {
        ckpt::files::joblog::restore(log, &meta.job_written, meta.job_mark.as_deref())
    }) {
        eprintln!(
            "ckpt: warning: {}: {e}: files the job's ended processes write are not rolled back at its next restart",
            path.display()
        );
    }
}

/// What is said of the files the job's processes wrote at 0, 1 or 2
/// that this command writes too (`ckpt::files::shared_stream`): the
/// program goes on through this command's descriptor, the file is not
/// cut back. One line a file, whichever processes hold it.
pub(crate) fn shared_streams_said(metas: &[&Meta]) -> Vec<String> {
    let streams: Vec<&image::Fd> = metas
        .iter()
        .flat_map(|m| m.fds.iter())
        .filter(|f| ckpt::files::shared_stream(f))
        .collect();
    let mut said = Vec::new();
    for (i, f) in streams.iter().enumerate() {
        let key = (f.dev, f.ino);
        if !streams[..i].iter().any(|g| (g.dev, g.ino) == key) {
            let same: Vec<&image::Fd> = streams[i..]
                .iter()
                .copied()
                .filter(|g| (g.dev, g.ino) == key)
                .collect();
            said.extend(shared_stream_said(&same));
        }
    }
    said
}

fn shared_stream_said(same: &[&image::Fd]) -> Option<String> {
    let f = same.first()?;
    let size = std::fs::metadata(ckpt::names::path(&f.path)).ok()?.len();
    let was = f.size.max(0) as u64;
    let position = same
        .iter()
        .map(|g| g.offset.max(0) as u64)
        .max()
        .unwrap_or(0);
    let how = if size < position {
        format!(
            "now {size} bytes, shorter than the program's position then ({position}): it writes \
             on from this command's position"
        )
    } else if size > was {
        format!(
            "grown by {} bytes since the checkpoint (by the killed run or by others writing to \
             it: it is not cut back, so what the killed run wrote there after the checkpoint \
             may come twice)",
            size - was
        )
    } else {
        return None;
    };
    let mut fds: Vec<i32> = same.iter().map(|g| g.fd).collect();
    fds.sort_unstable();
    fds.dedup();
    let names = ["standard input", "standard output", "standard error"];
    let what: Vec<&str> = fds.iter().map(|&fd| names[fd as usize]).collect();
    Some(format!(
        "{} is this command's own {} too, not appended to: the program writes on through it, \
         {how}",
        f.path,
        what.join(" and ")
    ))
}

/// What a warning about a written file the image could not keep adds.
const SAVE_FILES: &str = " (`ckpt run --save-files` keeps the contents of files open for \
                          writing in the image, so that a restart puts them back)";

/// Files the program had open for writing, or wrote and closed: those
/// that grew since the checkpoint are cut back (unless `keep`), one
/// shorter than where the program writes is refused, one changed in
/// place is a warning, or put back when its contents are in the image.
pub(crate) fn plan_rollback(meta: &Meta, keep: bool) -> Result<(Vec<Cut>, Vec<String>), Failure> {
    let mut cuts: Vec<Cut> = Vec::new();
    let mut warnings = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let open = meta.fds.iter().filter(|f| {
        f.flags & libc::O_ACCMODE != libc::O_RDONLY
            && f.kind == FdKind::File
            && !f.deleted
            && stdio_rule(f) == Passthrough::Rebuilt
    });
    let targets = open
        .map(|f| Written {
            path: &f.path,
            dev: f.dev,
            ino: f.ino,
            size: f.size.max(0) as u64,
            mtime_ns: f.mtime_ns,
            fd: Some((f.fd, f.offset, f.flags & libc::O_APPEND != 0)),
            anywhere: f.flags & libc::O_ACCMODE == libc::O_RDWR && f.flags & libc::O_APPEND == 0,
        })
        .chain(meta.closed_files.iter().map(|c| Written {
            path: &c.path,
            dev: c.dev,
            ino: c.ino,
            size: c.size.max(0) as u64,
            mtime_ns: c.mtime_ns,
            fd: None,
            anywhere: false,
        }));
    // Files written and closed, gone since, not in the image: one line.
    let mut gone: Vec<&str> = Vec::new();
    for f in targets {
        let kept = meta
            .written_files
            .iter()
            .find(|w| w.dev == f.dev && w.ino == f.ino);
        let Ok(st) = std::fs::metadata(ckpt::names::path(f.path)) else {
            // Gone: made again when its contents are in the image
            // (check_descriptors refused an open one otherwise).
            match kept {
                Some(w) if seen.insert((f.dev, f.ino)) => cuts.push(Cut {
                    path: f.path.to_string(),
                    dev: f.dev,
                    ino: f.ino,
                    from: 0,
                    to: w.contents.len() as u64,
                    contents: Some(w.contents.to_vec()),
                    make: Some(w.mode),
                }),
                None if f.fd.is_none() && !gone.contains(&f.path) => gone.push(f.path),
                _ => {}
            }
            continue;
        };
        // A closed file replaced since (written anew and renamed over):
        // its contents go back into what is there now, when kept.
        let (dev, ino) = (st.dev(), st.ino());
        if (dev, ino) != (f.dev, f.ino) {
            // Once per file, however many descriptors and names it had.
            if !seen.insert((f.dev, f.ino)) {
                continue;
            }
            // Already what it was: made again from the image by this
            // restart (a file the program mapped shared, see
            // `open_mapped_files`), or put back by hand.
            let made_here = made_by_this_restart(&st);
            let now = || std::fs::read(ckpt::names::path(f.path)).ok();
            if made_here || kept.is_some_and(|w| now().is_some_and(|n| w.contents == n)) {
                continue;
            }
            match kept {
                Some(w) if !keep => cuts.push(Cut {
                    path: f.path.to_string(),
                    dev,
                    ino,
                    from: st.size(),
                    to: w.contents.len() as u64,
                    contents: Some(w.contents.to_vec()),
                    make: None,
                }),
                _ => warnings.push(format!(
                    "{}: replaced by another file since the checkpoint{}",
                    f.label(),
                    if keep {
                        " and kept as it is (--keep-files)".to_string()
                    } else {
                        format!("; its contents then are not in the image: it is left as it is{SAVE_FILES}")
                    }
                )),
            }
            continue;
        }
        let size = st.size();
        let saved = f.size;
        // Its contents at the checkpoint are in the image: put back
        // whatever changed (unless told to leave files alone).
        if let Some(w) = kept {
            if !seen.insert((f.dev, f.ino)) {
                continue;
            }
            let now = std::fs::read(ckpt::names::path(f.path)).unwrap_or_default();
            let was = w.contents.as_slice();
            if now == was {
                continue;
            }
            if now.len() > was.len() && now.starts_with(was) {
                // Only appended to: cut back (or kept, and said) as below.
                if keep {
                    warnings.push(format!(
                        "{} grew by {} bytes since the checkpoint and is kept as it is (--keep-files): the program will write those parts again",
                        f.label(),
                        now.len() - was.len()
                    ));
                } else {
                    cuts.push(Cut {
                        path: f.path.to_string(),
                        dev: f.dev,
                        ino: f.ino,
                        from: now.len() as u64,
                        to: was.len() as u64,
                        contents: None,
                        make: None,
                    });
                }
                continue;
            }
            if keep {
                warnings.push(format!(
                    "{} changed since the checkpoint and is kept as it is (--keep-files)",
                    f.label()
                ));
            } else {
                cuts.push(Cut {
                    path: f.path.to_string(),
                    dev: f.dev,
                    ino: f.ino,
                    from: size,
                    to: w.contents.len() as u64,
                    contents: Some(w.contents.to_vec()),
                    make: None,
                });
            }
            continue;
        }
        if let Some((fd, offset, appends)) = f.fd {
            if !appends && offset > 0 && size < offset as u64 {
                return Err(Failure::new(format!(
                    "{} (descriptor {fd}) is now {size} bytes, shorter than the program's position {offset} in it: what it wrote before the checkpoint is gone",
                    f.path
                )));
            }
        }
        if !seen.insert((f.dev, f.ino)) {
            continue;
        }
        let mtime = st.mtime() * 1_000_000_000 + st.mtime_nsec();
        // Its contents at the checkpoint are written back from its mappings.
        let put_back = crate::shared_files::keeps_whole(meta, f.path, f.dev, f.ino, saved);
        if size > saved {
            if keep {
                warnings.push(format!(
                    "{} grew by {} bytes since the checkpoint and is kept as it is (--keep-files): the program will write those parts again",
                    f.label(),
                    size - saved
                ));
            } else {
                if f.anywhere && !put_back {
                    warnings.push(format!(
                        "{} grew since the checkpoint and is cut back to its size then, but it \
                         is open for reading and writing anywhere in it and too large to be kept \
                         in the image: what the killed run changed before its old end cannot be \
                         put back{SAVE_FILES}",
                        f.label()
                    ));
                }
                cuts.push(Cut {
                    path: f.path.to_string(),
                    dev: f.dev,
                    ino: f.ino,
                    from: size,
                    to: saved,
                    contents: None,
                    make: None,
                });
            }
        } else if size < saved && !put_back {
            warnings.push(format!(
                "{} shrank from {saved} to {size} bytes since the checkpoint{SAVE_FILES}",
                f.label()
            ));
        } else if mtime != f.mtime_ns && !put_back {
            warnings.push(format!(
                "{} was changed in place since the checkpoint: what was overwritten cannot be \
                 put back{SAVE_FILES}",
                f.label()
            ));
        }
    }
    if !gone.is_empty() {
        gone.sort_unstable();
        warnings.push(format!(
            "{} written and closed by the program {} gone since the checkpoint, and not in the \
             image (too large): not made again: {}{SAVE_FILES}",
            crate::human::count(gone.len(), "file", "files"),
            if gone.len() == 1 { "is" } else { "are" },
            crate::human::first_few(&gone)
        ));
    }
    Ok((cuts, warnings))
}

/// Open every file the image maps, once each, checking its identity.
pub(crate) fn open_mapped_files(meta: &Meta) -> Result<HashMap<String, i32>, Failure> {
    let mut out = HashMap::new();
    for r in &meta.regions {
        if !matches!(r.kind, RegionKind::FilePrivate | RegionKind::FileShared)
            || out.contains_key(&r.path)
        {
            continue;
        }
        // Read-write when any of its mappings is shared and writable.
        let writable = meta.regions.iter().any(|x| {
            x.path == r.path
                && x.kind == RegionKind::FileShared
                && x.prot & libc::PROT_WRITE as u32 != 0
        });
        let saved = (r.kind == RegionKind::FileShared)
            .then(|| {
                meta.saved_files
                    .iter()
                    .find(|s| s.path == r.path && s.ino == r.ino)
            })
            .flatten();
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(writable)
                .custom_flags(libc::O_CLOEXEC)
                .open(ckpt::names::path(&r.path))
        };
        let mut made = false;
        let f = match (open(), saved) {
            (Err(e), Some(s)) if e.kind() == std::io::ErrorKind::NotFound => {
                make_again(s)?;
                made = true;
                open().map_err(|e| Failure::new(format!("cannot open {}: {e}", r.path)))?
            }
            (r2, _) => r2.map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Failure::new(format!("the image maps {}, which is gone", r.path))
                } else {
                    Failure::new(format!("cannot open {}, which the image maps: {e}", r.path))
                }
            })?,
        };
        let st = f
            .metadata()
            .map_err(|e| Failure::new(format!("{}: {e}", r.path)))?;
        // The file itself: its inode, not one reused by a file born since.
        let same = st.dev() == r.dev
            && st.ino() == r.ino
            && !st.created().is_ok_and(|b| b > meta.frozen_at());
        // A file made again (which may have the old inode's number), or a
        // copy with the saved contents, stands in.
        let stands_in = made
            || saved.is_some_and(|s| {
                std::fs::read(ckpt::names::path(&r.path)).is_ok_and(|now| now == s.contents)
            });
        if !same && !stands_in {
            return Err(Failure::new(format!(
                "the image maps {}, which was replaced by another file since the checkpoint",
                r.path
            )));
        }
        // Made again by this restart for another process of the tree:
        // said once, by that one.
        let made_here = made_by_this_restart(&st);
        if !(same || made || (stands_in && made_here)) {
            eprintln!(
                "ckpt: warning: {} is not the file the program mapped, but holds what it held at the checkpoint: mapped in its place",
                r.path
            );
        }
        out.insert(r.path.clone(), f.into_raw_fd());
    }
    Ok(out)
}

/// Whether the file was born since this restart began (made again by it).
fn made_by_this_restart(st: &std::fs::Metadata) -> bool {
    STARTED
        .get()
        .is_some_and(|t| st.created().is_ok_and(|b| b >= *t))
}

/// Make a file the program mapped shared again from the image (it was
/// gone): its directory too, with its mode and contents.
fn make_again(s: &image::SavedFile) -> Result<(), Failure> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let path = &ckpt::names::path(&s.path);
    let fail = |e: std::io::Error| Failure::new(format!("cannot make {} again: {e}", s.path));
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(s.mode)
        .open(path)
        .map_err(fail)?;
    std::io::Write::write_all(&mut f, &s.contents).map_err(fail)?;
    f.set_permissions(std::fs::Permissions::from_mode(s.mode))
        .map_err(fail)?;
    // Informational, like a written file made again: what the program
    // sees is what it saw (often its own job removed it after the kill:
    // Python's resource tracker unlinks its named semaphores).
    eprintln!(
        "ckpt restart: {}: made again from the image ({} bytes; it was gone; the program maps it shared)",
        ckpt::names::shown(&s.path),
        s.contents.len()
    );
    Ok(())
}

/// `sources`: the image's descriptor, then those of its earlier images
/// (`meta.deps`), so an extent's `src` indexes it.
/// With `pager` (the restorer's socket to it, /dev/userfaultfd or -1, lazy),
/// the regions [`crate::pager::paged_region`] names are marked paged and
/// their extents left to the pager.
pub(crate) fn write_plan(
    meta: &Meta,
    sources: &[i32],
    mapped: &HashMap<String, i32>,
    specials: &[PlanSpecial],
    entry_arg: u64,
    pager: Option<crate::pager::PlanFds>,
) -> Result<i32, Failure> {
    let mut h = PlanHeader::new();
    h.image_fd = sources[0];
    if let Some(p) = pager {
        h.pager_fd = p.sock;
        h.uffd_dev = p.dev;
        h.lazy = p.lazy as u32;
    }
    let paged = |r: &image::Region| pager.is_some_and(|p| crate::pager::paged_region(r, p.lazy));
    h.entry = meta.restart.entry;
    h.entry_stack = meta.restart.stack_top;
    h.entry_arg = entry_arg;
    h.mm = mm_fields(&meta.process.mm);
    let main_name = meta
        .threads
        .iter()
        .find(|t| t.id == 1)
        .map(|t| t.name.as_str());
    h.set_comm(main_name.unwrap_or(&meta.process.comm).as_bytes());
    let staged = crate::staging::stage(meta, sources, &|r| !paged(r))?;
    let mut regions = Vec::new();
    let mut extents = Vec::new();
    let mut finals = Vec::new();
    for r in meta
        .regions
        .iter()
        .filter(|r| r.kind != RegionKind::Special)
    {
        let fd = match r.kind {
            RegionKind::FilePrivate | RegionKind::FileShared => mapped[&r.path],
            _ => -1,
        };
        let mut flags = if r.shared {
            plan::MAP_SHARED
        } else {
            plan::MAP_PRIVATE
        };
        if fd < 0 {
            flags |= plan::MAP_ANONYMOUS;
        }
        if r.grows_down {
            flags |= plan::MAP_GROWSDOWN;
        }
        if r.noreserve {
            flags |= plan::MAP_NORESERVE;
        }
        regions.push(PlanRegion {
            start: r.start,
            end: r.end,
            prot: r.prot,
            flags,
            fd,
            paged: if paged(r) { plan::REGION_PAGED } else { 0 },
            offset: if fd < 0 { 0 } else { r.offset },
        });
        finals.extend(memory_finals(r));
        if paged(r) {
            continue;
        }
        if crate::shared_files::kept(r) {
            // Its pages go into the file, which the restorer maps.
            crate::shared_files::put_back(r, fd, sources, staged.as_ref())?;
            continue;
        }
        for e in &r.extents {
            let Some(&fd) = sources.get(e.src as usize) else {
                return Err(Failure::new(format!(
                    "the memory at {:#x} refers to an earlier image the image does not name",
                    e.addr
                )));
            };
            let (fd, file_offset) = match &staged {
                Some(st) if e.codec != 0 => st.place(e).ok_or_else(|| {
                    Failure::new(format!("the memory at {:#x} was not decompressed", e.addr))
                })?,
                _ => (fd, e.file_offset),
            };
            extents.push(PlanExtent {
                addr: e.addr,
                len: e.len,
                file_offset,
                fd,
                _pad: 0,
            });
        }
    }
    // File order: the restorer reads each file front to back, and
    // extents next to each other in a file share one window (an
    // incremental image interleaves its own pages with earlier images').
    extents.sort_by_key(|e| (e.fd, e.file_offset));
    // Left open for the restorer, which reads the plain pages from it.
    let _ = staged.map(crate::staging::Staged::into_raw);
    let mut bytes = Vec::new();
    plan::write_plan(&h, &regions, &extents, specials, &finals, &mut |b| {
        bytes.extend_from_slice(b)
    });
    // No CLOEXEC on purpose: the restorer reads it.
    memfd_holding(c"ckpt-plan", &bytes, 0)
}

/// What the restarted program puts back on region `r` once its memory is
/// in place (see `ckpt::memory::guards`): its NUMA policy, its guard
/// pages, its seal.
fn memory_finals(r: &image::Region) -> impl Iterator<Item = PlanFinal> + '_ {
    let whole = |kind, mode, nodes| PlanFinal {
        start: r.start,
        len: r.end - r.start,
        kind,
        mode,
        nodes,
    };
    let policy = r.mempolicy.as_ref().map(|p| {
        if p.nodes.len() > 1 {
            eprintln!(
                "ckpt restart: warning: memory {:#x}-{:#x}: its NUMA policy names nodes above \
                 63, which it loses",
                r.start, r.end
            );
        }
        whole(
            plan::FINAL_POLICY,
            p.mode,
            p.nodes.first().copied().unwrap_or(0),
        )
    });
    let guards = r.guards.iter().map(|&(start, len)| PlanFinal {
        start,
        len,
        kind: plan::FINAL_GUARD,
        mode: 0,
        nodes: 0,
    });
    let seal = r.sealed.then(|| whole(plan::FINAL_SEAL, 0, 0));
    policy.into_iter().chain(guards).chain(seal)
}

/// A memfd named `name` holding `bytes` (`flags`: memfd_create's).
pub(crate) fn memfd_holding(
    name: &std::ffi::CStr,
    bytes: &[u8],
    flags: u32,
) -> Result<i32, Failure> {
    // SAFETY: memfd_create with a valid name.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    if fd < 0 {
        return Err(Failure::new(format!(
            "memfd_create: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: fd is the memfd we just created and own.
    let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    std::io::Write::write_all(&mut f, bytes)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", name.to_string_lossy())))?;
    Ok(f.into_raw_fd())
}

fn mm_fields(mm: &image::MmInfo) -> MmFields {
    let mut m = MmFields::zeroed();
    m.start_code = mm.start_code;
    m.end_code = mm.end_code;
    m.start_data = mm.start_data;
    m.end_data = mm.end_data;
    m.start_brk = mm.start_brk;
    m.brk = mm.brk;
    m.start_stack = mm.start_stack;
    m.arg_start = mm.arg_start;
    m.arg_end = mm.arg_end;
    m.env_start = mm.env_start;
    m.env_end = mm.env_end;
    // Up to and including AT_NULL: /proc/PID/auxv may carry trailing
    // zeros, and the kernel takes at most its own vector's size.
    let used = mm
        .auxv
        .chunks(2)
        .position(|p| p[0] == 0)
        .map_or(mm.auxv.len(), |i| 2 * i + 2);
    let n = used.min(mm.auxv.len()).min(plan::AUXV_WORDS) & !1;
    m.auxv[..n].copy_from_slice(&mm.auxv[..n]);
    m.auxv_len = n as u64;
    m
}

pub(crate) fn clear_cloexec(fd: i32) {
    // SAFETY: fcntl(F_SETFD) on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
}

/// Export generation `name` (default: the newest; with `latest`, the
/// newest that exports whole and checks, passing over damaged ones with a
/// warning) of `store` into `into`.
fn from_store(
    store: &crate::store::Store,
    name: Option<&str>,
    latest: bool,
    into: &std::path::Path,
) -> Result<std::path::PathBuf, Failure> {
    if !latest || name.is_some() {
        let name = store.pick(name).map_err(Failure::new)?;
        return store.export(&name, into).map_err(Failure::new);
    }
    let all = store.generations().map_err(Failure::new)?;
    for g in all.iter().rev() {
        let checked = store.export(&g.name, into).and_then(|p| {
            if p.is_dir() {
                return Ok(p);
            }
            let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            ckpt::verify::image(&bytes).map_err(|e| format!("{}: {e}", g.name))?;
            Ok(p)
        });
        match checked {
            Ok(p) => return Ok(p),
            Err(e) => eprintln!("ckpt restart: warning: passing over {}: {e}", g.name),
        }
    }
    Err(Failure::new(
        "no generation of the store could be restarted".to_string(),
    ))
}
