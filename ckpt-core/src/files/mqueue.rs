//! POSIX message queues (`mq_open`): a descriptor of the mqueue file
//! system. The queue's attributes and every message (with its priority)
//! are saved; a restart makes the queue again by its name (or a hidden
//! one, unlinked, when the program had unlinked it) and queues the
//! messages again, in the order a receiver would have taken them.
//!
//! Verbs:
//! - [`is_mqueue`] tells one from a file (frozen, in `describe`);
//! - [`snapshot`] (frozen): there is no peek for a message queue, so the
//!   messages are received through a descriptor of ckpt's own and sent
//!   again at once, in the same order with the same priorities: the queue
//!   is as it was. Processes of a tree checkpointed together take turns
//!   (a lock on the queue): each saves the whole queue. Not saved (said,
//!   in one line, at the checkpoint): a queue with a notification
//!   registered (putting messages back would fire it), or one ckpt cannot
//!   open for reading and writing;
//! - [`restore`] (post-restart): made with O_EXCL and filled by the first
//!   descriptor that holds its messages; found already there, it is
//!   another process's of the same tree restart (left as it is), or the
//!   queue the killed program left (a restart without an IPC namespace of
//!   its own): its messages are then put back as they were at the
//!   checkpoint, with a line on stderr.
//!
//! A restart with a namespace makes an IPC namespace of its own when the
//! image holds a message queue (as for System V objects): the queue is
//! the program's again, not one a process outside shares.

use crate::image::{Fd, MQueueState};
use crate::restart_report::warn;
use crate::sys;

const MQUEUE_MAGIC: i64 = 0x1980_0202;

/// `struct mq_attr`.
#[repr(C)]
#[derive(Default)]
struct Attr {
    flags: i64,
    maxmsg: i64,
    msgsize: i64,
    curmsgs: i64,
    _pad: [i64; 4],
}

/// Whether descriptor `fd` (a regular file at `path`) is a message queue.
/// Runs frozen.
pub(crate) fn is_mqueue(fd: i32, path: &str) -> bool {
    // A queue's path is "/name": one component.
    if !path.starts_with('/') || path[1..].contains('/') {
        return false;
    }
    // SAFETY: an all-zero statfs is valid; fstatfs writes into it.
    let mut st: libc::statfs = unsafe { core::mem::zeroed() };
    // SAFETY: fstatfs writes into a live statfs.
    unsafe { libc::syscall(libc::SYS_fstatfs, fd, &mut st) == 0 && st.f_type == MQUEUE_MAGIC }
}

