//! System V IPC: the semaphore sets and message queues the program got
//! (recorded: semget, msgget), the shared memory segments it attached
//! (found in its maps), and its semaphore undo values (SEM_UNDO). The
//! objects live in the kernel, outside the process: a checkpoint reads
//! them whole and a restart makes them again, at their ids, in an IPC
//! namespace of the job's own. A process's undo values (what the kernel
//! gives back at its exit) are shown nowhere: the semop wrappers count
//! them, and the restarted process takes them again.

use crate::image::{SemUndo, SysvObject};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering::*};

/// System V semaphore sets (bit 32 set) and message queues the program
/// got: (1 << 32 | id) or id, -1 = free. They live in the kernel, not in
/// the process: the image cannot hold them, and a checkpoint says so.
/// Kept across fork (a child knows the ids too).
static SYSV: [AtomicI64; 32] = [const { AtomicI64::new(-1) }; 32];

/// semget (`semaphores`) or msgget returned `id`.
pub fn record_sysv(semaphores: bool, id: i32) {
    let v = ((semaphores as i64) << 32) | id as i64;
    if SYSV.iter().any(|s| s.load(Relaxed) == v) {
        return;
    }
    for s in SYSV.iter() {
        if s.compare_exchange(-1, v, AcqRel, Relaxed).is_ok() {
            return;
        }
    }
}

pub(super) fn snapshot() -> Vec<SysvObject> {
    SYSV.iter()
        .map(|s| s.load(Acquire))
        .filter(|&v| v >= 0)
        .map(|v| {
            let mut o = SysvObject {
                semaphores: v >> 32 != 0,
                id: v as i32,
                ..Default::default()
            };
            o.saved = if o.semaphores {
                save_semaphores(&mut o)
            } else {
                save_messages(&mut o)
            };
            o
        })
        .collect()
}

/// msgrcv: copy message number `msgtyp` without taking it.
const MSG_COPY: i64 = 0o40000;

/// A semaphore set's key, mode and values. Frozen context: raw calls.
fn save_semaphores(o: &mut SysvObject) -> bool {
    // SAFETY: a zeroed semid_ds is valid; IPC_STAT fills it.
    let mut ds: libc::semid_ds = unsafe { core::mem::zeroed() };
    // SAFETY: semctl(IPC_STAT) into a live semid_ds.
    if unsafe { libc::syscall(libc::SYS_semctl, o.id, 0, libc::IPC_STAT, &mut ds) } < 0 {
        return false;
    }
    o.key = ds.sem_perm.__key;
    o.mode = ds.sem_perm.mode as u32 & 0o777;
    let mut values = vec![0u16; ds.sem_nsems as usize];
    // SAFETY: GETALL into an array of sem_nsems values.
    let r = unsafe { libc::syscall(libc::SYS_semctl, o.id, 0, libc::GETALL, values.as_mut_ptr()) };
    o.values = values;
    r >= 0
}

/// A message queue's key, mode and messages (copied, not taken).
fn save_messages(o: &mut SysvObject) -> bool {
    // SAFETY: a zeroed msqid_ds is valid; IPC_STAT fills it.
    let mut ds: libc::msqid_ds = unsafe { core::mem::zeroed() };
    // SAFETY: msgctl(IPC_STAT) into a live msqid_ds.
    if unsafe { libc::syscall(libc::SYS_msgctl, o.id, libc::IPC_STAT, &mut ds) } < 0 {
        return false;
    }
    o.key = ds.msg_perm.__key;
    o.mode = ds.msg_perm.mode as u32 & 0o777;
    let max = (ds.msg_qbytes as usize).clamp(8192, 1 << 20);
    let mut buf = vec![0u8; 8 + max];
    for i in 0..ds.msg_qnum as i64 {
        // SAFETY: msgrcv into a buffer of 8 + max bytes (type, then text).
        let n = unsafe {
            libc::syscall(
                libc::SYS_msgrcv,
                o.id,
                buf.as_mut_ptr(),
                max,
                i,
                libc::IPC_NOWAIT as i64 | MSG_COPY,
            )
        };
        if n < 0 {
            return false;
        }
        let mtype = i64::from_ne_bytes(buf[..8].try_into().unwrap_or_default());
        o.messages.push((
            mtype,
            serde_bytes::ByteBuf::from(buf[8..8 + n as usize].to_vec()),
        ));
    }
    true
}

