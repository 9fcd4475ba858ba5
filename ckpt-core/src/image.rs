//! The image file: one schema shared by the writer (inside the checkpointed
//! process) and every reader (`ckpt inspect`, `ckpt restart`).
//!
//! Layout:
//! ```text
//! 0      header (HEADER_LEN bytes, little-endian, checksummed)
//! 4096   data: raw page extents, 4 KiB aligned, each described and
//!        checksummed in `Meta` (restart can map them straight from the file)
//! end    metadata: MessagePack of [`Meta`] (named fields, but each
//!        region's extents packed: see [`extents`]), xxh3-checksummed;
//!        written last, so the extents it lists are known
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

pub mod extents;

/// First bytes of every image.
pub const MAGIC: [u8; 8] = *b"CKPTIMG\0";
/// Bumped on any incompatible change of the header or of [`Meta`].
/// An image that refers to earlier generations ([`Meta::deps`]) carries
/// [`FORMAT_INCREMENTAL`] instead, so a ckpt that cannot follow such
/// references refuses it rather than restoring its pages from the wrong
/// file; a whole image keeps this version.
///
/// 4 and 5 pack each region's extents ([`extents`]); 2 and 3, which name
/// every extent's fields, are still read.
pub const FORMAT_VERSION: u32 = 4;
/// Version of an incremental image (one with [`Meta::deps`]).
pub const FORMAT_INCREMENTAL: u32 = 5;
/// The versions before extents were packed: whole, incremental.
const FORMAT_NAMED: [u32; 2] = [2, 3];

/// Whether an image of format `version` is incremental (refers to
/// earlier images).
pub fn is_incremental(version: u32) -> bool {
    version == FORMAT_INCREMENTAL || version == FORMAT_NAMED[1]
}

/// ELF machine number of x86_64: images are refused on anything else.
pub const ARCH_X86_64: u32 = 62;
/// Size of the fixed header; metadata starts right after it.
pub const HEADER_LEN: usize = 128;
/// Alignment of raw page extents in the file.
pub const PAGE: u64 = 4096;

/// The fixed header at offset 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub arch: u32,
    pub page_size: u32,
    pub flags: u32,
    pub meta_offset: u64,
    pub meta_len: u64,
    pub meta_hash: u64,
    pub data_offset: u64,
    pub data_len: u64,
}

/// Why an image cannot be read. Each variant is one clear line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    TooShort(u64),
    NotAnImage,
    Version(u32),
    Arch(u32),
    HeaderChecksum,
    Truncated { need: u64, have: u64 },
    MetaChecksum,
    Meta(String),
    Layout(String),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::TooShort(n) => write!(f, "not a ckpt image (only {n} bytes)"),
            ImageError::NotAnImage => write!(f, "not a ckpt image (bad magic)"),
            ImageError::Version(v) => write!(
                f,
                "image format version {v} is not supported (this ckpt reads versions {} to {FORMAT_INCREMENTAL})",
                FORMAT_NAMED[0]
            ),
            ImageError::Arch(a) => write!(f, "image is for another architecture (ELF machine {a}, expected x86_64)"),
            ImageError::HeaderChecksum => write!(f, "corrupt image: header checksum mismatch"),
            ImageError::Truncated { need, have } => {
                write!(f, "truncated image: needs {need} bytes, file has {have}")
            }
            ImageError::MetaChecksum => write!(f, "corrupt image: metadata checksum mismatch"),
            ImageError::Meta(e) => write!(f, "corrupt image: metadata does not decode: {e}"),
            ImageError::Layout(e) => write!(f, "corrupt image: {e}"),
        }
    }
}

impl std::error::Error for ImageError {}

impl Header {
    /// Encode, with the header checksum in bytes 80..88.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.arch.to_le_bytes());
        b[16..20].copy_from_slice(&self.page_size.to_le_bytes());
        b[20..24].copy_from_slice(&self.flags.to_le_bytes());
        b[24..32].copy_from_slice(&self.meta_offset.to_le_bytes());
        b[32..40].copy_from_slice(&self.meta_len.to_le_bytes());
        b[40..48].copy_from_slice(&self.meta_hash.to_le_bytes());
        b[48..56].copy_from_slice(&self.data_offset.to_le_bytes());
        b[56..64].copy_from_slice(&self.data_len.to_le_bytes());
        let h = xxhash_rust::xxh3::xxh3_64(&b[0..80]);
        b[80..88].copy_from_slice(&h.to_le_bytes());
        b
    }

    /// Decode and check magic, version, architecture and checksum.
    pub fn decode(b: &[u8]) -> Result<Header, ImageError> {
        if b.len() < HEADER_LEN {
            if b.len() >= 8 && b[0..8] != MAGIC {
                return Err(ImageError::NotAnImage);
            }
            return Err(ImageError::TooShort(b.len() as u64));
        }
        if b[0..8] != MAGIC {
            return Err(ImageError::NotAnImage);
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        if xxhash_rust::xxh3::xxh3_64(&b[0..80]) != u64_at(80) {
            return Err(ImageError::HeaderChecksum);
        }
        if b[88..HEADER_LEN].iter().any(|&x| x != 0) {
            return Err(ImageError::Layout(
                "the header's reserved bytes are not zero".into(),
            ));
        }
        let h = Header {
            version: u32_at(8),
            arch: u32_at(12),
            page_size: u32_at(16),
            flags: u32_at(20),
            meta_offset: u64_at(24),
            meta_len: u64_at(32),
            meta_hash: u64_at(40),
            data_offset: u64_at(48),
            data_len: u64_at(56),
        };
        if !matches!(h.version, FORMAT_VERSION | FORMAT_INCREMENTAL)
            && !FORMAT_NAMED.contains(&h.version)
        {
            return Err(ImageError::Version(h.version));
        }
        if h.arch != ARCH_X86_64 {
            return Err(ImageError::Arch(h.arch));
        }
        Ok(h)
    }

    /// The sections must not overflow, the data must start where the
    /// format puts it, and the metadata must follow the data.
    pub fn check_layout(&self) -> Result<(), ImageError> {
        let data_end = self.data_offset.checked_add(self.data_len);
        let meta_end = self.meta_offset.checked_add(self.meta_len);
        let (Some(data_end), Some(_)) = (data_end, meta_end) else {
            return Err(ImageError::Layout(
                "section sizes in the header overflow".into(),
            ));
        };
        if self.data_offset != DATA_OFFSET {
            return Err(ImageError::Layout(format!(
                "data at offset {}, expected {DATA_OFFSET}",
                self.data_offset
            )));
        }
        if self.meta_offset < data_end {
            return Err(ImageError::Layout(format!(
                "metadata at offset {} overlaps the data (which ends at {data_end})",
                self.meta_offset
            )));
        }
        Ok(())
    }

    /// Bytes the file must have for this header to be complete
    /// (`u64::MAX` when the sizes overflow: such a file cannot exist).
    pub fn required_len(&self) -> u64 {
        let meta = self.meta_offset.checked_add(self.meta_len);
        let data = self.data_offset.checked_add(self.data_len);
        match (meta, data) {
            (Some(m), Some(d)) => m.max(d),
            _ => u64::MAX,
        }
    }
}