/// The queue descriptor `fd` refers to; `with_messages` (its first
/// descriptor in the process): with its messages, taken and put back, or
/// why they could not be. Runs frozen.
pub(crate) fn snapshot(fd: i32, with_messages: bool) -> MQueueState {
    let mut a = Attr::default();
    // SAFETY: mq_getsetattr reads the attributes into a live struct.
    unsafe { libc::syscall(libc::SYS_mq_getsetattr, fd, 0usize, &mut a as *mut Attr) };
    let mut q = MQueueState {
        maxmsg: a.maxmsg,
        msgsize: a.msgsize,
        messages: None,
        unsaved: None,
    };
    if !with_messages {
        return q;
    }
    // A descriptor of ckpt's own that can receive and send, whatever the
    // program's can.
    let own = format!("/proc/self/fd/{fd}\0");
    let path = core::ffi::CStr::from_bytes_with_nul(own.as_bytes()).unwrap_or(c"/");
    let Ok(me) = sys::openat(
        libc::AT_FDCWD,
        path,
        libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
    ) else {
        q.unsaved = Some(
            "its messages are not saved (ckpt cannot open it for reading and writing): a \
             restart makes it again empty"
                .into(),
        );
        return q;
    };
    // Processes of a tree checkpointed together take turns.
    if !take_turn(me) {
        sys::close(me);
        q.unsaved = Some(
            "its messages are not saved (another process held it locked): a restart makes it \
             again empty"
                .into(),
        );
        return q;
    }
    // Counted only now, holding the turn: counted before, while another
    // process of the tree had taken some messages out to save them, the
    // count would miss those, and this process's image (which may be the
    // one a restart fills the queue from) would lose them.
    // SAFETY: mq_getsetattr reads the attributes into a live struct.
    unsafe { libc::syscall(libc::SYS_mq_getsetattr, me, 0usize, &mut a as *mut Attr) };
    // "QSIZE:... NOTIFY:... SIGNO:... NOTIFY_PID:..."
    let mut info = [0u8; 128];
    // SAFETY: read into a live buffer.
    let n = unsafe { libc::read(me, info.as_mut_ptr().cast(), info.len()) };
    let info = &info[..n.max(0) as usize];
    if notify_pid(info) != 0 {
        sys::close(me);
        if a.curmsgs == 0 {
            q.messages = Some(Vec::new());
            q.unsaved = Some(
                "a notification is registered on it (mq_notify), which does not come back at \
                 restart"
                    .into(),
            );
        } else {
            q.unsaved = Some(
                "a notification is registered on it (mq_notify): its messages are not saved \
                 (putting them back would fire it) and the registration does not come back; a \
                 restart makes it again empty"
                    .into(),
            );
        }
        return q;
    }
    let mut buf = vec![0u8; a.msgsize.max(1) as usize];
    let mut messages = Vec::new();
    // Until the queue is empty (a sender outside may add while it is
    // read: at most a queue's worth is taken).
    for _ in 0..a.maxmsg.max(a.curmsgs).max(0) {
        let Some((prio, n)) = receive(me, &mut buf) else {
            break;
        };
        messages.push((prio, serde_bytes::ByteBuf::from(&buf[..n])));
    }
    let mut lost = 0;
    for (prio, m) in &messages {
        if !send(me, *prio, m) {
            lost += 1;
        }
    }
    sys::close(me);
    // A sender outside took the room meanwhile: the running program must
    // not lose messages without a word.
    super::say_not_put_back(lost, messages.len(), fd);
    q.messages = Some(messages);
    q
}

/// NOTIFY_PID in what reading a queue's descriptor gives (one line:
/// "QSIZE:n NOTIFY:n SIGNO:n NOTIFY_PID:n"); 0 when absent.
fn notify_pid(info: &[u8]) -> i64 {
    let key = b"NOTIFY_PID:";
    let Some(at) = info.windows(key.len()).position(|w| w == key) else {
        return 0;
    };
    let digits: Vec<u8> = info[at + key.len()..]
        .iter()
        .copied()
        .skip_while(|c| *c == b' ')
        .take_while(u8::is_ascii_digit)
        .collect();
    sys::parse_i64(&digits).unwrap_or(0)
}

