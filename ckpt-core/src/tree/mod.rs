//! Process trees: a job of several processes (the one `ckpt run` started
//! and every descendant) checkpointed at one moment and restarted whole.
//!
//! Verbs, as for every kind of state:
//! - record: nothing of its own; each process runs the shim and records
//!   its own state as always.
//! - snapshot: the `ckpt checkpoint` command coordinates (see the CLI's
//!   `tree_checkpoint`): every process freezes ([`TreeSync`] phase
//!   `Frozen`), then each gathers its state and starts its image writer
//!   (phase `Gathered`), then all thaw together — so nothing one process
//!   does after its thaw (write into a pipe another process is saving) can
//!   reach another's image. Each writes its own `PID.img` (today's image
//!   format) into a hidden directory; the command adds the [`Manifest`]
//!   and renames the directory into place: the tree becomes visible whole,
//!   atomically, and the previous one stays until then.
//! - restore: the `ckpt restart` command re-creates the processes at their
//!   pids in tree order, sessions and process groups, zombies; it makes
//!   every object two processes share (pipes, socket pairs, open files
//!   with one offset, shared memory) once, and hands each process its
//!   descriptors ([`Handoff`]); post-restart code puts them at their
//!   numbers instead of making objects of its own.
//!
//! Why a directory: each process's writer writes its own file in parallel
//! with no coordination of offsets, every per-process image stays an
//! ordinary image (checked, inspected and restored by the same code), and
//! a rename of the directory publishes all of them at once.

use serde::{Deserialize, Serialize};

pub mod request;
pub mod restore;

/// The manifest's file name inside a tree image directory.
pub const MANIFEST: &str = "manifest";
/// The only manifest version this build reads.
pub const MANIFEST_VERSION: u32 = 1;

/// What a tree image holds besides its per-process images.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub version: u32,
    /// The root's pid (as the program saw it).
    pub root: i32,
    pub seq: u64,
    pub created_unix_ms: u64,
    /// Every process, parents before their children.
    pub processes: Vec<Member>,
    /// Open file descriptions held by more than one process (shared
    /// across fork: one offset, one set of status flags).
    pub shared: Vec<Vec<(i32, i32)>>,
    /// How long the slowest process was frozen.
    pub freeze_us: u64,
}

/// One process of the tree. Pids as the programs saw them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub pid: i32,
    /// Parent pid; 0 for the root.
    pub ppid: i32,
    /// Process group: a pid of the tree, or `None` for the group the
    /// root's parent gave it (outside the tree).
    pub pgid: Option<i32>,
    /// Session: a pid of the tree, or `None` for the root's session.
    pub sid: Option<i32>,
    pub comm: String,
    /// The image file (in the tree directory); `None` for a zombie.
    pub image: Option<String>,
    /// A zombie's wait status (exited, not yet waited for).
    pub zombie_status: Option<i32>,
}

impl Manifest {
    pub fn member(&self, pid: i32) -> Option<&Member> {
        self.processes.iter().find(|m| m.pid == pid)
    }

    /// The children of `pid`, in pid order.
    pub fn children(&self, pid: i32) -> Vec<&Member> {
        let mut c: Vec<&Member> = self
            .processes
            .iter()
            .filter(|m| m.ppid == pid && m.pid != pid)
            .collect();
        c.sort_by_key(|m| m.pid);
        c
    }

    /// Read and check a manifest (every member of a tree reached from the
    /// root, pids unique and positive).
    pub fn read(dir: &std::path::Path) -> Result<Manifest, String> {
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let m: Manifest = rmp_serde::from_slice(&bytes)
            .map_err(|e| format!("{}: not a ckpt tree manifest: {e}", path.display()))?;
        if m.version != MANIFEST_VERSION {
            return Err(format!(
                "{}: manifest version {} (this ckpt reads {MANIFEST_VERSION})",
                path.display(),
                m.version
            ));
        }
        m.check().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(m)
    }

    fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for p in &self.processes {
            if p.pid <= 1 || !seen.insert(p.pid) {
                return Err(format!("bad or repeated pid {}", p.pid));
            }
            if p.image.is_none() == p.zombie_status.is_none() {
                return Err(format!("process {} is neither live nor a zombie", p.pid));
            }
            if let Some(i) = &p.image {
                if i.contains('/') || i.starts_with('.') {
                    return Err(format!("bad image name {i:?}"));
                }
            }
        }
        let root = self
            .member(self.root)
            .ok_or_else(|| format!("root {} is not a member", self.root))?;
        if root.image.is_none() {
            return Err("the root is a zombie".into());
        }
        // Every member reached from the root, once.
        let mut reached = 0;
        let mut todo = vec![self.root];
        while let Some(p) = todo.pop() {
            reached += 1;
            if reached > self.processes.len() {
                return Err("the parents form a loop".into());
            }
            todo.extend(self.children(p).iter().map(|c| c.pid));
        }
        if reached != self.processes.len() {
            return Err("some processes are not descendants of the root".into());
        }
        for g in &self.shared {
            if g.iter()
                .any(|(pid, fd)| self.member(*pid).is_none() || *fd < 0)
            {
                return Err("a shared file names a process that is not a member".into());
            }
        }
        Ok(())
    }
}

/// The image file name of process `pid` in a tree directory.
pub fn image_name(pid: i32) -> String {
    format!("{pid}.img")
}