/// Everything an image records about the process, except raw page data.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    /// Version of the ckpt that wrote the image.
    pub writer: String,
    /// Wall-clock time of the checkpoint, milliseconds since the epoch.
    pub created_unix_ms: u64,
    /// 1 for the first checkpoint of this process, then 2, 3, ...
    pub seq: u64,
    /// How long the program's threads were stopped, microseconds.
    pub freeze_us: u64,
    pub process: Process,
    pub threads: Vec<Thread>,
    pub fds: Vec<Fd>,
    pub timers: Vec<Timer>,
    pub itimers: Vec<Itimer>,
    pub signals: Vec<SignalAction>,
    /// What the kernel had installed for each signal (restored as is).
    pub signals_kernel: Vec<KernelAction>,
    /// Memory regions, in address order.
    pub regions: Vec<Region>,
    /// Ranges the program asked fork() to skip or to wipe (given again
    /// after a restart).
    #[serde(default)]
    pub fork_advice: Vec<ForkAdvice>,
    /// Other advice the kernel keeps on mappings (given again after a
    /// restart, see `memory::advice`).
    #[serde(default)]
    pub advice: Vec<RangeAdvice>,
    /// Locked memory (locked again after a restart).
    #[serde(default)]
    pub locked: Locked,
    /// Small files the program maps shared, with their contents: a
    /// restart makes one again when it is gone (a JVM deletes its
    /// hsperfdata file at exit).
    #[serde(default)]
    pub saved_files: Vec<SavedFile>,
    /// CLOCK_MONOTONIC and CLOCK_BOOTTIME as the program saw them while
    /// frozen: a restart lets them go on from there (a time namespace),
    /// even after a reboot reset them.
    #[serde(default)]
    pub clocks: Option<Clocks>,
    /// The CPU time the program had used, as it saw it (a restart goes on
    /// counting from there: see `cputime`). None in older images.
    #[serde(default)]
    pub cpu: Option<CpuTimes>,
    /// Where post-restart code lives in the image, and the glibc facts it
    /// needs (found at start-up in the checkpointed process).
    pub restart: RestartInfo,
    /// Earlier images (of the same directory) this one takes unchanged
    /// pages from: an extent with `src` k > 0 lies in `deps[k-1]`. Empty
    /// for a whole image. Flattened: an image never refers to a file
    /// through another one, so restart opens each file once.
    #[serde(default)]
    pub deps: Vec<Dep>,
    /// The write-tracking round this image was taken at (see
    /// `memory::dirty`): the next image may refer to this one for pages
    /// not written since, only if it was taken at the round just before.
    #[serde(default)]
    pub dirty_round: u64,
    /// The first half of a checkpoint (see `memory::stage::stage_live`):
    /// its large regions were read while the program ran, so they hold
    /// no single moment; the image taken right after it stores every page
    /// written since it began and takes the rest from here. Never
    /// restarted alone (it is named `STEM.base`, not a generation).
    #[serde(default)]
    pub precopy: bool,
    /// Contents of files the program had open for writing, as they were
    /// at the checkpoint (see `files::written`): a restart puts back one
    /// that changed since.
    #[serde(default)]
    pub written_files: Vec<WrittenFile>,
    /// Files the program wrote and closed (see `files::closed`), as they
    /// were at the checkpoint: a restart rolls them back too.
    #[serde(default)]
    pub closed_files: Vec<ClosedFile>,
    /// Files the program wrote and closed that ckpt did not keep track of
    /// (too many, or too long a path): the checkpoint says so.
    #[serde(default)]
    pub closed_files_dropped: u64,
    /// The job's log of files its processes opened for writing (in the
    /// job's root: `files::joblog`), and the paths in it at the
    /// checkpoint: a restart writes it back as it was.
    #[serde(default)]
    pub job_log: Option<String>,
    #[serde(default)]
    pub job_written: Vec<String>,
    /// The mark this checkpoint left in the job's log: renames logged
    /// after it were made after the checkpoint (a restart undoes them).
    #[serde(default)]
    pub job_mark: Option<String>,
    /// Wall-clock time once every process of the checkpoint was frozen,
    /// milliseconds since the epoch, rounded up (0 in older images): a
    /// file born after it was made by the run after the checkpoint (one
    /// born between `created_unix_ms` and the freeze is the image's).
    #[serde(default)]
    pub frozen_unix_ms: u64,
    /// The tag of the `ckpt run` job the process belonged to (`CKPT_JOB`,
    /// see `files::joblog::tag`): a restart refuses while processes of
    /// that job still run.
    #[serde(default)]
    pub job: Option<String>,
}

impl Meta {
    /// When the checkpoint was, for birth times (see `frozen_unix_ms`):
    /// older images, a millisecond after `created_unix_ms`.
    pub fn frozen_at(&self) -> std::time::SystemTime {
        let ms = if self.frozen_unix_ms > 0 {
            self.frozen_unix_ms
        } else {
            self.created_unix_ms + 1
        };
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
    }

    /// Bytes of memory the image describes: every extent's length, its
    /// own and those it takes from earlier images.
    pub fn memory_bytes(&self) -> u64 {
        self.regions
            .iter()
            .flat_map(|r| &r.extents)
            .map(|e| e.len)
            .sum()
    }
}

/// A file the program had open for writing, with its contents.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WrittenFile {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub mtime_ns: i64,
    /// Permission bits (a file gone at restart is made again with them).
    pub mode: u32,
    pub contents: serde_bytes::ByteBuf,
}

/// A regular file the program wrote and closed, as it was at the
/// checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClosedFile {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub size: i64,
    pub mtime_ns: i64,
}

/// An earlier image an incremental one takes pages from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Dep {
    /// File name, in the directory of the image that refers to it.
    pub name: String,
    /// That file's metadata checksum (its header's `meta_hash`): the
    /// same name holding another image is refused.
    pub meta_hash: u64,
}

/// What the restorer and post-restart code need to know.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RestartInfo {
    /// Address of the post-restart entry inside the image.
    pub entry: u64,
    /// Top of the stack the entry runs on (a region of the image).
    pub stack_top: u64,
    /// Offset of the cached tid in glibc's `struct pthread`.
    pub tid_offset: u64,
    /// Length glibc registered its rseq areas with (0: none registered).
    pub rseq_len: u32,
    /// Offset of the rseq area from the thread pointer.
    pub rseq_offset: i64,
    /// The address range ckpt kept free for the restorer.
    pub reserve_start: u64,
    pub reserve_len: u64,
}

/// The kernel's description of the address space layout
/// (`prctl(PR_SET_MM_MAP)` restores it, so `ps` and brk work as before).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MmInfo {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// The auxiliary vector, as (type, value) words.
    pub auxv: Vec<u64>,
}

