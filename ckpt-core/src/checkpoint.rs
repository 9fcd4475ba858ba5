//! Take a checkpoint: freeze, gather, start the image writer, thaw.
//!
//! Runs inside the reserved signal's handler on the thread that received
//! the request (see `quiesce`), with allocation routed to the scratch
//! arena for the whole call: the interrupted code may hold any lock,
//! malloc's included.
//!
//! The program is frozen only while its kernel state is gathered and the
//! writer (a copy-on-write copy of it, see [`crate::writer`]) is made;
//! then every thread goes on at once. The writer writes the image,
//! publishes it atomically (the previous good image survives anything that
//! goes wrong) and answers the requester itself.

use crate::writer::{self, Job, Output};
use crate::{memory, quiesce, snapshot, sys, tree};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering::*};

pub use crate::writer::Requester;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Read end of the last writer's "done" pipe (EOF once it ended), or -1.
static LAST_DONE: AtomicI32 = AtomicI32::new(-1);

/// How long a freeze may take before the checkpoint gives up (and lets
/// the program go on untouched).
const FREEZE_TIMEOUT_NS: u64 = 10_000_000_000;

/// The error of a single-process checkpoint of a process that has
/// children of its job by the time it is frozen (`ckpt checkpoint` then
/// takes the tree).
pub const NOW_A_TREE: &str = "the process has children now: its whole job must be checkpointed";

/// A checkpoint under way: the program runs on, its writer writes.
#[derive(Debug, Clone)]
pub struct Started {
    /// Where the image will be once complete.
    pub path: std::path::PathBuf,
    pub seq: u64,
    /// How long the program was frozen.
    pub freeze_us: u64,
    /// The writer's pid.
    pub writer: i32,
    /// For [`Requester::Api`]: the program's end of the link on which the
    /// writer sends its verdict (a MessagePack `control::Response`, then
    /// EOF). The caller owns it (one of ckpt's own descriptors): close it
    /// with [`close_verdict`].
    pub verdict: Option<i32>,
}

/// The name every image of this process starts with (`ckpt-COMM-PID.`).
pub fn image_prefix(comm: &str, pid: i32) -> String {
    format!("{}{pid}.", program_prefix(comm))
}

/// The start of the image names of every process named `comm`
/// (`ckpt-COMM-`).
pub fn program_prefix(comm: &str) -> String {
    let safe: String = comm
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("ckpt-{safe}-")
}

/// The image file name of checkpoint `seq` of this process (each
/// checkpoint is a generation of its own: `ckpt-COMM-PID.SEQ.img`).
pub fn image_name(comm: &str, pid: i32, seq: u64) -> String {
    format!("{}{seq}.img", image_prefix(comm, pid))
}

/// The program's command name (for the image file name).
fn comm() -> String {
    let mut buf = [0u8; 64];
    let n = sys::read_small(libc::AT_FDCWD, c"/proc/self/comm", &mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).trim().to_string()
}

/// Whether the last checkpoint's writer is still writing.
pub fn writing() -> bool {
    let fd = LAST_DONE.load(Acquire);
    if fd < 0 {
        return false;
    }
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll of one live pollfd, no wait.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r == 0
}

/// Post-restart, and in a fork child: the last writer is not ours (its
/// descriptor did not come along, or belongs to the parent).
pub fn forget_writer() {
    let fd = LAST_DONE.swap(-1, AcqRel);
    if fd >= 0 && crate::files::is_own(fd) {
        writer::close_own(fd);
    }
    writer::forget_all();
}

/// Close the verdict link a [`Started`] handed over.
pub fn close_verdict(fd: i32) {
    writer::close_own(fd);
}

/// Take one checkpoint into directory `dir`. `self_uc` is the calling
/// (coordinating) thread's interrupted context; `requester` is told the
/// outcome by the writer; the program's newest `keep` images stay.
pub fn take(
    dir: &Path,
    self_uc: *mut core::ffi::c_void,
    requester: Requester,
    keep: u32,
) -> Result<Started, String> {
    take_with(dir, self_uc, requester, keep, None, dir, false)
}

/// [`take`], as a pre-copy when there is nothing to build on (the first
/// checkpoint, or the first since a restart) and much memory (see
/// `memory::stage::stage_live`): the first half, whose writer asks the
/// program for the second ([`take`] again, building on it), whose writer
/// answers `requester` (`ckpt checkpoint --precopy`). The program stalls
/// for page-table walks and a copy of what it wrote meanwhile, not for a
/// fork of all its memory; but a program that ends before
/// the second half loses this checkpoint (a whole one is finished by its
/// writer whatever the program does).
pub fn take_precopy(
    dir: &Path,
    self_uc: *mut core::ffi::c_void,
    requester: Requester,
    keep: u32,
) -> Result<Started, String> {
    let precopy = matches!(requester, Requester::Socket { .. });
    take_with(dir, self_uc, requester, keep, None, dir, precopy)
}

