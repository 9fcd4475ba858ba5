//! POSIX timers and interval timers. The table keeps what `timer_create`
//! was asked (clock, how to notify, the target thread as a logical thread
//! id rather than a tid that changes across restarts); the kernel tells
//! the remaining time and interval at snapshot.
//!
//! glibc (2.34+) hands out the kernel's timer id as the `timer_t` for
//! SIGEV_SIGNAL/NONE/THREAD_ID timers; for SIGEV_THREAD it hands out a
//! pointer to its own record, shifted right by one with the top bit set,
//! whose first field is the kernel id. [`kernel_id`] decodes both.

use crate::image::{Itimer, Notify, Timer};
use crate::sys;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicU8, Ordering::*};

/// POSIX timers tracked at once.
pub const MAX_TIMERS: usize = 1024;

struct Slot {
    seq: AtomicU32,
    used: AtomicU8,
    timer_id: AtomicU64,
    clock: AtomicI32,
    notify: AtomicI32,
    signo: AtomicI32,
    value: AtomicU64,
    kernel_value: AtomicU64,
    target_id: AtomicU32,
    target_tid: AtomicI32,
    function: AtomicU64,
    /// The wall-clock time (ns since the epoch) last given with
    /// TIMER_ABSTIME to a CLOCK_REALTIME timer; 0: none.
    absolute: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    seq: AtomicU32::new(0),
    used: AtomicU8::new(0),
    timer_id: AtomicU64::new(0),
    clock: AtomicI32::new(0),
    notify: AtomicI32::new(0),
    signo: AtomicI32::new(0),
    value: AtomicU64::new(0),
    kernel_value: AtomicU64::new(0),
    target_id: AtomicU32::new(0),
    target_tid: AtomicI32::new(0),
    function: AtomicU64::new(0),
    absolute: AtomicU64::new(0),
};

static SLOTS: [Slot; MAX_TIMERS] = [EMPTY; MAX_TIMERS];

/// The kernel's id behind a glibc `timer_t`.
pub fn kernel_id(timer_id: u64) -> i32 {
    if (timer_id as i64) < 0 {
        let rec = (timer_id << 1) as *const i32;
        // SAFETY: glibc encodes SIGEV_THREAD timers as a pointer to its
        // live record, whose first field is the kernel timer id.
        unsafe { rec.read_volatile() }
    } else {
        timer_id as i32
    }
}

/// What `timer_create` was given (decoded from its `sigevent`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sigevent {
    pub notify: i32,
    pub signo: i32,
    pub value: u64,
    pub tid: i32,
    pub function: u64,
    /// The value the kernel delivers, when not `value` (SIGEV_THREAD
    /// timers run by ckpt: their record index).
    pub kernel_value: u64,
}

impl Sigevent {
    /// Decode a C `struct sigevent` (null = SIGEV_SIGNAL with SIGALRM).
    ///
    /// # Safety
    /// `sev` is null or points to a valid `struct sigevent`.
    pub unsafe fn from_raw(sev: *const libc::sigevent) -> Sigevent {
        if sev.is_null() {
            return Sigevent {
                notify: libc::SIGEV_SIGNAL,
                signo: libc::SIGALRM,
                ..Sigevent::default()
            };
        }
        let s = &*sev;
        // glibc's union after the three fixed fields: the tid for
        // SIGEV_THREAD_ID, the function pointer for SIGEV_THREAD.
        let tail = (sev as *const u8).add(16);
        Sigevent {
            notify: s.sigev_notify,
            signo: s.sigev_signo,
            value: s.sigev_value.sival_ptr as u64,
            tid: if s.sigev_notify == libc::SIGEV_THREAD_ID {
                (tail as *const i32).read()
            } else {
                0
            },
            function: if s.sigev_notify == libc::SIGEV_THREAD {
                (tail as *const u64).read()
            } else {
                0
            },
            kernel_value: 0,
        }
    }
}

