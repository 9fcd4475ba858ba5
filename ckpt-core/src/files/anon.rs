//! Descriptors of anon-inode objects whose whole state the kernel shows
//! in /proc/self/fdinfo: epoll (every watched descriptor with its events
//! and data), timerfd (clock, setting, unread expirations) and signalfd
//! (its mask). Snapshot parses fdinfo; restore re-creates the object.

use crate::image::{EpollWatch, Fd, FdKind, TimerFdState};
use crate::sys;

/// The descriptors epoll instance `fd` watches ("tfd: N events: X data: Y").
pub fn epoll_watches(fd: i32) -> Vec<EpollWatch> {
    let text = std::fs::read(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
    parse_epoll(&String::from_utf8_lossy(&text))
}

fn parse_epoll(text: &str) -> Vec<EpollWatch> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let mut get = |key: &str| {
                while let Some(w) = it.next() {
                    if w == key {
                        return it.next();
                    }
                }
                None
            };
            let fd = get("tfd:")?.parse().ok()?;
            let events = u32::from_str_radix(get("events:")?, 16).ok()?;
            let data = u64::from_str_radix(get("data:")?, 16).ok()?;
            Some(EpollWatch {
                fd,
                events,
                data,
                via: None,
                lost: false,
                pending: None,
            })
        })
        .collect()
}

/// Bring timerfd `fd`'s expiration count up to date, the way the
/// program's own `timerfd_gettime` or `read` would: a periodic timer that
/// fired and was not read is parked at its past expiry (fdinfo shows
/// it_value 0, "due"), and only this forwards it to its next expiry,
/// adding the periods missed meanwhile to the unread count. Nothing the
/// program can see changes (its next read returns the same count). Returns
/// the time to the next expiry and the interval in ns, exact, with the
/// monotonic and boot clocks read at once (the timer's own is kept as
/// `read_at_ns`). Runs frozen: a raw syscall, two clock reads.
pub fn timerfd_settle(fd: i32) -> Option<Settled> {
    let mut cur: libc::itimerspec = libc::itimerspec {
        it_interval: sys::timespec(0),
        it_value: sys::timespec(0),
    };
    // SAFETY: timerfd_gettime writes one itimerspec into a live local.
    let r = unsafe { libc::syscall(libc::SYS_timerfd_gettime, fd, &mut cur) };
    (r == 0).then(|| Settled {
        value_ns: sys::ts_ns(&cur.it_value),
        interval_ns: sys::ts_ns(&cur.it_interval),
        monotonic_ns: sys::clock_ns(libc::CLOCK_MONOTONIC),
        boottime_ns: sys::clock_ns(libc::CLOCK_BOOTTIME),
    })
}

/// A timerfd's setting as [`timerfd_settle`] read it.
#[derive(Clone, Copy, Debug)]
pub struct Settled {
    pub value_ns: u64,
    pub interval_ns: u64,
    pub monotonic_ns: u64,
    pub boottime_ns: u64,
}

impl Settled {
    /// Put into `t` (parsed from fdinfo, which has the clock).
    pub fn apply(&self, t: &mut TimerFdState) {
        (t.value_ns, t.interval_ns) = (self.value_ns, self.interval_ns);
        t.read_at_ns = crate::timers::time_namespace_clock(t.clock).map(|c| {
            if c == libc::CLOCK_MONOTONIC {
                self.monotonic_ns
            } else {
                self.boottime_ns
            }
        });
    }
}

/// A timerfd's fdinfo: clockid, ticks, settime flags, it_value, it_interval.
/// Read it after [`timerfd_settle`]: before, a periodic timer that fired
/// unread shows it_value 0, which would read as "disarmed".
pub fn timerfd_state(info: &[u8]) -> Option<TimerFdState> {
    let pair = |key: &[u8]| -> Option<u64> {
        // "(sec, nsec)"
        let v = String::from_utf8_lossy(sys::field(info, key)?).into_owned();
        let (s, n) = v
            .trim()
            .trim_matches(|c| c == '(' || c == ')')
            .split_once(',')?;
        Some(s.trim().parse::<u64>().ok()? * 1_000_000_000 + n.trim().parse::<u64>().ok()?)
    };
    let num = |key: &[u8]| -> Option<i64> { sys::parse_i64(sys::field(info, key)?) };
    let mut t = TimerFdState {
        clock: num(b"clockid:")? as i32,
        settime_flags: sys::field(info, b"settime flags:").and_then(sys::parse_oct)? as i32,
        value_ns: pair(b"it_value:")?,
        interval_ns: pair(b"it_interval:")?,
        ticks: num(b"ticks:").unwrap_or(0) as u64,
        realtime_deadline_ns: None,
        read_at_ns: None,
    };
    if wall_clock_deadline(&t) {
        t.realtime_deadline_ns = Some(sys::clock_ns(libc::CLOCK_REALTIME) + t.value_ns);
    }
    Some(t)
}