/// Process-wide settings.
/// The kernel keyrings a process made for itself (see
/// `process::keyrings`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyrings {
    /// It has a process keyring (KEY_SPEC_PROCESS_KEYRING).
    pub process: bool,
    /// It joined a session keyring other than the one it started in.
    pub session: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    pub exe: String,
    pub cmdline: Vec<String>,
    pub comm: String,
    pub cwd: String,
    /// The working directory was removed (the program still stands in
    /// it: getcwd fails, relative paths lead nowhere).
    #[serde(default)]
    pub cwd_deleted: bool,
    /// The process led a session of its own (setsid: a daemon, off any
    /// terminal): a restart makes one again, or it would be in the
    /// restarter's session, its terminal's hangup reaching it.
    #[serde(default)]
    pub session_leader: bool,
    /// The extended CPU state features the process was allowed
    /// (arch_prctl ARCH_GET_XCOMP_PERM: AMX tiles once asked for); a
    /// restart asks for them again before any thread goes on.
    #[serde(default)]
    pub xcomp_perm: u64,
    /// The host and domain names of a UTS namespace the program made its
    /// own (unshare, setns); None: the one it started in.
    #[serde(default)]
    pub uts: Option<(String, String)>,
    pub umask: u32,
    pub rlimits: Vec<Rlimit>,
    /// Calls of fork/vfork seen since start, and the exec family.
    pub forks: u64,
    pub execs: u64,
    /// The checkpoint signal ckpt reserved in this process.
    pub ckpt_signal: i32,
    pub mm: MmInfo,
    /// Signals pending for the whole process (bit n-1 = signal n).
    #[serde(default)]
    pub pending: u64,
    /// The process-wide signal queue, in order, with each signal's
    /// siginfo (real-time signals queue one entry per `sigqueue`).
    #[serde(default)]
    pub queued: Vec<QueuedSignal>,
    /// Capability sets: inheritable, permitted, effective, ambient.
    #[serde(default)]
    pub capabilities: Vec<u64>,
    /// Attributes set with prctl (absent in older images).
    #[serde(default)]
    pub prctl: Option<PrctlState>,
    /// Who the program ran as (absent in images of older ckpt versions).
    #[serde(default)]
    pub creds: Option<Credentials>,
    /// System V semaphore sets and message queues the program got (their
    /// ids): not part of the image (see `process::record_sysv`).
    #[serde(default)]
    pub sysv_ipc: Vec<SysvObject>,
    /// Its System V semaphore undo values (SEM_UNDO: what the kernel gives
    /// back at its exit), counted by the semop wrappers; `sem_undo_unknown`:
    /// more semaphores had one than ckpt keeps.
    #[serde(default)]
    pub sem_undo: Vec<SemUndo>,
    #[serde(default)]
    pub sem_undo_unknown: bool,
    /// Keyrings of its own (see `process::keyrings`): they do not come
    /// back.
    #[serde(default)]
    pub keyrings: Keyrings,
    /// Its controlling terminal, as /proc/PID/stat's `tty_nr` (0: none).
    #[serde(default)]
    pub tty_nr: u32,
    /// The capability bounding set (CapBnd) and the securebits
    /// (PR_GET_SECUREBITS); absent in older images.
    #[serde(default)]
    pub bounding: Option<u64>,
    #[serde(default)]
    pub securebits: Option<i32>,
}

/// A System V semaphore's undo value in one process.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SemUndo {
    /// The set's id and the semaphore's number in it.
    pub id: i32,
    pub num: u16,
    /// What the kernel adds to its value when the process exits.
    pub adj: i32,
}

/// A System V IPC object the program got with semget or msgget, as it
/// was at the checkpoint (restart makes it again, at the same id, in an
/// IPC namespace of the restarted program's own).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SysvObject {
    /// A semaphore set, else a message queue.
    pub semaphores: bool,
    pub id: i32,
    /// Its key (0: IPC_PRIVATE) and permission bits.
    #[serde(default)]
    pub key: i32,
    #[serde(default)]
    pub mode: u32,
    /// A semaphore set's values.
    #[serde(default)]
    pub values: Vec<u16>,
    /// A message queue's messages, in order: (type, text).
    #[serde(default)]
    pub messages: Vec<(i64, serde_bytes::ByteBuf)>,
    /// Read whole at the checkpoint (false: gone or unreadable then).
    #[serde(default)]
    pub saved: bool,
    /// A shared memory segment (then `semaphores` is false): its size.
    /// Its pages are in the image with the regions that map it.
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// A segment marked for removal (IPC_RMID) while attached.
    #[serde(default)]
    pub removed: bool,
}

impl SysvObject {
    /// "semaphore set", "message queue" or "shared memory segment".
    pub fn kind(&self) -> &'static str {
        if self.semaphores {
            "semaphore set"
        } else if self.shm_size.is_some() {
            "shared memory segment"
        } else {
            "message queue"
        }
    }
}

/// The program's identity: real, effective, saved and filesystem uids and
/// gids, and its supplementary groups.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    pub groups: Vec<u32>,
}

/// Process attributes the program may have set with prctl.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PrctlState {
    /// PR_GET_DUMPABLE: 0 (no core dumps, no ptrace by the user), 1, 2.
    pub dumpable: i32,
    pub no_new_privs: bool,
    pub child_subreaper: bool,
    pub thp_disable: bool,
    /// Seccomp mode (0 none, 1 strict, 2 filter): cannot be reinstated.
    pub seccomp: i32,
    /// personality(2) flags (ADDR_NO_RANDOMIZE, ...).
    #[serde(default)]
    pub personality: u32,
    /// I/O priority (ioprio_get of the process; 0 = the default).
    #[serde(default)]
    pub ioprio: i32,
    /// PR_GET_KEEPCAPS: capabilities kept across a change of uid.
    #[serde(default)]
    pub keepcaps: bool,
    /// PR_GET_MDWE: memory-deny-write-execute flags (set once, for good).
    #[serde(default)]
    pub mdwe: u32,
    /// /proc/self/oom_score_adj (-1000..1000; None when unread).
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// /proc/self/coredump_filter (None when unread).
    #[serde(default)]
    pub coredump_filter: Option<u32>,
    /// membarrier(2) registrations (the MEMBARRIER_CMD_REGISTER_* bits):
    /// liburcu, JITs and .NET register once and fail (EPERM) without them.
    #[serde(default)]
    pub membarrier: u32,
    /// KSM merging of all its memory (PR_SET_MEMORY_MERGE).
    #[serde(default)]
    pub memory_merge: bool,
}

/// One queued signal and its raw `siginfo_t` (128 bytes).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueuedSignal {
    pub signo: i32,
    pub info: Vec<u8>,
}

/// One resource limit; `None` is RLIM_INFINITY.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rlimit {
    pub resource: i32,
    pub name: String,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
    /// Set by the program (setrlimit/prlimit) rather than inherited.
    pub set_by_program: bool,
}

/// How a thread stood when the checkpoint was taken.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ThreadState {
    /// Parked in the checkpoint signal handler.
    Frozen,
    /// Blocks every signal (glibc's SIGEV_THREAD helper): re-created from
    /// the recorded timers instead of frozen.
    BlocksSignals,
}