/// timer_create succeeded with `timer_id`.
pub fn record_create(timer_id: u64, clock: i32, ev: &Sigevent) {
    let target_id = if ev.notify == libc::SIGEV_THREAD_ID || ev.tid != 0 {
        crate::threads::id_of_tid(ev.tid).unwrap_or(0)
    } else {
        0
    };
    for s in SLOTS.iter() {
        if s.used.load(Relaxed) == 0 && s.used.compare_exchange(0, 2, Acquire, Relaxed).is_ok() {
            s.seq.fetch_add(1, Acquire);
            s.timer_id.store(timer_id, Relaxed);
            s.clock.store(clock, Relaxed);
            s.notify.store(ev.notify, Relaxed);
            s.signo.store(ev.signo, Relaxed);
            s.value.store(ev.value, Relaxed);
            s.kernel_value.store(
                if ev.kernel_value != 0 {
                    ev.kernel_value
                } else {
                    ev.value
                },
                Relaxed,
            );
            s.target_tid.store(ev.tid, Relaxed);
            s.target_id.store(target_id, Relaxed);
            s.function.store(ev.function, Relaxed);
            s.absolute.store(0, Relaxed);
            s.seq.fetch_add(1, Release);
            s.used.store(1, Release);
            return;
        }
    }
}

/// How the live timer `timer_id` was created.
pub fn find(timer_id: u64) -> Option<Sigevent> {
    SLOTS
        .iter()
        .find(|s| s.used.load(Acquire) == 1 && s.timer_id.load(Relaxed) == timer_id)
        .map(|s| Sigevent {
            notify: s.notify.load(Relaxed),
            signo: s.signo.load(Relaxed),
            value: s.value.load(Relaxed),
            tid: s.target_tid.load(Relaxed),
            function: s.function.load(Relaxed),
            kernel_value: s.kernel_value.load(Relaxed),
        })
}

/// The clock the live timer `timer_id` counts.
pub fn clock_of(timer_id: u64) -> Option<i32> {
    SLOTS
        .iter()
        .find(|s| s.used.load(Acquire) == 1 && s.timer_id.load(Relaxed) == timer_id)
        .map(|s| s.clock.load(Relaxed))
}

/// timer_settime(timer_id, TIMER_ABSTIME, value) succeeded: on a
/// wall-clock timer, its deadline stays a wall-clock time across a
/// restart (a later relative setting, which no wrapper sees, is told
/// from it at the checkpoint: the kernel's expiry no longer matches).
pub fn record_absolute(timer_id: u64, value: &libc::timespec) {
    for s in SLOTS.iter() {
        if s.used.load(Acquire) == 1
            && s.timer_id.load(Relaxed) == timer_id
            && matches!(
                s.clock.load(Relaxed),
                libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_ALARM
            )
        {
            s.absolute.store(sys::ts_ns(value), Relaxed);
        }
    }
}

/// The wall-clock deadline of a timer last set with TIMER_ABSTIME
/// (`absolute`), when the kernel's expiry (`remaining_ns` from now) is
/// still that one or one of its periods. Runs frozen.
fn still_absolute(absolute: u64, remaining_ns: u64, interval_ns: u64) -> Option<u64> {
    if absolute == 0 || remaining_ns == 0 {
        return None;
    }
    let next = sys::clock_ns(libc::CLOCK_REALTIME) + remaining_ns;
    let off = next.checked_sub(absolute)?;
    let slack = 5_000_000;
    let on_period = if interval_ns == 0 {
        off < slack
    } else {
        off % interval_ns < slack || interval_ns - off % interval_ns < slack
    };
    on_period.then_some(next)
}

/// timer_delete(timer_id) is about to run.
pub fn record_delete(timer_id: u64) {
    for s in SLOTS.iter() {
        if s.used.load(Acquire) == 1 && s.timer_id.load(Relaxed) == timer_id {
            s.used.store(0, Release);
        }
    }
}

/// Forget every timer (after exec, or in a fork child: timers are not
/// inherited by fork).
pub fn reset() {
    for s in SLOTS.iter() {
        s.used.store(0, Relaxed);
    }
}

/// ckpt's own kernel timer (the periodic checkpoint), never the program's.
static OWN_TIMER: AtomicI32 = AtomicI32::new(-1);

/// Note ckpt's own kernel timer `id` (see `untracked`).
pub fn set_own_timer(id: i32) {
    OWN_TIMER.store(id, Release);
}