/// Take this process's part of a tree checkpoint (see [`crate::tree`]):
/// its image `PID.img` goes into `dir` (the tree's hidden directory, which
/// the command publishes as `published`), and `sync` holds the process
/// frozen until every process of the tree is frozen, then until every one
/// has gathered.
pub fn take_in_tree(
    dir: &Path,
    published: &Path,
    self_uc: *mut core::ffi::c_void,
    requester: Requester,
    seq: u64,
    sync: tree::TreeSync,
) -> Result<Started, String> {
    SEQ.fetch_max(seq, Relaxed);
    take_with(
        dir,
        self_uc,
        requester,
        0,
        Some((seq, sync)),
        published,
        false,
    )
}

/// `published`: where the image will be once in place (`dir`, but for a
/// tree's member).
fn take_with(
    dir: &Path,
    self_uc: *mut core::ffi::c_void,
    requester: Requester,
    keep: u32,
    tree: Option<(u64, tree::TreeSync)>,
    published: &Path,
    precopy: bool,
) -> Result<Started, String> {
    crate::process::prctl::lend_dumpable();
    let r = take_lent(dir, self_uc, requester, keep, tree, published, precopy);
    crate::process::prctl::give_back_dumpable();
    r
}

/// [`take_with`], the process dumpable for the while.
fn take_lent(
    dir: &Path,
    self_uc: *mut core::ffi::c_void,
    requester: Requester,
    keep: u32,
    mut tree: Option<(u64, tree::TreeSync)>,
    published: &Path,
    precopy: bool,
) -> Result<Started, String> {
    // Restarted lazily: not before every page has arrived (a writer forked
    // now would find the missing ones empty).
    crate::memory::lazy::wait_filled();
    let t0 = sys::monotonic_ns();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    writer::reap_finished();
    let pid = sys::getpid();
    let comm = comm();
    let (seq, name) = match &tree {
        Some((seq, _)) => (*seq, tree::image_name(pid)),
        None => {
            let seq = SEQ.fetch_add(1, Relaxed) + 1;
            (seq, image_name(&comm, pid, seq))
        }
    };
    let mut final_path = dir.join(&name);
    let dir_c = CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    let tmp_c = |attempt: u32| {
        CString::new(
            dir.join(format!(".{name}.tmp.{pid}.{seq}.{attempt}"))
                .as_os_str()
                .as_bytes(),
        )
        .unwrap_or_default()
    };
    let created_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);

    let frozen = quiesce::freeze(FREEZE_TIMEOUT_NS, self_uc)?;
    // ---- frozen: no malloc, no locks a program thread may hold ----
    // In a tree: nothing is gathered before every process is frozen.
    if let Some((seq, sync)) = tree.as_mut() {
        if let Err(e) = sync(tree::Phase::Frozen, *seq) {
            quiesce::thaw(frozen);
            return Err(e);
        }
    } else if tree::request::has_job_children() {
        // Forked since whoever asked looked: one process alone would be
        // a torn image of its job.
        quiesce::thaw(frozen);
        return Err(NOW_A_TREE.into());
    }
    if let Some(why) =
        crate::process::mount_namespace_refusal().or_else(crate::process::root_refusal)
    {
        quiesce::thaw(frozen);
        return Err(why.into());
    }
    // A kernel timer the image would not hold could not come back.
    let untracked = crate::timers::untracked();
    if untracked > 0 {
        quiesce::thaw(frozen);
        return Err(format!(
            "{untracked} of the program's POSIX timers were not recorded (made by a raw \
             system call, or beyond the {} ckpt can record); they could not come back",
            crate::timers::MAX_TIMERS
        ));
    }
    if crate::signals::thread_queue_lost() {
        quiesce::thaw(frozen);
        return Err(
            "more real-time signals are queued to the program's threads than ckpt can save; \
             they could not all come back"
                .into(),
        );
    }
    // Every process of the checkpoint is frozen by now (a tree's synced):
    // rounded up, so a file born before it never counts as born after.
    // SAFETY: clock_gettime into a local timespec (vDSO; no allocation).
    let frozen_unix_ms = unsafe {
        let mut ts: libc::timespec = core::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
        (ts.tv_sec.max(0) as u64) * 1000 + (ts.tv_nsec as u64).div_ceil(1_000_000)
    };
    crate::files::set_in_tree(tree.is_some());
    let mut meta = snapshot::gather(&frozen, seq, created_unix_ms);
    meta.frozen_unix_ms = frozen_unix_ms;
    crate::files::set_in_tree(false);
    // Files it writes, as they are now (a restart puts them back).
    let (mut closed, dropped) = crate::files::closed::snapshot(&meta.fds);
    // And those the job's other processes wrote, ended ones included.
    let job = crate::files::joblog::snapshot(&meta.fds, &closed);
    closed.extend(job.files);
    meta.written_files = crate::files::written::snapshot(&meta.fds, &closed);
    meta.closed_files = closed;
    meta.closed_files_dropped = dropped + job.dropped;
    meta.job_log = job.log;
    meta.job_written = job.paths;
    meta.job_mark = job.mark;
    meta.job = crate::files::joblog::current();
    // Memory the program keeps out of forks must reach the writer child.
    meta.fork_advice = memory::fork_advice::snapshot();
    meta.advice = memory::advice::snapshot();
    // One read of the map serves the saved files and the fork check.
    let maps = memory::own_maps();
    // (Nothing gathered so far changed any state: giving up is a thaw.)
    if let Some(why) = memory::secret_refusal(&maps) {
        quiesce::thaw(frozen);
        return Err(why.into());
    }
    // Pages written since the previous checkpoint: the next image stores
    // only those and takes the rest from this one, where it will be once
    // published. With --keep 1 too: the previous image goes once this one
    // is in, and the pruning either keeps it as a base (when this one
    // takes at least half its pages from it) or folds its pages into this
    // one, after the answer. A tree's member takes them from its image in
    // the previous tree (hard-linked into the new one by its writer).
    memory::dirty::collect(&maps, Some(published.join(&name).as_path()));
    meta.saved_files = memory::saved_files(&maps);
    // System V segments it has attached (their pages are captured below).
    meta.process
        .sysv_ipc
        .extend(crate::process::shm_objects(&maps));
    // Whether the writer is sure to build on the previous round's image:
    // never for a tree's member (its base is in the previous tree's
    // directory).
    let build_on = memory::dirty::round().is_some_and(|r| {
        r.base.as_ref().is_some_and(|b| b.parent() == Some(dir))
            && writer::previous_can_be_built_on(LAST_DONE.load(Acquire), r.prev)
    });
    // Memory the writer's fork does not hold (shared): copied while
    // frozen; of a kept file mapping, the pages changed since that image.
    memory::shared::capture(build_on);
    // Nothing to build on: the first half of a pre-copy, when there is
    // much memory (a single process, asked by the command).
    let live = if precopy && !build_on && tree.is_none() {
        memory::stage::stage_live(&maps, &meta.fork_advice)
    } else {
        0
    };
    if live > 0 {
        // Not a generation: never restarted alone, and the next image
        // builds on it under that name.
        meta.precopy = true;
        final_path = dir.join(format!("{}{seq}.base", image_prefix(&comm, pid)));
        memory::dirty::image_moves_to(&final_path);
    } else {
        // Large regions that changed little since that image: their
        // written pages copied, the regions left out of the writer's fork
        // (whose page-table copy is the pause).
        memory::stage::stage(&maps, &meta.fork_advice, build_on);
    }
    meta.freeze_us = (sys::monotonic_ns() - frozen.started_ns()) / 1000;
    // Opened while frozen so their low numbers are never seen by the program.
    let started = Output::open(&dir_c, &tmp_c(0)).and_then(|out| {
        let links = Links::new().inspect_err(|_| out.discard())?;
        crate::restart::set_pending(&meta);
        let mut job = Job {
            meta: &mut meta,
            out,
            dir: dir.to_path_buf(),
            final_path: final_path.clone(),
            seq,
            t0,
            link: links.writer_link,
            done: links.done_wr,
            prev_done: LAST_DONE.load(Acquire),
            requester,
            keep,
            prefix: image_prefix(&comm, pid),
        };
        match spawn_whole(&mut job, &tmp_c(1), &maps) {
            Ok(pid) => Ok((pid, job.out, links, job.final_path)),
            Err(e) => {
                job.out.discard();
                links.close_all();
                Err(e)
            }
        }
    });
    memory::stage::unstage();
    memory::fork_advice::restore(&meta.fork_advice);
    memory::shared::release();
    // In a tree: nobody thaws before every process has gathered (a thawed
    // process could change what another is saving).
    if let Some((seq, sync)) = tree.as_mut() {
        let _ = sync(tree::Phase::Gathered, *seq);
    }
    let freeze_ns = quiesce::thaw(frozen);
    // ---- thawed ----
    let (writer_pid, out, links, final_path) = started?;
    // Only the writer keeps these.
    writer::close_own(out.fd);
    writer::close_own(links.writer_link);
    writer::close_own(links.done_wr);
    // The next writer waits for this one before it publishes.
    let old = LAST_DONE.swap(links.done_rd, AcqRel);
    // It may move (the program dup2s onto its number): LAST_DONE follows.
    crate::files::set_own_at(links.done_rd, &LAST_DONE);
    if old >= 0 {
        writer::close_own(old);
    }
    // Tell the writer how long the program stood still (for its answer).
    let bytes = freeze_ns.to_ne_bytes();
    // SAFETY: send from a local buffer; MSG_NOSIGNAL: a dead writer is EPIPE.
    unsafe {
        libc::send(
            links.link,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    let verdict = match requester {
        Requester::Api => Some(links.link),
        _ => {
            writer::close_own(links.link);
            None
        }
    };
    Ok(Started {
        path: final_path,
        seq,
        freeze_us: freeze_ns / 1000,
        writer: writer_pid,
        verdict,
    })
}

/// The descriptors between the program and one writer.
struct Links {
    /// Program's end of the link (freeze time out, verdict in).
    link: i32,
    writer_link: i32,
    done_rd: i32,
    done_wr: i32,
}

impl Links {
    fn new() -> Result<Links, String> {
        let mut s = [0i32; 2];
        // SAFETY: socketpair into a local array.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                s.as_mut_ptr(),
            )
        } != 0
        {
            return Err("cannot make a link to the image writer".into());
        }
        let Ok(p) = sys::pipe(libc::O_CLOEXEC) else {
            sys::close(s[0]);
            sys::close(s[1]);
            return Err("cannot make a pipe for the image writer".into());
        };
        let mut high = [-1i32; 4];
        let mut ok = true;
        for (i, fd) in [s[0], s[1], p[0], p[1]].into_iter().enumerate() {
            match sys::move_high(fd) {
                Ok(h) => {
                    crate::files::set_own(h, true);
                    high[i] = h;
                }
                Err(_) => {
                    sys::close(fd);
                    ok = false;
                }
            }
        }
        let links = Links {
            link: high[0],
            writer_link: high[1],
            done_rd: high[2],
            done_wr: high[3],
        };
        if !ok {
            links.close_all();
            return Err("no free descriptor for the image writer".into());
        }
        Ok(links)
    }

    fn close_all(&self) {
        for fd in [self.link, self.writer_link, self.done_rd, self.done_wr] {
            writer::close_own(fd);
        }
    }
}