/// One thread of the program (ckpt's own threads are never listed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Thread {
    /// Stable identity across restarts: 1 is the main thread, then in
    /// creation order. Timers aimed at a thread refer to this.
    pub id: u32,
    pub tid: i32,
    /// Its name, for people (the comm, invalid UTF-8 replaced).
    pub name: String,
    /// Its name exactly (/proc/self/task/TID/comm without the newline),
    /// given back with PR_SET_NAME at restart.
    #[serde(default, with = "serde_bytes")]
    pub comm: Vec<u8>,
    pub state: ThreadState,
    /// "main", "pthread_create", or "unknown" (made past the wrappers,
    /// e.g. by glibc itself).
    pub origin: String,
    pub detached: bool,
    pub stack_size: u64,
    pub guard_size: u64,
    pub sched_policy: i32,
    pub sched_priority: i32,
    pub inherit_sched: bool,
    pub start_routine: u64,
    pub arg: u64,
    /// Blocked signals (bit n-1 = signal n), the program's view.
    pub sigmask: u64,
    /// Signals pending for this thread only.
    pub pending: u64,
    /// This thread's own queue of those signals, with their siginfo, in
    /// the order they were sent (real-time signals queue several).
    #[serde(default)]
    pub queued: Vec<QueuedSignal>,
    pub altstack: Option<AltStack>,
    /// Thread pointer (FS base): glibc's `struct pthread` of the thread.
    pub fs_base: u64,
    /// GS base (0 unless the program set one: arch_prctl ARCH_SET_GS).
    #[serde(default)]
    pub gs_base: u64,
    /// It had AMX tile registers in use: a restart drops them (said at
    /// the checkpoint).
    #[serde(default)]
    pub tiles_in_use: bool,
    /// Where its interrupted context (`ucontext_t`) lies in memory; a
    /// restarted thread returns through it. 0 when it never parked.
    pub ucontext: u64,
    /// errno as the interrupted code left it.
    pub errno: i32,
    pub robust_head: u64,
    pub robust_len: u64,
    /// The thread's registered rseq area (0: none): glibc's, or one the
    /// program registered itself.
    pub rseq: u64,
    /// Its registered length and signature (0: glibc's, as in older
    /// images).
    #[serde(default)]
    pub rseq_len: u32,
    #[serde(default)]
    pub rseq_sig: u32,
    /// The kernel had an rseq area for the thread that nobody recorded
    /// (registered past ckpt's wrappers): it cannot be registered again.
    #[serde(default)]
    pub rseq_unknown: bool,
    /// The thread had a thread keyring (keyctl): it does not come back.
    #[serde(default)]
    pub keyring: bool,
    /// Scheduling when it was stopped: policy, priority, nice value.
    #[serde(default)]
    pub run_policy: i32,
    #[serde(default)]
    pub run_priority: i32,
    #[serde(default)]
    pub nice: i32,
    /// CPU affinity mask (bit n = CPU n), 64 CPUs per word.
    #[serde(default)]
    pub affinity: Vec<u64>,
    /// Timer slack in ns (PR_GET_TIMERSLACK; 0 in older images: unknown).
    #[serde(default)]
    pub timer_slack_ns: u64,
    /// Its CPU time when it parked (None: it never parked, or an older
    /// image).
    #[serde(default)]
    pub cpu: Option<ThreadCpu>,
    /// Signal it gets when its parent ends (PR_SET_PDEATHSIG; 0: none).
    #[serde(default)]
    pub pdeathsig: i32,
    /// Its own I/O priority (ioprio_get of the thread; None in older
    /// images).
    #[serde(default)]
    pub ioprio: Option<i32>,
    /// Its memory-failure kill policy (PR_MCE_KILL_GET: 0 late, 1 early,
    /// 2 the system's default; None in older images).
    #[serde(default)]
    pub mce_kill: Option<i32>,
    /// Its NUMA memory policy (set_mempolicy; None: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mempolicy: Option<MemPolicy>,
    /// CPUID faulting on (arch_prctl ARCH_SET_CPUID 0).
    #[serde(default, skip_serializing_if = "is_false")]
    pub cpuid_faulting: bool,
    /// What it holds apart from its process (None: it shares all, and in
    /// older images). See `threads::own`.
    #[serde(default)]
    pub own: Option<ThreadOwn>,
}

/// A thread's own credentials, capabilities, working directory and
/// descriptor table, where they are not its process's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ThreadOwn {
    /// Its identity (a raw setresuid/setresgid/setgroups of its own).
    pub creds: Option<Credentials>,
    /// Its capability sets: inheritable, permitted, effective, ambient.
    pub capabilities: Option<Vec<u64>>,
    /// Its own working directory and umask (unshare(CLONE_FS)).
    pub fs: Option<ThreadFs>,
    /// It has its own descriptor table (unshare(CLONE_FILES)): not restored.
    pub files: bool,
}

/// A thread's own working directory and umask.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ThreadFs {
    pub cwd: String,
    pub umask: u32,
}

/// A thread's alternate signal stack.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    pub flags: i32,
}

/// What kind of object a descriptor refers to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FdKind {
    File,
    Directory,
    Pipe,
    Fifo,
    Socket,
    EventFd,
    MemFd,
    Tty,
    CharDevice,
    BlockDevice,
    Epoll,
    TimerFd,
    SignalFd,
    /// An inotify instance (its watches in `Fd::inotify`).
    Inotify,
    /// A namespace file (/proc/PID/ns/*; the link reads "net:[inode]").
    Namespace,
    /// Another anon-inode object (userfaultfd, pidfd, fanotify, ...).
    Anon,
    /// A POSIX message queue (its state in `Fd::mqueue`).
    #[serde(rename = "mqueue")]
    MQueue,
    /// A process descriptor (pidfd_open, clone's CLONE_PIDFD): the
    /// process in `Fd::pidfd_pid`.
    #[serde(rename = "pidfd")]
    PidFd,
}