/// Kernel timers of the process that are neither recorded nor ckpt's own
/// (created past the wrappers, or beyond the table): they could not come
/// back, so a checkpoint refuses. Frozen context (scratch allocation).
pub fn untracked() -> usize {
    let text = std::fs::read_to_string("/proc/self/timers").unwrap_or_default();
    let recorded: Vec<i32> = SLOTS
        .iter()
        .filter(|s| s.used.load(Acquire) == 1)
        .map(|s| kernel_id(s.timer_id.load(Relaxed)))
        .collect();
    let own = OWN_TIMER.load(Acquire);
    text.lines()
        .filter_map(|l| l.strip_prefix("ID:")?.trim().parse::<i32>().ok())
        .filter(|id| *id != own && !recorded.contains(id))
        .count()
}

/// Describe every live timer with the kernel's remaining time. Runs while
/// frozen (raw syscalls + Rust allocation only).
pub fn snapshot() -> Vec<Timer> {
    let mut out = Vec::new();
    for s in SLOTS.iter() {
        if s.used.load(Acquire) != 1 {
            continue;
        }
        let timer_id = s.timer_id.load(Relaxed);
        let kid = kernel_id(timer_id);
        let mut cur: libc::itimerspec = unsafe_zeroed();
        // SAFETY: timer_gettime syscall into a live itimerspec.
        if unsafe { libc::syscall(libc::SYS_timer_gettime, kid, &mut cur) } < 0 {
            continue; // deleted past the wrappers
        }
        let read_at_ns = time_namespace_clock(s.clock.load(Relaxed)).map(sys::clock_ns);
        // SAFETY: plain syscall on a kernel timer id.
        let overrun = unsafe { libc::syscall(libc::SYS_timer_getoverrun, kid) } as i32;
        let notify = match s.notify.load(Relaxed) {
            libc::SIGEV_NONE => Notify::None,
            libc::SIGEV_THREAD => Notify::Thread,
            libc::SIGEV_THREAD_ID => Notify::ThreadId,
            _ => Notify::Signal,
        };
        let target = s.target_id.load(Relaxed);
        out.push(Timer {
            timer_id,
            kernel_id: kid,
            clock: s.clock.load(Relaxed),
            notify,
            signo: s.signo.load(Relaxed),
            sigev_value: s.value.load(Relaxed),
            kernel_value: s.kernel_value.load(Relaxed),
            target_thread: (matches!(notify, Notify::ThreadId | Notify::Thread) && target != 0)
                .then_some(target),
            target_tid: matches!(notify, Notify::ThreadId | Notify::Thread)
                .then(|| s.target_tid.load(Relaxed)),
            function: (notify == Notify::Thread).then(|| s.function.load(Relaxed)),
            interval_ns: sys::ts_ns(&cur.it_interval),
            remaining_ns: sys::ts_ns(&cur.it_value),
            overrun: overrun.max(0),
            realtime_deadline_ns: still_absolute(
                s.absolute.load(Relaxed),
                sys::ts_ns(&cur.it_value),
                sys::ts_ns(&cur.it_interval),
            ),
            read_at_ns,
        });
    }
    out
}

/// The clock to read beside a timer on `clock` when the restart's time
/// namespace carries that clock on from the checkpoint: monotonic and
/// boot clocks (and the alarm flavour of the boot clock); None for the
/// wall clock and CPU-time clocks.
pub fn time_namespace_clock(clock: i32) -> Option<libc::clockid_t> {
    match clock {
        libc::CLOCK_MONOTONIC => Some(libc::CLOCK_MONOTONIC),
        libc::CLOCK_BOOTTIME | libc::CLOCK_BOOTTIME_ALARM => Some(libc::CLOCK_BOOTTIME),
        _ => None,
    }
}

/// Where a timer on `clock` that had `remaining_ns` to go when its clock
/// read `read_at_ns` expires next, on that clock, when this process's
/// clocks go on from the checkpoint (a restart in a time namespace of its
/// own, whose offsets are set): arming it there, absolutely, keeps it
/// where it was; arming it for its remaining time would make it late by
/// however long the restart took to get to it (each restart of a chain
/// adding its own). None where the remaining time is what stays (no time
/// namespace: the clocks jumped by the downtime). Post-restart context.
pub fn continued(clock: i32, read_at_ns: Option<u64>, remaining_ns: u64) -> Option<u64> {
    let read_at = read_at_ns?;
    time_namespace_clock(clock)?;
    if remaining_ns == 0 || !clocks_go_on() {
        return None;
    }
    Some(read_at.saturating_add(remaining_ns))
}

