//! The image file: one schema shared by the writer (inside the checkpointed
//! process) and every reader (`ckpt inspect`, `ckpt restart`).
//!
//! Layout:
//! ```text
//! 0      header (HEADER_LEN bytes, little-endian, checksummed)
//! 128    metadata: MessagePack of [`Meta`] (named fields), xxh3-checksummed
//! data   raw page extents, 4 KiB aligned (memory sections; empty until the
//!        memory writer fills them), each described and checksummed in `Meta`
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

/// First bytes of every image.
pub const MAGIC: [u8; 8] = *b"CKPTIMG\0";
/// Bumped on any incompatible change of the header or of [`Meta`].
pub const FORMAT_VERSION: u32 = 1;
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
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::TooShort(n) => write!(f, "not a ckpt image (only {n} bytes)"),
            ImageError::NotAnImage => write!(f, "not a ckpt image (bad magic)"),
            ImageError::Version(v) => write!(
                f,
                "image format version {v} is not supported (this ckpt reads version {FORMAT_VERSION})"
            ),
            ImageError::Arch(a) => write!(f, "image is for another architecture (ELF machine {a}, expected x86_64)"),
            ImageError::HeaderChecksum => write!(f, "corrupt image: header checksum mismatch"),
            ImageError::Truncated { need, have } => {
                write!(f, "truncated image: needs {need} bytes, file has {have}")
            }
            ImageError::MetaChecksum => write!(f, "corrupt image: metadata checksum mismatch"),
            ImageError::Meta(e) => write!(f, "corrupt image: metadata does not decode: {e}"),
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
        if h.version != FORMAT_VERSION {
            return Err(ImageError::Version(h.version));
        }
        if h.arch != ARCH_X86_64 {
            return Err(ImageError::Arch(h.arch));
        }
        Ok(h)
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
    /// Memory regions (filled by the memory writer; empty otherwise).
    pub regions: Vec<Region>,
}

/// Process-wide settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    pub exe: String,
    pub cmdline: Vec<String>,
    pub comm: String,
    pub cwd: String,
    pub umask: u32,
    pub rlimits: Vec<Rlimit>,
    /// Calls of fork/vfork seen since start, and the exec family.
    pub forks: u64,
    pub execs: u64,
    /// The checkpoint signal ckpt reserved in this process.
    pub ckpt_signal: i32,
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
    pub name: String,
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
    pub altstack: Option<AltStack>,
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
    /// Another anon-inode object (epoll, timerfd, signalfd, inotify, ...).
    Anon,
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
    /// The other end of an in-process pipe.
    pub pipe_peer: Option<i32>,
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub size: i64,
    pub mtime_ns: i64,
    pub mnt_id: i32,
    /// An eventfd's counter.
    pub eventfd_count: Option<u64>,
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
    /// SIGEV_THREAD_ID: the logical thread ([`Thread::id`]) it is aimed at.
    pub target_thread: Option<u32>,
    pub target_tid: Option<i32>,
    /// SIGEV_THREAD: the function glibc runs in a new thread.
    pub function: Option<u64>,
    pub interval_ns: u64,
    pub remaining_ns: u64,
    pub overrun: i32,
}

/// An interval timer (setitimer / alarm).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Itimer {
    /// "real", "virtual" or "prof".
    pub which: String,
    pub interval_ns: u64,
    pub remaining_ns: u64,
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

/// One memory region (filled by the memory writer).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
    pub flags: u32,
    pub offset: u64,
    pub path: String,
    /// Raw extents of this region stored in the data section.
    pub extents: Vec<Extent>,
}

/// Pages `[addr, addr+len)` of a region stored at `file_offset`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Extent {
    pub addr: u64,
    pub len: u64,
    pub file_offset: u64,
    pub hash: u64,
}

/// Encode metadata to MessagePack (named fields, so readers of later
/// versions can tell fields apart).
pub fn encode_meta(meta: &Meta, out: &mut Vec<u8>) -> Result<(), String> {
    rmp_serde::encode::write_named(out, meta).map_err(|e| e.to_string())
}

/// Build the whole image (header + metadata, no data section) in memory.
pub fn build(meta: &Meta) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; HEADER_LEN];
    encode_meta(meta, &mut out)?;
    let meta_len = (out.len() - HEADER_LEN) as u64;
    let header = Header {
        version: FORMAT_VERSION,
        arch: ARCH_X86_64,
        page_size: PAGE as u32,
        flags: 0,
        meta_offset: HEADER_LEN as u64,
        meta_len,
        meta_hash: xxhash_rust::xxh3::xxh3_64(&out[HEADER_LEN..]),
        data_offset: 0,
        data_len: 0,
    };
    out[..HEADER_LEN].copy_from_slice(&header.encode());
    Ok(out)
}

/// Parse a whole image held in memory; every check runs before decoding.
pub fn parse(bytes: &[u8]) -> Result<(Header, Meta), ImageError> {
    let header = Header::decode(bytes)?;
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
    let header = Header::decode(&head).map_err(|e| format!("{}: {e}", path.display()))?;
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
                fd: 3,
                kind: FdKind::File,
                path: "/tmp/x".into(),
                deleted: false,
                offset: 42,
                flags: 1,
                cloexec: true,
                origin: "open".into(),
                opened_as: Some("x".into()),
                open_flags: Some(0o1101),
                dup_of: None,
                shares_with: None,
                pipe_peer: None,
                dev: 1,
                ino: 2,
                mode: 0o100644,
                size: 42,
                mtime_ns: 7,
                mnt_id: 1,
                eventfd_count: None,
            }],
            ..Meta::default()
        }
    }

    #[test]
    fn roundtrip() {
        let m = sample();
        let bytes = build(&m).unwrap();
        let (h, back) = parse(&bytes).unwrap();
        assert_eq!(h.meta_offset, HEADER_LEN as u64);
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
        foreign.version = FORMAT_VERSION;
        foreign.arch = 183;
        v[..HEADER_LEN].copy_from_slice(&foreign.encode());
        assert_eq!(parse(&v).unwrap_err(), ImageError::Arch(183));
    }
}