/// One open descriptor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Fd {
    pub fd: i32,
    pub kind: FdKind,
    /// What /proc/self/fd/N points at (absolute path, `pipe:[ino]`, ...).
    pub path: String,
    /// The file was deleted while open.
    pub deleted: bool,
    pub offset: i64,
    /// File status flags as the kernel reports them (O_ACCMODE, O_APPEND,
    /// O_NONBLOCK, ...), without O_CLOEXEC.
    pub flags: i32,
    pub cloexec: bool,
    /// The call that created it: open, openat, creat, fopen, freopen,
    /// fdopen, dup, dup2, dup3, fcntl_dupfd, pipe, eventfd, memfd_create,
    /// or "inherited" / "unknown".
    pub origin: String,
    /// The path as the program passed it, when recorded.
    pub opened_as: Option<String>,
    /// The flags the program passed to open, when recorded.
    pub open_flags: Option<i32>,
    /// The descriptor this one was duplicated from, when recorded.
    pub dup_of: Option<i32>,
    /// Lowest descriptor sharing the same open file description (offset
    /// and status flags), when there is one other than itself.
    pub shares_with: Option<i32>,
    /// The other end of an in-process pipe or socket pair (for a pipe:
    /// its lowest descriptor of the other direction, found by inode).
    pub pipe_peer: Option<i32>,
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    /// Owner (uid, gid) of the file.
    #[serde(default)]
    pub owner: Option<(u32, u32)>,
    /// A memfd's seals (F_GET_SEALS; F_SEAL_SEAL alone: sealing not allowed).
    #[serde(default)]
    pub seals: Option<i32>,
    pub size: i64,
    pub mtime_ns: i64,
    pub mnt_id: i32,
    /// An eventfd's counter.
    pub eventfd_count: Option<u64>,
    /// Unread bytes in an in-process pipe (on its read end) or at this
    /// end of a stream socket pair.
    #[serde(default, with = "serde_bytes")]
    pub pipe_data: Option<Vec<u8>>,
    /// The whole contents of a file no path leads to any more (a memfd, a
    /// deleted file), so restart can make it again.
    #[serde(default, with = "serde_bytes")]
    pub contents: Option<Vec<u8>>,
    /// Messages queued unread at this end of a datagram or seqpacket
    /// socket pair, in order, each with its boundary.
    #[serde(default)]
    pub messages: Option<Vec<serde_bytes::ByteBuf>>,
    /// How many of the unread messages (or pieces of a stream) at this
    /// end of a socket pair carried descriptors (SCM_RIGHTS): their data
    /// comes back, the descriptors cannot.
    #[serde(default)]
    pub queued_with_descriptors: u32,
    /// An empty message is among `messages` and the checkpoint could not
    /// queue it again fresh: the kernel hides it from every later look,
    /// so a later checkpoint taken before the program reads it loses it.
    #[serde(default)]
    pub empty_hidden: bool,
    /// A unix socket's shutdown(2) state as the kernel reports it
    /// (RCV_SHUTDOWN 1, SEND_SHUTDOWN 2): put back after its unread data.
    #[serde(default)]
    pub shutdown: u8,
    /// SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET, for a socket pair.
    #[serde(default)]
    pub socket_type: Option<i32>,
    /// A socket to the outside: what it is and where it is bound.
    #[serde(default)]
    pub socket: Option<SocketState>,
    /// A pipe's capacity (F_GETPIPE_SZ).
    #[serde(default)]
    pub pipe_size: Option<i32>,
    /// The lengths of the packets at the start of `pipe_data` (a packet
    /// pipe's, written with O_DIRECT: each read gives one); the bytes
    /// after them are plain.
    #[serde(default)]
    pub pipe_packets: Option<Vec<u32>>,
    /// A pipe (or FIFO) end none of whose other ends is open anywhere:
    /// a read end whose writers are all closed (its bytes, then end of
    /// file), a write end whose readers are (EPIPE); or an unnamed unix
    /// socket whose peer was closed (its unread data, then end of file).
    /// It comes back alone.
    #[serde(default)]
    pub peer_closed: bool,
    /// A unix socket's peer, by inode, as the kernel's socket diagnostics
    /// report it (0: closed since); what pairs the ends of a socket pair.
    #[serde(default)]
    pub peer_ino: Option<u64>,
    /// What an epoll descriptor watches.
    #[serde(default)]
    pub epoll: Option<Vec<EpollWatch>>,
    /// A timerfd's clock and setting.
    #[serde(default)]
    pub timerfd: Option<TimerFdState>,
    /// The signals a signalfd takes (bit n-1 = signal n).
    #[serde(default)]
    pub signalfd_mask: Option<u64>,
    /// What an inotify instance watches.
    #[serde(default)]
    pub inotify: Option<Vec<InotifyWatch>>,
    /// Bytes of inotify events queued unread (they cannot be read
    /// without taking them: a restart does not have them).
    #[serde(default)]
    pub inotify_unread: u32,
    /// Locks this process held on the file (fcntl, OFD, flock).
    #[serde(default)]
    pub locks: Vec<FileLock>,
    /// An eventfd made with EFD_SEMAPHORE (a read takes 1, not the count).
    #[serde(default)]
    pub eventfd_semaphore: bool,
    /// Who gets SIGIO/SIGURG (or the signal set) for this open file.
    #[serde(default)]
    pub signal_io: Option<SignalIo>,
    /// A lease the process holds on the file (F_RDLCK 0 or F_WRLCK 1).
    #[serde(default)]
    pub lease: Option<i32>,
    /// A POSIX message queue's attributes and messages.
    #[serde(default)]
    pub mqueue: Option<MQueueState>,
    /// A terminal's settings and window size.
    #[serde(default)]
    pub tty: Option<TtyState>,
    /// A pidfd's process, as the program sees its pid (-1: it ended and
    /// was reaped).
    #[serde(default)]
    pub pidfd_pid: Option<i32>,
    /// That process is this one.
    #[serde(default)]
    pub pidfd_self: bool,
    /// A directory's dnotify mask (fcntl F_NOTIFY), as recorded.
    #[serde(default)]
    pub dnotify: Option<u32>,
}

/// A terminal as the program had set it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TtyState {
    /// `struct termios` as TCGETS gives it.
    pub termios: serde_bytes::ByteBuf,
    /// Window size (0 0: unknown).
    pub rows: u16,
    pub cols: u16,
    /// A pseudo-terminal's master: the number of its slave (/dev/pts/N).
    #[serde(default)]
    pub pty_index: Option<u32>,
    /// Bytes waiting to be read on this descriptor (TIOCINQ): a
    /// pseudo-terminal of the job's own comes back empty (said at the
    /// checkpoint).
    #[serde(default)]
    pub pending: u32,
    /// A master's pair: its slave still locked (no `unlockpt` yet),
    /// packet mode (TIOCPKT), and the slave's foreground process group.
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub packet: bool,
    #[serde(default)]
    pub fg_pgrp: Option<i32>,
}

/// A POSIX message queue as restart makes it again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MQueueState {
    pub maxmsg: i64,
    pub msgsize: i64,
    /// Every message, in the order a receiver takes them, with its
    /// priority; on the process's first descriptor of the queue only
    /// (None on the others, or when they could not be saved).
    pub messages: Option<Vec<(u32, serde_bytes::ByteBuf)>>,
    /// What of the queue does not come back, and why (the checkpoint
    /// says so).
    pub unsaved: Option<String>,
}

/// Signal-driven I/O of an open file: F_SETOWN_EX and F_SETSIG.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignalIo {
    /// F_OWNER_TID 0, F_OWNER_PID 1, F_OWNER_PGRP 2.
    pub owner_type: i32,
    /// The thread, process or process group (0: nobody).
    pub owner: i32,
    /// The signal sent instead of SIGIO (0: SIGIO).
    pub signal: i32,
}

impl Fd {
    /// Descriptor `fd` of `kind` at `path`, read-only, with nothing else
    /// known yet (the snapshot and tests fill in the rest).
    pub fn new(fd: i32, kind: FdKind, path: &str) -> Fd {
        Fd {
            fd,
            kind,
            path: path.into(),
            deleted: false,
            offset: 0,
            flags: 0,
            cloexec: false,
            origin: "unknown".into(),
            opened_as: None,
            open_flags: None,
            dup_of: None,
            shares_with: None,
            pipe_peer: None,
            dev: 0,
            ino: 0,
            mode: 0,
            owner: None,
            seals: None,
            size: 0,
            mtime_ns: 0,
            mnt_id: 0,
            eventfd_count: None,
            pipe_data: None,
            pipe_size: None,
            pipe_packets: None,
            peer_closed: false,
            peer_ino: None,
            messages: None,
            queued_with_descriptors: 0,
            empty_hidden: false,
            shutdown: 0,
            contents: None,
            socket_type: None,
            socket: None,
            epoll: None,
            timerfd: None,
            signalfd_mask: None,
            inotify: None,
            locks: Vec::new(),
            eventfd_semaphore: false,
            signal_io: None,
            lease: None,
            mqueue: None,
            tty: None,
            pidfd_pid: None,
            pidfd_self: false,
            inotify_unread: 0,
            dnotify: None,
        }
    }
}