/// Whether this process is in a time namespace whose monotonic or boot
/// clock is offset (one a restart made to carry the checkpoint's clocks
/// on). Read every time: a cached answer would be restored by the next
/// restart with the rest of memory. Post-restart context.
fn clocks_go_on() -> bool {
    let text = std::fs::read_to_string("/proc/self/timens_offsets").unwrap_or_default();
    text.lines().any(|l| {
        let mut w = l.split_whitespace();
        matches!(w.next(), Some("monotonic" | "boottime"))
            && w.any(|v| v.parse::<i64>().is_ok_and(|n| n != 0))
    })
}

/// The three interval timers as the kernel has them.
pub fn snapshot_itimers() -> Vec<Itimer> {
    let mut out = Vec::new();
    for (which, name) in [
        (libc::ITIMER_REAL, "real"),
        (libc::ITIMER_VIRTUAL, "virtual"),
        (libc::ITIMER_PROF, "prof"),
    ] {
        let mut v: libc::itimerval = unsafe_zeroed();
        let mut read_at_ns = None;
        // The real timer's reading is tied to the clock read around it: a
        // preemption between the two (seen in CI: 858 us) would put it
        // out of phase, so it is read again until both clock reads are
        // close (at most sixteen times: CI's two busy cores preempt often).
        for _ in 0..16 {
            let before = sys::clock_ns(libc::CLOCK_MONOTONIC);
            // SAFETY: getitimer into a live itimerval.
            unsafe { libc::syscall(libc::SYS_getitimer, which, &mut v) };
            let expired = v.it_value.tv_sec == 0 && v.it_value.tv_usec == 0;
            let periodic = v.it_interval.tv_sec != 0 || v.it_interval.tv_usec != 0;
            if which != libc::ITIMER_REAL {
                break;
            }
            if expired && periodic {
                // Expired, its SIGALRM pending: the kernel re-arms it (from
                // its expiry, in phase) when the signal is taken. Take it,
                // read the timer again, and put the signal straight back.
                rearm_real(&mut v);
            }
            let after = sys::clock_ns(libc::CLOCK_MONOTONIC);
            read_at_ns = Some(after);
            if after.saturating_sub(before) < 50_000 {
                break;
            }
        }
        let ns = |t: &libc::timeval| {
            t.tv_sec.max(0) as u64 * 1_000_000_000 + t.tv_usec.max(0) as u64 * 1000
        };
        out.push(Itimer {
            which: name.into(),
            interval_ns: ns(&v.it_interval),
            remaining_ns: ns(&v.it_value),
            read_at_ns,
        });
    }
    out
}

/// Take the pending SIGALRM (the kernel re-arms a periodic ITIMER_REAL
/// when it is taken), read the timer into `v`, and queue the signal again
/// with its siginfo. Frozen coordinator: every signal is blocked here.
fn rearm_real(v: &mut libc::itimerval) {
    let mut info = [0u8; 128];
    if crate::signals::take_pending(crate::signals::bit(libc::SIGALRM), &mut info)
        != libc::SIGALRM as i64
    {
        return;
    }
    // SAFETY: getitimer into a live itimerval; rt_sigqueueinfo to our own
    // process (any si_code is allowed to oneself) from a 128-byte siginfo.
    unsafe {
        libc::syscall(
            libc::SYS_getitimer,
            libc::ITIMER_REAL,
            v as *mut libc::itimerval,
        );
        libc::syscall(
            libc::SYS_rt_sigqueueinfo,
            sys::getpid(),
            libc::SIGALRM,
            info.as_ptr(),
        );
    }
}

fn unsafe_zeroed<T>() -> T {
    // SAFETY: only used for plain C structs where all-zero is valid.
    unsafe { core::mem::zeroed() }
}

/// `prctl` option that makes `timer_create` take the id it is given.
const PR_TIMER_CREATE_RESTORE_IDS: i32 = 77;