/// An armed timer set on the wall clock with an absolute time: its
/// deadline stays a wall-clock time across a restart. (Monotonic and boot
/// clocks go on from the checkpoint in the restart's time namespace: their
/// remaining time is what stays.)
fn wall_clock_deadline(t: &TimerFdState) -> bool {
    matches!(t.clock, libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_ALARM)
        && t.settime_flags & libc::TFD_TIMER_ABSTIME != 0
        && t.value_ns > 0
}

/// Re-create an epoll instance (empty: it is filled by [`refill_epoll`]
/// once every descriptor is back), a timerfd or a signalfd. Returns the
/// new descriptor. Post-restart context.
pub fn recreate(f: &Fd) -> Result<i32, String> {
    let cloexec = libc::O_CLOEXEC;
    let nonblock = f.flags & libc::O_NONBLOCK;
    // Expirations of a timerfd that passed while the restart got to it.
    let mut missed = 0;
    // SAFETY: plain syscalls creating new objects.
    let fd = unsafe {
        if f.epoll.is_some() {
            libc::syscall(libc::SYS_epoll_create1, cloexec)
        } else if let Some(t) = &f.timerfd {
            let fd = libc::syscall(libc::SYS_timerfd_create, t.clock, cloexec | nonblock);
            if fd >= 0 {
                missed = arm_timerfd(fd as i32, t);
            }
            fd
        } else if let Some(mask) = f.signalfd_mask {
            libc::syscall(
                libc::SYS_signalfd4,
                -1,
                &mask as *const u64,
                8,
                cloexec | nonblock,
            )
        } else {
            return Err(format!("descriptor {} has no state to re-create", f.fd));
        }
    };
    if fd < 0 {
        return Err(format!(
            "cannot re-create descriptor {} ({}): {}",
            f.fd,
            f.path,
            std::io::Error::from_raw_os_error(crate::interpose::errno())
        ));
    }
    if let Some(t) = f.timerfd.as_ref().filter(|t| t.ticks + missed > 0) {
        // Set after timerfd_settime, which clears the count.
        let ticks = t.ticks + missed;
        // SAFETY: TFD_IOC_SET_TICKS reads one u64 from a live local.
        let r = unsafe { libc::ioctl(fd as i32, TFD_IOC_SET_TICKS, &ticks as *const u64) };
        if r != 0 {
            crate::restart_report::warn(&format!(
                "timerfd {}: its {} unread expiration(s) cannot be put back ({}: this kernel lacks TFD_IOC_SET_TICKS); they are lost",
                f.fd,
                t.ticks,
                std::io::Error::from_raw_os_error(crate::interpose::errno())
            ));
        }
    }
    Ok(fd as i32)
}

/// Arm the new timerfd `fd` as `t` was. Returns the expirations that
/// passed meanwhile, for the count. Post-restart context.
fn arm_timerfd(fd: i32, t: &TimerFdState) -> u64 {
    // An image written before timerfds were settled at checkpoint may show
    // a due periodic timer as value 0: its expiry is among the unread
    // ones, the next is about an interval away.
    let value = if t.value_ns == 0 {
        t.interval_ns
    } else {
        t.value_ns
    };
    if value == 0 {
        return 0;
    }
    let mut missed = 0;
    let (flags, value) = if let Some(d) = t.realtime_deadline_ns {
        // The same wall-clock deadline (past by now: it expires at once,
        // as it would have), with its cancel-on-set flag.
        (t.settime_flags, d)
    } else if let Some(mut d) = crate::timers::continued(t.clock, t.read_at_ns, value) {
        // The same point of a clock that went on from the checkpoint.
        // Expiries passed already are counted here, the next one armed:
        // left to the kernel, they would land between this setting and
        // the count's, which overwrites them.
        let now = sys::clock_ns(crate::timers::time_namespace_clock(t.clock).unwrap_or(t.clock));
        if d <= now {
            if t.interval_ns == 0 {
                return 1;
            }
            let n = (now - d) / t.interval_ns + 1;
            missed = n;
            d += n * t.interval_ns;
        }
        (libc::TFD_TIMER_ABSTIME, d)
    } else {
        // The remaining time, relative.
        (0, value)
    };
    let spec = libc::itimerspec {
        it_interval: sys::timespec(t.interval_ns),
        it_value: sys::timespec(value),
    };
    // SAFETY: timerfd_settime from a live itimerspec, no old value.
    unsafe {
        libc::syscall(
            libc::SYS_timerfd_settime,
            fd,
            flags,
            &spec,
            core::ptr::null_mut::<u8>(),
        )
    };
    missed
}