/// Start the writer, checking that it got every region: memory kept out
/// of forks by advice the madvise wrapper did not see (a raw system call)
/// is missing there. Then that memory is found (smaps), made forkable,
/// and the writer started again on a fresh output (`retry_tmp` if it must
/// be named), all while still frozen.
fn spawn_whole(
    job: &mut Job,
    retry_tmp: &CString,
    maps: &[crate::image::Region],
) -> Result<i32, String> {
    // SAFETY: the meta outlives the job (both in `take`'s frame).
    let meta = unsafe { &mut *job.meta };
    // With advice found in smaps already, nothing can be missing.
    if !meta.fork_advice.is_empty() {
        return writer::spawn(job);
    }
    // Regions left out on purpose (`stage`) are not looked for.
    let before: Vec<u64> = maps
        .iter()
        .map(|r| r.start)
        .filter(|&s| !memory::stage::is_staged(s))
        .collect();
    let pid = writer::spawn(job)?;
    if memory::missing_in(pid, &before) == 0 {
        return Ok(pid);
    }
    // Its unnamed output vanishes with it.
    writer::kill(pid);
    job.out.discard();
    let dir = CString::new(job.dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    job.out = Output::open(&dir, retry_tmp)?;
    // The program's own advice is read from smaps, where regions left
    // out on purpose would look like its own: they fork again first.
    memory::stage::unstage();
    // A pre-copy's writer now has all memory: a whole image, under the
    // generation's name.
    if meta.precopy {
        meta.precopy = false;
        job.final_path.set_extension("img");
        memory::dirty::image_moves_to(&job.final_path);
    }
    memory::fork_advice::record();
    meta.fork_advice = memory::fork_advice::snapshot();
    writer::spawn(job)
}