/// Re-create every POSIX timer with its old kernel id (so the program's
/// `timer_t` values keep working), its target thread's new tid, and its
/// remaining time and interval; then the interval timers. Post-restart
/// context, after the threads exist again.
pub fn restore(timers: &[Timer], itimers: &[Itimer]) {
    // SAFETY: prctl with plain integers; failure means an older kernel.
    let restore_ids =
        unsafe { libc::syscall(libc::SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0) } == 0;
    for t in timers {
        if let Err(e) = restore_one(t) {
            crate::restart_report::warn(&format!("timer {}: {e}", t.kernel_id));
        }
    }
    if restore_ids {
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0) };
    }
    for it in itimers {
        let which = match it.which.as_str() {
            "real" => libc::ITIMER_REAL,
            "virtual" => libc::ITIMER_VIRTUAL,
            _ => libc::ITIMER_PROF,
        };
        // A periodic ITIMER_REAL that expired and whose SIGALRM is still
        // pending reads 0 (the kernel re-arms it when the signal is taken,
        // and the frozen program had not taken it): the signal comes back
        // with the pending ones, the timer runs again from there.
        let remaining = match (it.remaining_ns, it.interval_ns) {
            (0, 0) => continue,
            (0, interval) => interval,
            (r, _) => r,
        };
        // The real timer counts the monotonic clock: where that goes on
        // from the checkpoint, what the restart took is taken off (set
        // relative only, it would expire that much later).
        let due = match continued(libc::CLOCK_MONOTONIC, it.read_at_ns, remaining) {
            Some(at) if which == libc::ITIMER_REAL => Some(at),
            _ => None,
        };
        let tv = |ns: u64| libc::timeval {
            tv_sec: (ns / 1_000_000_000) as i64,
            tv_usec: ((ns % 1_000_000_000) / 1000) as i64,
        };
        // setitimer is relative only: a preemption between reading the
        // clock and arming makes the timer late by as much, so an expiry
        // at a set point is checked (getitimer) and armed again until it
        // holds within 100 µs (up to twenty tries: CI on 06ff915 and
        // e0cf2d8, two busy cores, still missed it with five).
        let mut missed = false;
        for _ in 0..20 {
            let now = sys::clock_ns(libc::CLOCK_MONOTONIC);
            // An expiry the restart outlasted: the timer fired there (its
            // SIGALRM is raised below) and goes on from there in phase,
            // as the kernel forwards it from its expiry. Armed for "now",
            // it would go on from the restart's own time instead (CI: an
            // interval timer out of phase when its next expiry came
            // within the restart).
            let due = due.map(|at| match in_phase_after(at, it.interval_ns, now) {
                Some(next) => {
                    missed = true;
                    next
                }
                None => at,
            });
            let left = due.map_or(remaining, |at| at.saturating_sub(now));
            let v = libc::itimerval {
                it_interval: tv(it.interval_ns),
                it_value: tv(left.max(1000)),
            };
            // SAFETY: setitimer from a live itimerval.
            unsafe {
                libc::syscall(
                    libc::SYS_setitimer,
                    which,
                    &v,
                    core::ptr::null_mut::<libc::itimerval>(),
                )
            };
            let Some(at) = due else { break };
            let mut now: libc::itimerval = unsafe_zeroed();
            // SAFETY: getitimer into a live itimerval.
            unsafe { libc::syscall(libc::SYS_getitimer, which, &mut now) };
            let expires = sys::clock_ns(libc::CLOCK_MONOTONIC)
                + now.it_value.tv_sec as u64 * 1_000_000_000
                + now.it_value.tv_usec as u64 * 1000;
            if expires.abs_diff(at) < 100_000 || left < 1000 {
                break;
            }
        }
        if missed {
            // The signal of the expiry the restart outlasted, as the kernel
            // sends it (SI_KERNEL); one already pending absorbs it.
            let mut info = [0u8; 128];
            info[..4].copy_from_slice(&libc::SIGALRM.to_ne_bytes());
            info[8..12].copy_from_slice(&libc::SI_KERNEL.to_ne_bytes());
            // SAFETY: rt_sigqueueinfo to our own process (any si_code is
            // allowed to oneself) from a 128-byte siginfo.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigqueueinfo,
                    sys::getpid(),
                    libc::SIGALRM,
                    info.as_ptr(),
                )
            };
        }
    }
}