/// A socket as restart needs it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SocketState {
    pub domain: i32,
    pub socket_type: i32,
    pub protocol: i32,
    pub listening: bool,
    pub connected: bool,
    /// The bound address (a raw sockaddr; empty when unbound).
    #[serde(with = "serde_bytes")]
    pub address: Vec<u8>,
    pub reuse_address: bool,
    pub reuse_port: bool,
    pub v6_only: bool,
    /// Options set again at restart (buffer sizes, keep-alive, timeouts,
    /// TCP_NODELAY, ...): each as getsockopt gave it.
    #[serde(default)]
    pub options: Vec<SockOpt>,
    /// The classic BPF filter attached (SO_ATTACH_FILTER), as its
    /// instructions, 8 bytes each; empty: a filter that cannot be read
    /// back (eBPF), said at the checkpoint; None: no filter.
    #[serde(default, with = "serde_bytes")]
    pub filter: Option<Vec<u8>>,
    /// Listening with connections not yet accepted, or bound for
    /// datagrams with some not yet read: they are not in the image.
    #[serde(default)]
    pub waiting: bool,
    /// The connected peer's address (a raw sockaddr; empty when none).
    #[serde(default, with = "serde_bytes")]
    pub peer: Vec<u8>,
    /// A TCP connection's bytes not sent yet (SIOCOUTQNSD; the peer has
    /// the rest, or they are acknowledged): they cannot be read back to
    /// be saved.
    #[serde(default)]
    pub unsent: u32,
    /// A unix socket bound to a path: the modes of its socket file and of
    /// the directory holding it, for restart to make them again as they
    /// were (None: not a path, or not found at the checkpoint).
    #[serde(default)]
    pub path_modes: Option<(u32, u32)>,
    /// A unix socket bound to a path the program removed since (restart
    /// removes it again once bound).
    #[serde(default)]
    pub path_absent: bool,
    /// A netlink socket's multicast groups (NETLINK_LIST_MEMBERSHIPS: bit
    /// g-1 of the words for group g), those past 32 included.
    #[serde(default)]
    pub memberships: Vec<u32>,
    /// A stream socket with an urgent (out-of-band) byte waiting to be
    /// read: neither it nor the mark in the stream is in the image.
    #[serde(default)]
    pub urgent: bool,
    /// IP multicast groups it joined (see `files::multicast`).
    #[serde(default)]
    pub groups: Vec<McastGroup>,
}

/// One IP multicast membership of a socket and its source filter.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct McastGroup {
    /// The interface (its index) it was joined on.
    pub ifindex: u32,
    /// The group's address: 4 bytes (IPv4) or 16 (IPv6).
    pub group: Vec<u8>,
    /// Filter mode: all sources but `sources` (true), or only them.
    pub exclude: bool,
    /// The filter's source addresses.
    pub sources: Vec<Vec<u8>>,
    /// Sources past those read (said at restart).
    pub sources_unread: u32,
}

/// One socket option: level, name and the bytes getsockopt returned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SockOpt {
    pub level: i32,
    pub name: i32,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

/// Which API a file lock was taken with (they do not conflict alike).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum LockKind {
    /// fcntl F_SETLK/F_SETLKW, lockf: owned by the process.
    Posix,
    /// fcntl F_OFD_SETLK: owned by the open file description.
    Ofd,
    /// flock(2): whole file, owned by the open file description.
    Flock,
}

/// A lock held on a descriptor's file.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileLock {
    pub kind: LockKind,
    pub write: bool,
    /// First byte locked.
    pub start: u64,
    /// Bytes locked; 0 = to the end of the file, however far it grows.
    pub len: u64,
}

/// One watch of an inotify instance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InotifyWatch {
    /// The watch descriptor the program knows it by.
    pub wd: i32,
    /// Events and flags as given to inotify_add_watch (IN_*).
    pub mask: u32,
    /// The watched inode (device as in stat).
    pub dev: u64,
    pub ino: u64,
    /// Where it was found, when the program's path still leads to that
    /// inode (else the watch cannot come back).
    pub path: Option<String>,
}

/// One descriptor an epoll instance watches.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct EpollWatch {
    pub fd: i32,
    pub events: u32,
    pub data: u64,
    /// The watched file is no longer at `fd` (closed since, maybe the
    /// number reused): watch it again through this descriptor of it.
    #[serde(default)]
    pub via: Option<i32>,
    /// The watched file is at no descriptor of the process: it cannot be
    /// watched again.
    #[serde(default)]
    pub lost: bool,
    /// An edge-triggered watch (EPOLLET without EPOLLONESHOT): whether it
    /// held an edge the program had not taken yet. None: not known (an
    /// older image, or one the checkpoint could not ask); the watch is
    /// added again as it is, and a ready file gives a new edge.
    #[serde(default)]
    pub pending: Option<bool>,
}

/// A timerfd as the kernel reports it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct TimerFdState {
    pub clock: i32,
    /// timerfd_settime flags (TFD_TIMER_ABSTIME, ...).
    pub settime_flags: i32,
    /// Time to the next expiry (relative, ns; 0 = disarmed), read after
    /// the timer was brought up to date (a fired periodic timer is armed
    /// for its next expiry, its past ones counted in `ticks`).
    pub value_ns: u64,
    pub interval_ns: u64,
    /// Expirations not yet read.
    pub ticks: u64,
    /// An absolute CLOCK_REALTIME setting (TFD_TIMER_ABSTIME): its next
    /// expiry as a wall-clock time (ns since the epoch), so a restart
    /// later keeps the same deadline.
    #[serde(default)]
    pub realtime_deadline_ns: Option<u64>,
    /// The timer's clock when `value_ns` was read (monotonic and boot
    /// clocks): see [`Clocks`].
    #[serde(default)]
    pub read_at_ns: Option<u64>,
}

/// How a POSIX timer notifies.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Notify {
    Signal,
    None,
    Thread,
    ThreadId,
}

/// One POSIX timer (timer_create).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Timer {
    /// The program's timer_t, as it holds it.
    pub timer_id: u64,
    /// The kernel's timer id.
    pub kernel_id: i32,
    pub clock: i32,
    pub notify: Notify,
    pub signo: i32,
    pub sigev_value: u64,
    /// The value the kernel delivers (differs from `sigev_value` for
    /// SIGEV_THREAD timers, which ckpt's helper thread runs).
    #[serde(default)]
    pub kernel_value: u64,
    /// SIGEV_THREAD_ID: the logical thread ([`Thread::id`]) it is aimed at.
    pub target_thread: Option<u32>,
    pub target_tid: Option<i32>,
    /// SIGEV_THREAD: the function glibc runs in a new thread.
    pub function: Option<u64>,
    pub interval_ns: u64,
    pub remaining_ns: u64,
    pub overrun: i32,
    /// Set with TIMER_ABSTIME on the wall clock: its next expiry as a
    /// wall-clock time (ns since the epoch), kept across a restart.
    #[serde(default)]
    pub realtime_deadline_ns: Option<u64>,
    /// The timer's clock when `remaining_ns` was read (monotonic and boot
    /// clocks): see [`Clocks`].
    #[serde(default)]
    pub read_at_ns: Option<u64>,
}

/// An interval timer (setitimer / alarm).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Itimer {
    /// "real", "virtual" or "prof".
    pub which: String,
    pub interval_ns: u64,
    pub remaining_ns: u64,
    /// CLOCK_MONOTONIC when `remaining_ns` was read ("real" only).
    #[serde(default)]
    pub read_at_ns: Option<u64>,
}

/// The program's disposition of one signal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignalAction {
    pub signo: i32,
    pub name: String,
    /// "default", "ignore" or "handler".
    pub disposition: String,
    pub handler: u64,
    pub flags: u64,
    pub mask: u64,
    pub restorer: u64,
}

/// What a memory region is, which decides how restart rebuilds it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RegionKind {
    /// Private anonymous memory (heap, stacks, malloc arenas, ...):
    /// rebuilt from its stored pages, zero elsewhere.
    Anonymous,
    /// Private mapping of a file: mapped from the file again, written
    /// pages overlaid from the image.
    FilePrivate,
    /// Shared mapping of a file: mapped from the file (its contents are
    /// the file's).
    FileShared,
    /// Shared memory with no file to map (shared anonymous, memfd,
    /// deleted file): rebuilt from its stored pages.
    SharedAnonymous,
    /// Provided by the kernel (vdso, vvar): moved, never stored.
    Special,
}