/// What `ckpt restart` hands one process of a tree: objects it shares
/// with others, made once by the command and inherited as descriptors.
/// Sent through a pipe whose number post-restart code gets from the
/// restorer (see [`pack_entry_arg`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Handoff {
    /// (descriptor number in the program, inherited descriptor).
    pub fds: Vec<(i32, i32)>,
    /// (device, inode, inherited descriptor) of each shared memory object
    /// the process maps from another process's shared object.
    pub memory: Vec<(u64, u64, i32)>,
    /// (ready, go): once restored, the process writes a byte to `ready`
    /// and waits for end of file on `go`, which comes when every process
    /// of the tree is restored — none goes on (signals another, reads
    /// what another should have written back) before all are back.
    #[serde(default)]
    pub barrier: Option<(i32, i32)>,
    /// The epoll instances shared with other processes (by number in the
    /// program) to which this process adds the watches of signalfds: the
    /// kernel wakes such a watch for the signals of the process that
    /// added it, so one process only, the nearest the root of those
    /// holding one (the one that added it before its children inherited
    /// the epoll, as a supervisor does).
    #[serde(default)]
    pub signal_watches: Vec<i32>,
}

impl Handoff {
    pub fn fd_for(&self, target: i32) -> Option<i32> {
        self.fds.iter().find(|h| h.0 == target).map(|h| h.1)
    }

    pub fn memory_for(&self, dev: u64, ino: u64) -> Option<i32> {
        self.memory
            .iter()
            .find(|m| m.0 == dev && m.1 == ino)
            .map(|m| m.2)
    }

    /// Every inherited descriptor.
    pub fn inherited(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .fds
            .iter()
            .map(|h| h.1)
            .chain(self.memory.iter().map(|m| m.2))
            .chain(self.barrier.iter().flat_map(|b| [b.0, b.1]))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

impl Handoff {
    /// Post-restart, when this process is back whole: say so, and wait
    /// until every process of the tree is. Post-restart context.
    pub fn wait_for_the_tree(&self) {
        let Some((ready, go)) = self.barrier else {
            return;
        };
        crate::restart_report::set_fail_fd(-1);
        // SAFETY: one byte to the restart command, then a blocking read
        // until it closes the other end; both descriptors are ours.
        unsafe {
            libc::write(ready, b"R".as_ptr().cast(), 1);
            let mut b = [0u8; 1];
            while libc::read(go, b.as_mut_ptr().cast(), 1) < 0
                && crate::interpose::errno() == libc::EINTR
            {}
        }
        crate::sys::close(ready);
        crate::sys::close(go);
    }
}

/// The restorer passes one word to post-restart code: the `ckpt restart`
/// command's pid in the low half; in the high half a descriptor + 1 (0:
/// none), with bit 31 set when it is a lazy restart's pager socket (see
/// [`crate::memory::lazy`]) rather than a tree's handoff pipe.
pub fn pack_entry_arg(alias_pid: i32, fd: Option<EntryFd>) -> u64 {
    let high = match fd {
        None => 0,
        Some(EntryFd::Handoff(f)) => (f + 1) as u32,
        Some(EntryFd::Lazy(f)) => (f + 1) as u32 | LAZY_BIT,
    };
    (alias_pid as u32 as u64) | ((high as u64) << 32)
}

const LAZY_BIT: u32 = 1 << 31;

/// The descriptor post-restart code is told of (see [`pack_entry_arg`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryFd {
    /// A tree's handoff pipe.
    Handoff(i32),
    /// A lazy restart's pager socket.
    Lazy(i32),
}

/// The inverse of [`pack_entry_arg`].
pub fn unpack_entry_arg(arg: u64) -> (i32, Option<EntryFd>) {
    let alias = arg as u32 as i32;
    let high = (arg >> 32) as u32;
    let fd = (high & !LAZY_BIT) as i32 - 1;
    let what = match (fd >= 0, high & LAZY_BIT != 0) {
        (false, _) => None,
        (true, false) => Some(EntryFd::Handoff(fd)),
        (true, true) => Some(EntryFd::Lazy(fd)),
    };
    (alias, what)
}

/// How a process being frozen for a tree checkpoint waits for the
/// command: called by [`crate::checkpoint::take_in_tree`] after the freeze
/// (`Frozen`, before anything is gathered) and after the writer started
/// (`Gathered`, before the thaw). An error at `Frozen` abandons the
/// checkpoint (the process thaws untouched). Frozen context: no malloc
/// outside the scratch arena, no locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Frozen,
    Gathered,
}

pub type TreeSync<'a> = &'a mut dyn FnMut(Phase, u64) -> Result<(), String>;

#[cfg(test)]
mod tests {
    use super::*;

    fn member(pid: i32, ppid: i32) -> Member {
        Member {
            pid,
            ppid,
            pgid: None,
            sid: None,
            comm: "x".into(),
            image: Some(image_name(pid)),
            zombie_status: None,
        }
    }

    #[test]
    fn entry_arg_round_trips() {
        assert_eq!(unpack_entry_arg(pack_entry_arg(1234, None)), (1234, None));
        for fd in [
            EntryFd::Handoff(0),
            EntryFd::Handoff(1021),
            EntryFd::Lazy(0),
            EntryFd::Lazy(1 << 30),
        ] {
            assert_eq!(
                unpack_entry_arg(pack_entry_arg(77, Some(fd))),
                (77, Some(fd))
            );
        }
    }

    #[test]
    fn a_manifest_must_be_one_tree() {
        let mut m = Manifest {
            version: MANIFEST_VERSION,
            root: 10,
            seq: 1,
            created_unix_ms: 0,
            processes: vec![member(10, 0), member(11, 10), member(12, 11)],
            shared: vec![vec![(10, 1), (11, 1)]],
            freeze_us: 0,
        };
        assert!(m.check().is_ok());
        m.processes.push(member(13, 99));
        assert!(m.check().is_err());
        m.processes.pop();
        m.processes[1].ppid = 12;
        assert!(m.check().is_err());
        m.processes[1].ppid = 10;
        m.shared.push(vec![(50, 1)]);
        assert!(m.check().is_err());
    }
}