/// The System V shared memory segments the process has attached (its
/// maps name them "/SYSV<key>", the inode is the id): key, mode, size,
/// whether marked for removal. Frozen context: raw calls.
pub fn shm_objects(maps: &[crate::image::Region]) -> Vec<SysvObject> {
    let mut out: Vec<SysvObject> = Vec::new();
    for r in maps.iter().filter(|r| r.path.starts_with("/SYSV")) {
        let id = r.ino as i32;
        if out.iter().any(|o| o.id == id) {
            continue;
        }
        // SAFETY: a zeroed shmid_ds is valid; IPC_STAT fills it.
        let mut ds: libc::shmid_ds = unsafe { core::mem::zeroed() };
        // SAFETY: shmctl(IPC_STAT) into a live shmid_ds.
        let ok = unsafe { libc::syscall(libc::SYS_shmctl, id, libc::IPC_STAT, &mut ds) } == 0;
        out.push(SysvObject {
            id,
            key: ds.shm_perm.__key,
            mode: ds.shm_perm.mode as u32 & 0o777,
            saved: ok,
            shm_size: Some(ds.shm_segsz as u64),
            removed: ds.shm_perm.mode as u32 & 0o1000 != 0,
            ..Default::default()
        });
    }
    out
}

/// Make the System V objects of `objects` again, each at its id, in this
/// (new, empty) IPC namespace: semaphore values and queued messages as at
/// the checkpoint. For the restart command, once it is in the namespace.
pub fn restore_sysv(objects: &[SysvObject]) -> Result<(), String> {
    for o in objects.iter().filter(|o| o.saved) {
        let what = o.kind();
        let next = if o.semaphores {
            "/proc/sys/kernel/sem_next_id"
        } else if o.shm_size.is_some() {
            "/proc/sys/kernel/shm_next_id"
        } else {
            "/proc/sys/kernel/msg_next_id"
        };
        std::fs::write(next, o.id.to_string())
            .map_err(|e| format!("cannot ask for {what} id {}: {e}", o.id))?;
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | o.mode as i32;
        // A removed segment has no key any more (IPC_PRIVATE).
        let key = if o.removed { libc::IPC_PRIVATE } else { o.key };
        // SAFETY: semget/shmget/msgget with plain integers.
        let id = unsafe {
            match o.shm_size {
                _ if o.semaphores => libc::semget(key, o.values.len().max(1) as i32, flags),
                Some(size) => libc::shmget(key, size as usize, flags),
                None => libc::msgget(key, flags),
            }
        };
        if id != o.id {
            return Err(format!(
                "cannot make {what} {} again (got {id}): {}",
                o.id,
                std::io::Error::last_os_error()
            ));
        }
        if o.semaphores {
            let mut v = o.values.clone();
            // SAFETY: SETALL from an array of nsems values.
            if unsafe { libc::syscall(libc::SYS_semctl, id, 0, libc::SETALL, v.as_mut_ptr()) } < 0 {
                return Err(format!("cannot set the values of {what} {id}"));
            }
        }
        for (mtype, text) in &o.messages {
            let mut m = mtype.to_ne_bytes().to_vec();
            m.extend_from_slice(text);
            // SAFETY: msgsnd of a live (type, text) buffer.
            if unsafe {
                libc::syscall(
                    libc::SYS_msgsnd,
                    id,
                    m.as_ptr(),
                    text.len(),
                    libc::IPC_NOWAIT,
                )
            } < 0
            {
                return Err(format!("cannot queue the messages of {what} {id} again"));
            }
        }
    }
    Ok(())
}

/// How many semaphores' undo values a process keeps.
const UNDO_SLOTS: usize = 64;

/// Undo values: the semaphore (set id << 16 | number, plus 1; 0 = free)
/// and what the kernel adds to it at the process's exit. Threads share
/// them (as the kernel's undo list); a fork child starts with none.
static UNDO_SEM: [AtomicU64; UNDO_SLOTS] = [const { AtomicU64::new(0) }; UNDO_SLOTS];
static UNDO_ADJ: [AtomicI32; UNDO_SLOTS] = [const { AtomicI32::new(0) }; UNDO_SLOTS];
/// A semaphore found no free slot: its undo value is not known.
static UNDO_FULL: AtomicBool = AtomicBool::new(false);

fn undo_key(id: i32, num: u16) -> u64 {
    ((id as u32 as u64) << 16 | num as u64) + 1
}

/// The set id and semaphore number of a (non-zero) `undo_key`.
fn undo_sem(key: u64) -> (i32, u16) {
    (((key - 1) >> 16) as u32 as i32, ((key - 1) & 0xffff) as u16)
}