/// A signal's action as the kernel holds it (`struct kernel_sigaction`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelAction {
    pub signo: i32,
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// A NUMA memory policy: a thread's (set_mempolicy) or a region's
/// (mbind).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemPolicy {
    /// MPOL_* mode with its MPOL_F_* mode flags, as get_mempolicy says.
    pub mode: i32,
    /// Node mask, 64 nodes per word, trailing zero words left out.
    pub nodes: Vec<u64>,
}

impl MemPolicy {
    /// The policy of `mode` over `nodes`; None for the default (MPOL_DEFAULT,
    /// or unread: a negative mode).
    pub fn of(mode: i32, nodes: impl Iterator<Item = u64>) -> Option<MemPolicy> {
        if mode <= 0 {
            return None;
        }
        let mut nodes: Vec<u64> = nodes.collect();
        while nodes.last() == Some(&0) {
            nodes.pop();
        }
        Some(MemPolicy { mode, nodes })
    }
}

/// One memory region (a line of /proc/self/maps).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    /// PROT_READ | PROT_WRITE | PROT_EXEC bits.
    pub prot: u32,
    pub shared: bool,
    /// The main thread's stack (mapped MAP_GROWSDOWN again).
    pub grows_down: bool,
    pub kind: RegionKind,
    pub offset: u64,
    /// The backing file, or the kernel's name ("[heap]", "[vdso]", ...).
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    /// Mapped MAP_NORESERVE (smaps VmFlags `nr`): no swap or commit charge
    /// is reserved for it, so it may be far larger than memory (the
    /// reservations of ThreadSanitizer, Go, JVMs). Mapped so again.
    #[serde(default)]
    pub noreserve: bool,
    /// A writable shared mapping of a file whose pages the image keeps
    /// (`extents`; zero pages left out): how many bytes from `start` they
    /// stand for (up to the file's end at the checkpoint, to the byte). What the killed
    /// run wrote through the mapping after the checkpoint stays in the
    /// file, so a restart writes these back into it before mapping it.
    /// 0: not kept (read-only, over the limit, or an older image).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub kept: u64,
    /// Raw extents of this region stored in the data section (packed:
    /// see [`extents`]).
    #[serde(with = "extents")]
    pub extents: Vec<Extent>,
    /// Guard pages in it (MADV_GUARD_INSTALL), as (start, length): not
    /// read (a read kills the reader); installed again at restart (see
    /// `memory::guards`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<(u64, u64)>,
    /// Sealed (mseal): sealed again at restart (see `memory::guards`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub sealed: bool,
    /// Its own NUMA memory policy (mbind; None: none): given again at
    /// restart (see `memory::guards`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mempolicy: Option<MemPolicy>,
}

/// A file saved with the image (see [`Meta::saved_files`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SavedFile {
    pub path: String,
    pub ino: u64,
    pub mode: u32,
    #[serde(with = "serde_bytes")]
    pub contents: Vec<u8>,
}

/// The CPU time a process had used, as the program saw it (the kernel's
/// counts plus what an earlier restart added).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CpuTimes {
    /// CLOCK_PROCESS_CPUTIME_ID, nanoseconds.
    pub process_ns: u64,
    /// getrusage(RUSAGE_SELF): user and system time in microseconds, then
    /// the 14 other fields of `struct rusage` in their order (ru_maxrss
    /// first).
    pub usage: [i64; 16],
    /// getrusage(RUSAGE_CHILDREN), the same way.
    pub children: [i64; 16],
    /// times(): tms_utime, tms_stime, tms_cutime, tms_cstime and its
    /// return value, in clock ticks.
    pub tms: [i64; 5],
}

/// The CPU time one thread had used, as the program saw it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ThreadCpu {
    /// CLOCK_THREAD_CPUTIME_ID, nanoseconds.
    pub ns: u64,
    /// getrusage(RUSAGE_THREAD) user and system time, microseconds.
    pub user_us: i64,
    pub system_us: i64,
}

/// Two clocks in nanoseconds. A restart in a time namespace of its own
/// makes them go on from these; timers on them are then armed for the
/// clock reading taken with their remaining time plus that time, so they
/// expire where they would have, not later by however long the restart
/// took to get to them (see `timers::continued`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Clocks {
    pub monotonic_ns: u64,
    pub boottime_ns: u64,
}

/// Memory the program locked: the locked ranges, and the flags of its
/// last mlockall (MCL_FUTURE locks later mappings too; 0 = none).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Locked {
    pub ranges: Vec<(u64, u64)>,
    pub mlockall_flags: i32,
    /// Ranges locked as they are touched (mlock2 MLOCK_ONFAULT), not all
    /// at once.
    #[serde(default)]
    pub on_fault: Vec<(u64, u64)>,
}

/// `[start, end)` was advised MADV_WIPEONFORK (`wipe`) or MADV_DONTFORK.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ForkAdvice {
    pub start: u64,
    pub end: u64,
    pub wipe: bool,
}

/// `[start, end)` carries these madvise values (MADV_DONTDUMP, ...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RangeAdvice {
    pub start: u64,
    pub end: u64,
    pub advice: Vec<i32>,
}

/// Pages `[addr, addr+len)` of a region stored at `file_offset`.
///
/// Stored as they are (`codec` 0: `len` bytes at `file_offset`), or
/// compressed: then `file_offset` holds a block of `stored` bytes that
/// decompresses to exactly `block` bytes, and this extent's pages are
/// `[skip, skip + len)` of those. An image's own compressed block is one
/// extent (`skip` 0, `block` == `len`); a reference into an earlier image
/// may take any page-aligned part of one of its blocks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Extent {
    pub addr: u64,
    pub len: u64,
    pub file_offset: u64,
    /// xxh3 of the bytes stored at `file_offset` (`len` of them, or the
    /// `stored` ones of a compressed block); 0 for a reference: the
    /// earlier image's own extents carry the checksums of those bytes.
    pub hash: u64,
    /// 0: in this image's data section; k > 0: at `file_offset` of
    /// [`Meta::deps`]`[k-1]` (pages unchanged since that image).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub src: u32,
    /// 0: stored as they are; else a [`Codec`] number.
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub codec: u8,
    /// Compressed: bytes stored at `file_offset`.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub stored: u64,
    /// Compressed: the block's length once decompressed.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub block: u64,
    /// Compressed: where this extent's pages begin in the decompressed block.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub skip: u64,
}

impl Extent {
    /// Bytes this extent's storage takes in the file it is in (a
    /// compressed block is padded to a whole page).
    pub fn footprint(&self) -> u64 {
        if self.codec == 0 {
            self.len
        } else {
            self.stored.div_ceil(PAGE) * PAGE
        }
    }
}

/// How an extent's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Lz4 = 1,
    Zstd = 2,
}