/// The first expiry of a periodic timer due at `at` (every `interval_ns`)
/// that is still ahead of `now` by a microsecond, when `at` is not: None
/// while `at` is ahead, or for a one-shot timer (armed for at once, it
/// fires at once, and nothing follows it).
fn in_phase_after(at: u64, interval_ns: u64, now: u64) -> Option<u64> {
    let soon = now.saturating_add(1000);
    if at > soon || interval_ns == 0 {
        return None;
    }
    let periods = (soon - at) / interval_ns + 1;
    Some(at.saturating_add(periods.saturating_mul(interval_ns)))
}

fn restore_one(t: &Timer) -> Result<(), String> {
    // struct sigevent as the kernel reads it: value, signo, notify, tid.
    let mut ev = [0u8; 64];
    ev[0..8].copy_from_slice(&t.kernel_value.to_ne_bytes());
    ev[8..12].copy_from_slice(&t.signo.to_ne_bytes());
    let (notify, tid) = match t.notify {
        Notify::Signal => (libc::SIGEV_SIGNAL, 0),
        Notify::None => (libc::SIGEV_NONE, 0),
        // SIGEV_THREAD timers are kernel timers aimed at ckpt's helper
        // thread (see the shim's timer_threads).
        Notify::ThreadId | Notify::Thread => {
            let id = t.target_thread.ok_or("its target thread is unknown")?;
            let tid = crate::threads::tid_of_id(id).ok_or("its target thread is gone")?;
            (libc::SIGEV_THREAD_ID, tid)
        }
    };
    ev[12..16].copy_from_slice(&notify.to_ne_bytes());
    ev[16..20].copy_from_slice(&tid.to_ne_bytes());
    let mut id: i32 = t.kernel_id;
    // SAFETY: raw timer_create from a sigevent of the kernel's layout into
    // a local id (which, with RESTORE_IDS on, is also the wanted id).
    let r = unsafe { libc::syscall(libc::SYS_timer_create, t.clock, ev.as_ptr(), &mut id) };
    if r < 0 {
        return Err(format!(
            "cannot re-create it: {}",
            std::io::Error::from_raw_os_error(crate::interpose::errno())
        ));
    }
    if id != t.kernel_id {
        return Err(format!(
            "came back with id {id}: the program's handle no longer matches"
        ));
    }
    // The same wall-clock deadline (past by now: it expires at once, as
    // it would have), or the same point of a clock that went on from the
    // checkpoint (a deadline passed meanwhile expires at once, its missed
    // periods counted as overruns, as they would have been); else the
    // remaining time.
    match t
        .realtime_deadline_ns
        .or_else(|| continued(t.clock, t.read_at_ns, t.remaining_ns))
    {
        Some(d) => {
            let spec = libc::itimerspec {
                it_interval: sys::timespec(t.interval_ns),
                it_value: sys::timespec(d),
            };
            // SAFETY: timer_settime from a live itimerspec, no old value.
            unsafe {
                libc::syscall(
                    libc::SYS_timer_settime,
                    id,
                    libc::TIMER_ABSTIME,
                    &spec,
                    core::ptr::null_mut::<libc::itimerspec>(),
                )
            };
        }
        None if t.remaining_ns > 0 => sys::timer_settime(id, t.interval_ns, t.remaining_ns),
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::in_phase_after;

    #[test]
    fn a_periodic_expiry_the_restart_outlasted_goes_on_in_phase() {
        // Ahead of now: left as it is.
        assert_eq!(in_phase_after(10_000_000, 100, 1_000_000), None);
        // One-shot: fires at once.
        assert_eq!(in_phase_after(1_000, 0, 5_000_000), None);
        // Passed by 2.5 periods of 1 ms: the next one on the same grid.
        assert_eq!(
            in_phase_after(1_000_000, 1_000_000, 3_500_000),
            Some(4_000_000)
        );
        // Due within the microsecond: the one after it.
        assert_eq!(
            in_phase_after(1_000_500, 1_000_000, 1_000_000),
            Some(2_000_500)
        );
    }
}