/// An exclusive lock on the queue, waiting at most a second (another
/// process of the tree saving it). Dropped when `me` is closed.
fn take_turn(me: i32) -> bool {
    for _ in 0..1000 {
        // SAFETY: flock on ckpt's own descriptor, never waiting.
        if unsafe { libc::flock(me, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return true;
        }
        if crate::interpose::errno() != libc::EWOULDBLOCK {
            return true; // no locks here: nobody else to wait for either
        }
        let ms = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        // SAFETY: nanosleep from a live timespec.
        unsafe { libc::syscall(libc::SYS_nanosleep, &ms as *const libc::timespec, 0usize) };
    }
    false
}

/// Make the queue of `f` again (filled by the descriptor that holds its
/// messages) and open it as the program had. Post-restart context.
pub(crate) fn restore(f: &Fd, q: &MQueueState) -> Result<i32, String> {
    let attr = Attr {
        maxmsg: q.maxmsg,
        msgsize: q.msgsize,
        ..Attr::default()
    };
    let cname = crate::names::c(&name(f, super::in_tree()))
        .ok_or_else(|| format!("descriptor {}: bad queue name", f.fd))?;
    let open = |flags: i32| -> i64 {
        // SAFETY: mq_open with a NUL-terminated name and a live attr.
        unsafe {
            libc::syscall(
                libc::SYS_mq_open,
                cname.as_ptr(),
                flags | libc::O_CLOEXEC,
                f.mode & 0o777,
                &attr as *const Attr,
            )
        }
    };
    let made = open(libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NONBLOCK);
    if let Some(messages) = &q.messages {
        let filler = if made >= 0 {
            made as i32
        } else if crate::interpose::errno() == libc::EEXIST && !super::in_tree() && !f.deleted {
            // The queue the killed program left (no IPC namespace of the
            // restart's own): put back as it was.
            let e = open(libc::O_RDWR | libc::O_NONBLOCK);
            if e >= 0 {
                drain(e as i32);
                crate::restart_report::note(&format!(
                    "message queue {}: put back as it was at the checkpoint ({} messages)",
                    f.path,
                    messages.len()
                ));
            }
            e as i32
        } else {
            -1
        };
        if filler >= 0 {
            refill(filler, f, messages);
        }
    } else if made >= 0 {
        sys::close(made as i32);
    }
    let fd = open(f.flags & (libc::O_ACCMODE | libc::O_NONBLOCK));
    if fd < 0 {
        return Err(format!(
            "cannot make message queue {} again for descriptor {}: {}",
            f.path,
            f.fd,
            std::io::Error::last_os_error()
        ));
    }
    Ok(fd as i32)
}

/// The name `f`'s queue is made under: its own, or, unlinked by the
/// program, one of ours for that queue ([`unlink_hidden`] removes it once
/// every descriptor of it is open). In a tree, every process of the job
/// that holds the queue must find the one the first made: the name is the
/// queue's inode alone (the restart's IPC namespace holds nothing else).
fn name(f: &Fd, tree: bool) -> String {
    if f.deleted && tree {
        format!("ckpt-unlinked-{}", f.ino)
    } else if f.deleted {
        format!("ckpt-unlinked-{}-{}", sys::getpid(), f.ino)
    } else {
        f.path.trim_start_matches('/').to_string()
    }
}

/// Unlink the names unlinked queues were made under: a single process's
/// once its descriptors are open, a tree's once every process of it has
/// opened its own (after the tree's barrier; the first to come unlinks).
/// Post-restart.
pub(crate) fn unlink_hidden(fds: &[Fd], tree: bool) {
    for f in fds.iter().filter(|f| f.mqueue.is_some() && f.deleted) {
        if let Some(c) = crate::names::c(&name(f, tree)) {
            // SAFETY: mq_unlink of a NUL-terminated name.
            unsafe { libc::syscall(libc::SYS_mq_unlink, c.as_ptr()) };
        }
    }
}

/// Take every message out of queue `fd` (O_NONBLOCK).
fn drain(fd: i32) {
    let mut buf = vec![0u8; 1 << 20];
    while receive(fd, &mut buf).is_some() {}
}

/// Queue `messages` again through `fd` (closed after), in order.
fn refill(fd: i32, f: &Fd, messages: &[(u32, serde_bytes::ByteBuf)]) {
    for (i, (prio, m)) in messages.iter().enumerate() {
        if !send(fd, *prio, m) {
            warn(&format!(
                "message queue {} (descriptor {}): {} of its {} messages cannot be queued again ({}); they are lost",
                f.path,
                f.fd,
                messages.len() - i,
                messages.len(),
                std::io::Error::last_os_error()
            ));
            break;
        }
    }
    sys::close(fd);
}

/// The oldest of the highest-priority messages of queue `fd`, taken into
/// `buf`: (priority, length). Never waits (the descriptor is O_NONBLOCK,
/// the timeout already past).
fn receive(fd: i32, buf: &mut [u8]) -> Option<(u32, usize)> {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut prio: u32 = 0;
    // SAFETY: receive into a live buffer of its length, the priority into a local.
    let n = unsafe {
        libc::syscall(
            libc::SYS_mq_timedreceive,
            fd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut prio as *mut u32,
            &zero as *const libc::timespec,
        )
    };
    (n >= 0).then_some((prio, n as usize))
}

/// Queue message `m` with priority `prio` on `fd`; never waits.
fn send(fd: i32, prio: u32, m: &[u8]) -> bool {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: send from a live buffer; the timeout already past.
    unsafe {
        libc::syscall(
            libc::SYS_mq_timedsend,
            fd,
            m.as_ptr(),
            m.len(),
            prio,
            &zero as *const libc::timespec,
        ) == 0
    }
}
