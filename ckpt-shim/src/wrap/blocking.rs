//! Calls the kernel never restarts after a signal handler ran (signal(7)):
//! sleeps, poll/select/epoll, sigsuspend/pause, sigwaitinfo/sigtimedwait.
//! A checkpoint runs a handler on every thread, so without these wrappers
//! a sleeping thread would see EINTR or wake early. Each wrapper waits
//! against an absolute deadline and resumes when the only handler that ran
//! was ckpt's; when one of the program's handlers ran, the program gets
//! EINTR (and the remaining time) exactly as without ckpt.
//!
//! Masks passed in (ppoll, pselect, epoll_pwait, sigsuspend, sigwait...)
//! lose the reserved signal so a waiting thread stays freezable.

use ckpt::interpose::{program_signals, set_errno};
use ckpt::signals::without_reserved;
use ckpt::sys::{clock_ns, monotonic_ns, timespec, ts_ns};
use ckpt_macros::interpose;
use libc::{c_int, c_uint, clockid_t, nfds_t, pollfd, sigset_t, timespec as Ts, timeval};

/// EINTR with no program handler run since `before`: a checkpoint only.
#[inline]
fn only_checkpoint(before: u32) -> bool {
    program_signals() == before
}

fn valid(ts: &Ts) -> bool {
    ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec)
}

fn mask_ptr(f: &Option<sigset_t>, orig: *const sigset_t) -> *const sigset_t {
    f.as_ref().map_or(orig, |m| m as *const sigset_t)
}

/// Sleep on CLOCK_MONOTONIC until `deadline`; Err(remaining ns) when a
/// program handler interrupted.
fn sleep_until(deadline: u64) -> Result<(), u64> {
    loop {
        let before = program_signals();
        let ts = timespec(deadline);
        // SAFETY: absolute sleep with a valid timespec and no remainder.
        let r = unsafe {
            ckpt::real!(clock_nanosleep)(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                core::ptr::null_mut(),
            )
        };
        if r != libc::EINTR {
            return Ok(());
        }
        if !only_checkpoint(before) {
            return Err(deadline.saturating_sub(monotonic_ns()));
        }
    }
}

#[interpose(around)]
unsafe fn nanosleep(req: *const Ts, rem: *mut Ts) -> c_int {
    if req.is_null() || !valid(&*req) {
        return real(req, rem);
    }
    match sleep_until(monotonic_ns().saturating_add(ts_ns(&*req))) {
        Ok(()) => 0,
        Err(left) => {
            if !rem.is_null() {
                *rem = timespec(left);
            }
            set_errno(libc::EINTR);
            -1
        }
    }
}

#[interpose(around)]
unsafe fn sleep(secs: c_uint) -> c_uint {
    let _ = real;
    match sleep_until(monotonic_ns().saturating_add(secs as u64 * 1_000_000_000)) {
        Ok(()) => 0,
        // glibc rounds the unslept time to the nearest second
        Err(left) => ((left + 500_000_000) / 1_000_000_000) as c_uint,
    }
}

#[interpose(around)]
unsafe fn usleep(usec: libc::useconds_t) -> c_int {
    let _ = real;
    match sleep_until(monotonic_ns().saturating_add(usec as u64 * 1000)) {
        Ok(()) => 0,
        Err(_) => {
            set_errno(libc::EINTR);
            -1
        }
    }
}

#[interpose(around)]
unsafe fn clock_nanosleep(clock: clockid_t, flags: c_int, req: *const Ts, rem: *mut Ts) -> c_int {
    if req.is_null() || !valid(&*req) || clock == libc::CLOCK_THREAD_CPUTIME_ID {
        return real(clock, flags, req, rem);
    }
    if flags & libc::TIMER_ABSTIME != 0 {
        loop {
            // A deadline on a CPU-time clock is in the program's count,
            // which goes on from before a restart; the kernel needs its
            // own (computed again after each interruption: a restart
            // changes it).
            let adjusted = (ckpt::cputime::active() && ckpt::cputime::is_cpu_clock(clock))
                .then(|| ckpt::cputime::kernel_deadline(clock, &*req));
            let req = adjusted.as_ref().map_or(req, |t| t as *const Ts);
            let before = program_signals();
            let r = real(clock, flags, req, rem);
            if r != libc::EINTR || !only_checkpoint(before) {
                return r;
            }
        }
    }
    let start = clock_ns(clock);
    if start == 0 {
        return real(clock, flags, req, rem);
    }
    let deadline = timespec(start.saturating_add(ts_ns(&*req)));
    loop {
        let before = program_signals();
        let r = real(
            clock,
            flags | libc::TIMER_ABSTIME,
            &deadline,
            core::ptr::null_mut(),
        );
        if r != libc::EINTR {
            return r;
        }
        if !only_checkpoint(before) {
            if !rem.is_null() {
                *rem = timespec(ts_ns(&deadline).saturating_sub(clock_ns(clock)));
            }
            return r;
        }
    }
}

/// A relative timeout as a wait to resume: `Err(())` when the call should
/// go straight to the kernel (a zero or invalid timeout: nothing to
/// resume, and the kernel gives the right error), else the deadline
/// (`None`: wait forever).
///
/// # Safety
/// `tmo` is null or points to a valid timespec.
pub(crate) unsafe fn relative_deadline(tmo: *const Ts) -> Result<Option<u64>, ()> {
    if tmo.is_null() {
        return Ok(None);
    }
    if ts_ns(&*tmo) == 0 || !valid(&*tmo) {
        return Err(());
    }
    Ok(Some(monotonic_ns().saturating_add(ts_ns(&*tmo))))
}

/// Remaining time to `deadline` as a timespec (None: no deadline).
fn left(deadline: Option<u64>) -> Option<Ts> {
    deadline.map(|d| timespec(d.saturating_sub(monotonic_ns())))
}