/// The slot of semaphore `key`, taken if it has none yet.
fn undo_slot(key: u64) -> Option<usize> {
    if let Some(i) = UNDO_SEM.iter().position(|s| s.load(Acquire) == key) {
        return Some(i);
    }
    for (i, s) in UNDO_SEM.iter().enumerate() {
        match s.compare_exchange(0, key, AcqRel, Acquire) {
            Ok(_) => return Some(i),
            Err(k) if k == key => return Some(i),
            Err(_) => {}
        }
    }
    UNDO_FULL.store(true, Relaxed);
    None
}

/// semop or semtimedop with `ops` succeeded on set `id`: each operation
/// with SEM_UNDO changes that semaphore's undo value by its opposite.
/// Lock-free.
pub fn record_semop(id: i32, ops: &[libc::sembuf]) {
    for op in ops
        .iter()
        .filter(|o| o.sem_flg as i32 & libc::SEM_UNDO != 0 && o.sem_op != 0)
    {
        if let Some(i) = undo_slot(undo_key(id, op.sem_num)) {
            UNDO_ADJ[i].fetch_sub(op.sem_op as i32, AcqRel);
        }
    }
}

/// semctl `cmd` on semaphore `num` of set `id` succeeded: SETVAL clears
/// that semaphore's undo value (in every process), SETALL and IPC_RMID
/// those of the whole set.
pub fn record_semctl(id: i32, num: i32, cmd: i32) {
    let whole = match cmd {
        libc::SETVAL => false,
        libc::SETALL | libc::IPC_RMID => true,
        _ => return,
    };
    for (i, s) in UNDO_SEM.iter().enumerate() {
        let k = s.load(Acquire);
        if k == 0 {
            continue;
        }
        let (sid, snum) = undo_sem(k);
        if sid == id && (whole || snum as i32 == num) {
            UNDO_ADJ[i].store(0, Release);
        }
    }
}

/// In a fork child: the kernel gave it no undo values.
pub(super) fn forget_undo() {
    for (s, a) in UNDO_SEM.iter().zip(UNDO_ADJ.iter()) {
        s.store(0, Relaxed);
        a.store(0, Relaxed);
    }
    UNDO_FULL.store(false, Relaxed);
}

/// The process's undo values, and whether some were not kept. Frozen:
/// atomics and allocation only.
pub(super) fn undo_snapshot() -> (Vec<SemUndo>, bool) {
    (
        UNDO_SEM
            .iter()
            .zip(UNDO_ADJ.iter())
            .filter_map(|(s, a)| {
                let (k, adj) = (s.load(Acquire), a.load(Acquire));
                (k != 0 && adj != 0).then(|| {
                    let (id, num) = undo_sem(k);
                    SemUndo { id, num, adj }
                })
            })
            .collect(),
        UNDO_FULL.load(Relaxed),
    )
}

/// Take the undo values `undo` again (a restarted process has none): a
/// pair of operations that leaves the semaphore's value as it is, the
/// one with SEM_UNDO moving the undo value by `adj`. The counts in this
/// memory came back with it. Post-restart context, once the sets exist.
pub(super) fn restore_undo(undo: &[SemUndo]) {
    for u in undo {
        let (n, m) = (u.adj.unsigned_abs().min(i16::MAX as u32) as i16, u.num);
        let undo = (libc::SEM_UNDO | libc::IPC_NOWAIT) as i16;
        let plain = libc::IPC_NOWAIT as i16;
        // The kernel's undo value moves by minus each SEM_UNDO operation.
        let mut ops = if u.adj > 0 {
            [sembuf(m, n, plain), sembuf(m, -n, undo)]
        } else {
            [sembuf(m, n, undo), sembuf(m, -n, plain)]
        };
        // SAFETY: semop on a live array of two operations.
        let r = unsafe { libc::syscall(libc::SYS_semop, u.id, ops.as_mut_ptr(), 2) };
        if r < 0 {
            crate::restart_report::warn(&format!(
                "System V semaphore {} of set {}: cannot take its undo value ({}) again: {}",
                u.num,
                u.id,
                u.adj,
                std::io::Error::last_os_error()
            ));
        }
    }
}

fn sembuf(num: u16, op: i16, flg: i16) -> libc::sembuf {
    libc::sembuf {
        sem_num: num,
        sem_op: op,
        sem_flg: flg,
    }
}