impl Codec {
    pub fn from_u8(v: u8) -> Option<Codec> {
        match v {
            1 => Some(Codec::Lz4),
            2 => Some(Codec::Zstd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    /// `lz4`, `zstd`; `none`/`off` is `Ok(None)`.
    pub fn parse(s: &str) -> Result<Option<Codec>, String> {
        match s {
            "lz4" => Ok(Some(Codec::Lz4)),
            "zstd" => Ok(Some(Codec::Zstd)),
            "none" | "off" | "no" => Ok(None),
            _ => Err(format!("unknown compression {s:?}: lz4, zstd or none")),
        }
    }
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_zero_u8(v: &u8) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// Encode metadata to MessagePack (named fields, so readers of later
/// versions can tell fields apart).
pub fn encode_meta(meta: &Meta, out: &mut Vec<u8>) -> Result<(), String> {
    rmp_serde::encode::write_named(out, meta).map_err(|e| e.to_string())
}

/// Where the data section starts.
pub const DATA_OFFSET: u64 = PAGE;

/// The header for metadata `meta_bytes` written at `meta_offset`, after a
/// data section of `data_len` bytes.
pub fn header_for(meta_bytes: &[u8], meta_offset: u64, data_len: u64) -> Header {
    Header {
        version: FORMAT_VERSION,
        arch: ARCH_X86_64,
        page_size: PAGE as u32,
        flags: 0,
        meta_offset,
        meta_len: meta_bytes.len() as u64,
        meta_hash: xxhash_rust::xxh3::xxh3_64(meta_bytes),
        data_offset: DATA_OFFSET,
        data_len,
    }
}

/// Build a whole image without memory (header, empty data, metadata) in
/// memory: for tests and tools.
pub fn build(meta: &Meta) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; DATA_OFFSET as usize];
    encode_meta(meta, &mut out)?;
    let header = header_for(&out[DATA_OFFSET as usize..], DATA_OFFSET, 0);
    out[..HEADER_LEN].copy_from_slice(&header.encode());
    Ok(out)
}

/// Parse a whole image held in memory; every check runs before decoding.
pub fn parse(bytes: &[u8]) -> Result<(Header, Meta), ImageError> {
    let header = Header::decode(bytes)?;
    header.check_layout()?;
    let need = header.required_len();
    if (bytes.len() as u64) < need {
        return Err(ImageError::Truncated {
            need,
            have: bytes.len() as u64,
        });
    }
    let lo = header.meta_offset as usize;
    let meta = decode_meta(&header, &bytes[lo..lo + header.meta_len as usize])?;
    Ok((header, meta))
}

/// Read and parse an image file's header and metadata.
pub fn read_file(path: &std::path::Path) -> Result<(Header, Meta), String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file_len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut head = vec![0u8; HEADER_LEN.min(file_len as usize)];
    f.read_exact(&mut head)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let header = Header::decode(&head)
        .and_then(|h| h.check_layout().map(|()| h))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let need = header.required_len();
    if file_len < need {
        let e = ImageError::Truncated {
            need,
            have: file_len,
        };
        return Err(format!("{}: {e}", path.display()));
    }
    use std::io::{Seek, SeekFrom};
    let mut meta = vec![0u8; header.meta_len as usize];
    f.seek(SeekFrom::Start(header.meta_offset))
        .and_then(|_| f.read_exact(&mut meta))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let m = decode_meta(&header, &meta).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((header, m))
}

/// A lock on a directory of images. A writer that prunes (folds, renames,
/// removes images) holds it exclusively; a restart holds it shared while
/// it opens an image and the earlier images it takes pages from, so no
/// prune renames or removes one in between (open files stay readable).
/// Released when dropped.
pub struct DirLock {
    _dir: std::fs::File,
}

impl DirLock {
    /// Lock `dir`, waiting up to `wait_ms` for a holder to let go (then
    /// `WouldBlock`). The callers go on without it when it cannot be
    /// had: it guards against a race, it is not a permission.
    pub fn take(dir: &std::path::Path, exclusive: bool, wait_ms: u64) -> std::io::Result<DirLock> {
        use std::os::unix::io::AsRawFd;
        let f = std::fs::File::open(dir)?;
        let how = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        let mut waited = 0;
        loop {
            // SAFETY: flock on a descriptor we hold, without blocking.
            if unsafe { libc::flock(f.as_raw_fd(), how | libc::LOCK_NB) } == 0 {
                return Ok(DirLock { _dir: f });
            }
            let e = std::io::Error::last_os_error();
            let busy = e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::Interrupted;
            if !busy || waited >= wait_ms {
                return Err(e);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            waited += 5;
        }
    }
}

/// Check the metadata's checksum, then decode it.
fn decode_meta(header: &Header, meta_bytes: &[u8]) -> Result<Meta, ImageError> {
    if xxhash_rust::xxh3::xxh3_64(meta_bytes) != header.meta_hash {
        return Err(ImageError::MetaChecksum);
    }
    rmp_serde::from_slice(meta_bytes).map_err(|e| ImageError::Meta(e.to_string()))
}

/// Name of a signal number ("SIGINT", "SIGRTMIN+3").
pub fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 32] = [
        "0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match sig {
        1..=31 => NAMES[sig as usize].to_string(),
        32..=64 => format!("SIGRT{}", sig - 32),
        _ => format!("signal {sig}"),
    }
}

/// Name of a clock id.
pub fn clock_name(clock: i32) -> String {
    match clock {
        0 => "CLOCK_REALTIME".into(),
        1 => "CLOCK_MONOTONIC".into(),
        2 => "CLOCK_PROCESS_CPUTIME_ID".into(),
        3 => "CLOCK_THREAD_CPUTIME_ID".into(),
        7 => "CLOCK_BOOTTIME".into(),
        8 => "CLOCK_REALTIME_ALARM".into(),
        9 => "CLOCK_BOOTTIME_ALARM".into(),
        11 => "CLOCK_TAI".into(),
        c if c < 0 => format!("cpu clock {c}"),
        c => format!("clock {c}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Meta {
        Meta {
            writer: "test".into(),
            seq: 3,
            fds: vec![Fd {
                offset: 42,
                flags: 1,
                cloexec: true,
                origin: "open".into(),
                opened_as: Some("x".into()),
                open_flags: Some(0o1101),
                dev: 1,
                ino: 2,
                mode: 0o100644,
                size: 42,
                mtime_ns: 7,
                mnt_id: 1,
                ..Fd::new(3, FdKind::File, "/tmp/x")
            }],
            ..Meta::default()
        }
    }

    #[test]
    fn roundtrip() {
        let m = sample();
        let bytes = build(&m).unwrap();
        let (h, back) = parse(&bytes).unwrap();
        assert_eq!(h.meta_offset, DATA_OFFSET);
        assert_eq!(back, m);
    }

    #[test]
    fn every_damage_is_refused() {
        let bytes = build(&sample()).unwrap();
        assert_eq!(parse(&bytes[..10]).unwrap_err(), ImageError::TooShort(10));
        assert_eq!(
            parse(b"hello world, this is not an image").unwrap_err(),
            ImageError::NotAnImage
        );
        let cut = &bytes[..bytes.len() - 1];
        assert!(matches!(
            parse(cut).unwrap_err(),
            ImageError::Truncated { .. }
        ));
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert_eq!(parse(&bad).unwrap_err(), ImageError::MetaChecksum);
        let mut bad = bytes.clone();
        bad[30] ^= 1;
        assert_eq!(parse(&bad).unwrap_err(), ImageError::HeaderChecksum);
        let mut foreign = Header::decode(&bytes).unwrap();
        foreign.version = 99;
        let mut v = bytes.clone();
        v[..HEADER_LEN].copy_from_slice(&foreign.encode());
        assert_eq!(parse(&v).unwrap_err(), ImageError::Version(99));
        // Images of the versions before extents were packed are read.
        for old in FORMAT_NAMED {
            foreign.version = old;
            v[..HEADER_LEN].copy_from_slice(&foreign.encode());
            assert!(parse(&v).is_ok(), "version {old}");
        }
        foreign.version = FORMAT_VERSION;
        foreign.arch = 183;
        v[..HEADER_LEN].copy_from_slice(&foreign.encode());
        assert_eq!(parse(&v).unwrap_err(), ImageError::Arch(183));
    }
}