/// Retry `call(timeout)` while only checkpoints interrupt it; `timeout` is
/// what is left until `deadline` (None = wait forever).
pub(crate) unsafe fn resume_waiting(
    deadline: Option<u64>,
    mut call: impl FnMut(*const Ts) -> c_int,
) -> c_int {
    loop {
        let before = program_signals();
        let t = left(deadline);
        let r = call(t.as_ref().map_or(core::ptr::null(), |t| t as *const Ts));
        if r >= 0 || ckpt::interpose::errno() != libc::EINTR || !only_checkpoint(before) {
            return r;
        }
    }
}

#[interpose(around)]
unsafe fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    if timeout == 0 {
        return real(fds, n, timeout);
    }
    let deadline = (timeout > 0).then(|| monotonic_ns() + timeout as u64 * 1_000_000);
    resume_waiting(deadline, |t| {
        ckpt::real!(ppoll)(fds, n, t, core::ptr::null())
    })
}

#[interpose(around)]
unsafe fn ppoll(fds: *mut pollfd, n: nfds_t, tmo: *const Ts, mask: *const sigset_t) -> c_int {
    let m = without_reserved(mask);
    let Ok(deadline) = relative_deadline(tmo) else {
        return real(fds, n, tmo, mask_ptr(&m, mask));
    };
    resume_waiting(deadline, |t| real(fds, n, t, mask_ptr(&m, mask)))
}

#[interpose(around)]
unsafe fn select(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tv: *mut timeval,
) -> c_int {
    if !tv.is_null()
        && ((*tv).tv_sec == 0 && (*tv).tv_usec == 0 || (*tv).tv_sec < 0 || (*tv).tv_usec < 0)
    {
        return real(n, r, w, e, tv);
    }
    let deadline = (!tv.is_null()).then(|| {
        monotonic_ns()
            .saturating_add((*tv).tv_sec as u64 * 1_000_000_000 + (*tv).tv_usec as u64 * 1000)
    });
    // Linux leaves the sets untouched on EINTR and updates *tv; keep
    // that, with the time left computed from our deadline.
    resume_waiting(deadline, |t| {
        if !t.is_null() {
            (*tv).tv_sec = (*t).tv_sec;
            (*tv).tv_usec = (*t).tv_nsec / 1000;
        }
        real(n, r, w, e, tv)
    })
}

#[interpose(around)]
unsafe fn pselect(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tmo: *const Ts,
    mask: *const sigset_t,
) -> c_int {
    let m = without_reserved(mask);
    let Ok(deadline) = relative_deadline(tmo) else {
        return real(n, r, w, e, tmo, mask_ptr(&m, mask));
    };
    resume_waiting(deadline, |t| real(n, r, w, e, t, mask_ptr(&m, mask)))
}

/// epoll_pwait2 straight to the kernel (exact timeouts, optional mask).
unsafe fn epoll_pwait2_raw(
    ep: c_int,
    ev: *mut libc::epoll_event,
    max: c_int,
    t: *const Ts,
    mask: *const sigset_t,
) -> c_int {
    libc::syscall(
        libc::SYS_epoll_pwait2,
        ep,
        ev,
        max,
        t,
        mask,
        if mask.is_null() { 0 } else { 8 },
    ) as c_int
}

#[interpose(around)]
unsafe fn epoll_wait(ep: c_int, ev: *mut libc::epoll_event, max: c_int, timeout: c_int) -> c_int {
    if timeout == 0 {
        return real(ep, ev, max, timeout);
    }
    let deadline = (timeout > 0).then(|| monotonic_ns() + timeout as u64 * 1_000_000);
    resume_waiting(deadline, |t| {
        epoll_pwait2_raw(ep, ev, max, t, core::ptr::null())
    })
}

#[interpose(around)]
unsafe fn epoll_pwait(
    ep: c_int,
    ev: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    let m = without_reserved(mask);
    if timeout == 0 {
        return real(ep, ev, max, timeout, mask_ptr(&m, mask));
    }
    let deadline = (timeout > 0).then(|| monotonic_ns() + timeout as u64 * 1_000_000);
    resume_waiting(deadline, |t| {
        epoll_pwait2_raw(ep, ev, max, t, mask_ptr(&m, mask))
    })
}

#[interpose(around)]
unsafe fn sigsuspend(mask: *const sigset_t) -> c_int {
    let m = without_reserved(mask);
    loop {
        let before = program_signals();
        let r = real(mask_ptr(&m, mask));
        if !only_checkpoint(before) || ckpt::interpose::errno() != libc::EINTR {
            return r;
        }
    }
}

#[interpose(around)]
unsafe fn pause() -> c_int {
    loop {
        let before = program_signals();
        let r = real();
        if !only_checkpoint(before) {
            return r;
        }
    }
}

#[interpose(around)]
unsafe fn sigwaitinfo(set: *const sigset_t, info: *mut libc::siginfo_t) -> c_int {
    let m = without_reserved(set);
    resume_waiting(None, |_| real(mask_ptr(&m, set), info))
}

#[interpose(around)]
unsafe fn sigtimedwait(set: *const sigset_t, info: *mut libc::siginfo_t, tmo: *const Ts) -> c_int {
    let m = without_reserved(set);
    let Ok(deadline) = relative_deadline(tmo) else {
        return real(mask_ptr(&m, set), info, tmo);
    };
    resume_waiting(deadline, |t| real(mask_ptr(&m, set), info, t))
}

#[interpose(around)]
unsafe fn sigwait(set: *const sigset_t, sig: *mut c_int) -> c_int {
    let m = without_reserved(set);
    real(mask_ptr(&m, set), sig)
}