/// `_IOW('T', 0, u64)`: set a timerfd's unread expiration count (kernels
/// with CONFIG_CHECKPOINT_RESTORE).
const TFD_IOC_SET_TICKS: libc::c_ulong = (1 << 30) | (8 << 16) | ((b'T' as libc::c_ulong) << 8);

/// Whether the file epoll `efd` watches as the `nth` item with number
/// `tfd` is the file at descriptor `cand` (kcmp KCMP_EPOLL_TFD). Frozen.
fn epoll_target_is(efd: i32, tfd: i32, nth: u32, cand: i32) -> bool {
    #[repr(C)]
    struct Slot {
        efd: u32,
        tfd: u32,
        toff: u32,
    }
    let slot = Slot {
        efd: efd as u32,
        tfd: tfd as u32,
        toff: nth,
    };
    let pid = sys::getpid();
    // SAFETY: kcmp of two descriptors of this process with a live slot.
    unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid,
            pid,
            7, /* KCMP_EPOLL_TFD */
            cand,
            &slot,
        ) == 0
    }
}

/// For each watch of epoll `efd`: is the watched file still at its number?
/// If not (closed since, the number maybe reused), find it at another of
/// the process's descriptors `fds`, or mark it lost. Frozen.
pub fn locate_epoll_targets(efd: i32, watches: &mut [EpollWatch], fds: &[i32]) {
    for i in 0..watches.len() {
        let tfd = watches[i].fd;
        let nth = watches[..i].iter().filter(|w| w.fd == tfd).count() as u32;
        if epoll_target_is(efd, tfd, nth, tfd) {
            continue;
        }
        match fds
            .iter()
            .find(|&&c| c != efd && epoll_target_is(efd, tfd, nth, c))
        {
            Some(&c) => watches[i].via = Some(c),
            None => watches[i].lost = true,
        }
    }
}

/// A watch that reports an edge once (EPOLLET) and stays armed: re-adding
/// it on a ready file makes an edge the program may already have taken.
fn edge_only(events: u32) -> bool {
    events & libc::EPOLLET as u32 != 0 && events & libc::EPOLLONESHOT as u32 == 0
}

/// Which edge-triggered watches of epoll `efd` hold an edge the program
/// has not taken yet (`EpollWatch::pending`); the kernel shows it nowhere
/// but in what epoll_wait returns. Asks with epoll_wait (timeout 0) and
/// puts back what that took: EPOLL_CTL_MOD queues a still-ready watch
/// again, and arms a one-shot again. Asks only when that puts back
/// exactly what was there: each edge-triggered or one-shot watch has data
/// of its own (epoll_wait names a watch by its data), none is
/// EPOLLEXCLUSIVE (MOD refuses it) and none lost its file. Frozen: raw
/// syscalls and allocation only.
pub fn probe_epoll_edges(efd: i32, watches: &mut [EpollWatch]) {
    let taken_once = |w: &EpollWatch| w.events & (libc::EPOLLET | libc::EPOLLONESHOT) as u32 != 0;
    if !watches.iter().any(|w| edge_only(w.events)) {
        return;
    }
    let cannot_put_back = watches.iter().filter(|w| taken_once(w)).any(|w| {
        w.lost
            || w.events & libc::EPOLLEXCLUSIVE as u32 != 0
            || watches.iter().filter(|o| o.data == w.data).count() > 1
    });
    if cannot_put_back {
        return;
    }
    let mut got = vec![libc::epoll_event { events: 0, u64: 0 }; watches.len()];
    // SAFETY: epoll_wait writes at most got.len() events into the live buffer.
    let n = unsafe {
        libc::syscall(
            libc::SYS_epoll_wait,
            efd,
            got.as_mut_ptr(),
            got.len() as i32,
            0,
        )
    };
    let got = &got[..n.max(0) as usize];
    for w in watches.iter_mut() {
        let took = got.iter().any(|e| e.u64 == w.data);
        if edge_only(w.events) {
            w.pending = Some(took);
        }
        if took && taken_once(w) {
            epoll_ctl(efd, libc::EPOLL_CTL_MOD, w.via.unwrap_or(w.fd), w);
        }
    }
}

/// epoll_ctl(`efd`, `op`, `target`) with `w`'s events and data; false
/// when the kernel refused (errno set).
fn epoll_ctl(efd: i32, op: i32, target: i32, w: &EpollWatch) -> bool {
    let mut ev = libc::epoll_event {
        events: w.events,
        u64: w.data,
    };
    // SAFETY: epoll_ctl on descriptors of this process with a live event.
    unsafe { libc::syscall(libc::SYS_epoll_ctl, efd, op, target, &mut ev) == 0 }
}

/// Take every event epoll `efd` has ready, and drop them.
fn drain_epoll(efd: i32) {
    let mut got = [libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // SAFETY: epoll_wait writes at most 64 events into the live array.
        let n = unsafe { libc::syscall(libc::SYS_epoll_wait, efd, got.as_mut_ptr(), 64, 0) };
        if n < 64 {
            return;
        }
    }
}

/// Watch again what epoll descriptor `f` watched (every descriptor is at
/// its number by now). Post-restart context.
/// `shared`: the instance is one several processes of a tree hold (made
/// once): a watch lost here is added by the process that holds its file,
/// and the checkpoint said so when none did. `Some(signals)`: whether this
/// process adds the watches of signalfds (`fds`: the process's), which
/// the kernel wakes for the signals of the process that added them
/// ([`crate::tree::Handoff::signal_watches`]).
///
/// Edge-triggered watches whose edge the program had taken are added
/// first, alone, and their new edges (each ready file makes one) taken
/// and dropped; then the rest, so an edge not taken yet comes again. An
/// instance of a tree's is filled by several processes at once: its
/// watches are added as they are.
pub fn refill_epoll(f: &Fd, fds: &[Fd], shared: Option<bool>) {
    let watches = f.epoll.as_deref().unwrap_or_default();
    let signals = |w: &&EpollWatch| {
        let target = w.via.unwrap_or(w.fd);
        shared != Some(false)
            || !fds
                .iter()
                .any(|g| g.fd == target && g.kind == FdKind::SignalFd)
    };
    let watches: Vec<&EpollWatch> = watches.iter().filter(signals).collect();
    let shared = shared.is_some();
    let taken = |w: &EpollWatch| !shared && edge_only(w.events) && w.pending == Some(false);
    let mut firsts = 0;
    for w in watches.iter().filter(|w| taken(w)) {
        firsts += add_watch(f.fd, w, shared) as usize;
    }
    if firsts > 0 {
        drain_epoll(f.fd);
    }
    for w in watches.iter().filter(|w| !taken(w)) {
        add_watch(f.fd, w, shared);
    }
}

/// Add watch `w` to epoll `efd` again; whether it was added.
fn add_watch(efd: i32, w: &EpollWatch, shared: bool) -> bool {
    if w.lost {
        if !shared {
            crate::restart_report::warn(&format!(
                "epoll {efd}: it watched a file (once descriptor {}) the program holds no descriptor to any more: that watch cannot come back",
                w.fd
            ));
        }
        return false;
    }
    if epoll_ctl(efd, libc::EPOLL_CTL_ADD, w.via.unwrap_or(w.fd), w) {
        return true;
    }
    // Already there: an epoll a tree's processes share, refilled by
    // another one of them.
    if crate::interpose::errno() != libc::EEXIST {
        crate::restart_report::warn(&format!(
            "epoll {efd}: cannot watch descriptor {} again",
            w.fd
        ));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_is_parsed() {
        let ep = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\n\
                  tfd:        4 events:       19 data:                4  pos:0 ino:34479 sdev:f\n\
                  tfd:        7 events: 80000001 data:     7f0012345678  pos:0 ino:1 sdev:f\n";
        assert_eq!(
            parse_epoll(ep),
            [
                EpollWatch {
                    fd: 4,
                    events: 0x19,
                    data: 4,
                    via: None,
                    lost: false,
                    pending: None,
                },
                EpollWatch {
                    fd: 7,
                    events: 0x8000_0001,
                    data: 0x7f00_1234_5678,
                    via: None,
                    lost: false,
                    pending: None,
                }
            ]
        );
        let tfd = b"pos:\t0\nflags:\t02000000\nmnt_id:\t17\nino:\t1038\nclockid: 1\nticks: 3\n\
                    settime flags: 01\nit_value: (0, 499912345)\nit_interval: (2, 0)\n";
        assert_eq!(
            timerfd_state(tfd),
            Some(TimerFdState {
                clock: 1,
                settime_flags: 1,
                value_ns: 499_912_345,
                interval_ns: 2_000_000_000,
                ticks: 3,
                realtime_deadline_ns: None,
                read_at_ns: None,
            })
        );
    }
}
