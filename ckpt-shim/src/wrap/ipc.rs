//! Semaphores and System V IPC waits, which the kernel never restarts
//! after a signal handler (signal(7)): without these wrappers a thread
//! blocked in `sem_wait` or `msgrcv` would see EINTR from a checkpoint.
//! As in `blocking`, a wait is resumed when the only handler that ran was
//! ckpt's; a handler of the program still gets the program its EINTR.

use super::blocking::{relative_deadline, resume_waiting};
use ckpt_macros::interpose;
use libc::{c_int, c_long, c_void, clockid_t, sem_t, size_t, ssize_t, timespec as Ts};

/// `call()` again while it fails with EINTR that only a checkpoint caused.
unsafe fn resume<R: Copy + PartialOrd + Default>(mut call: impl FnMut() -> R) -> R {
    loop {
        let before = ckpt::interpose::program_signals();
        let r = call();
        if r >= R::default()
            || ckpt::interpose::errno() != libc::EINTR
            || ckpt::interpose::program_signals() != before
        {
            return r;
        }
    }
}

#[interpose(around)]
unsafe fn sem_wait(sem: *mut sem_t) -> c_int {
    resume(|| real(sem))
}

/// The deadline is absolute: the same call is simply made again.
#[interpose(around)]
unsafe fn sem_timedwait(sem: *mut sem_t, abstime: *const Ts) -> c_int {
    resume(|| real(sem, abstime))
}

#[interpose(around)]
unsafe fn sem_clockwait(sem: *mut sem_t, clock: clockid_t, abstime: *const Ts) -> c_int {
    resume(|| real(sem, clock, abstime))
}

/// A semop that succeeded: its SEM_UNDO operations change the process's
/// undo values, which the kernel shows nowhere.
unsafe fn count_undo(r: c_int, id: c_int, ops: *const libc::sembuf, n: size_t) -> c_int {
    if r == 0 && !ops.is_null() {
        // SAFETY: the kernel just read `n` operations from `ops`.
        ckpt::process::record_semop(id, core::slice::from_raw_parts(ops, n));
    }
    r
}

#[interpose(around)]
unsafe fn semop(id: c_int, ops: *mut libc::sembuf, n: size_t) -> c_int {
    count_undo(resume(|| real(id, ops, n)), id, ops, n)
}

/// The timeout is relative: what is left of it is passed again.
#[interpose(around)]
unsafe fn semtimedop(id: c_int, ops: *mut libc::sembuf, n: size_t, tmo: *const Ts) -> c_int {
    let r = match relative_deadline(tmo) {
        Ok(deadline) => resume_waiting(deadline, |t| real(id, ops, n, t)),
        Err(_) => real(id, ops, n, tmo),
    };
    count_undo(r, id, ops, n)
}

/// semctl is variadic; its fourth argument (union semun, one word) is
/// passed on as it came. SETVAL, SETALL and IPC_RMID clear undo values.
#[interpose]
unsafe fn semctl(id: c_int, num: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
    let _ = arg;
    if ret >= 0 {
        ckpt::process::record_semctl(id, num, cmd);
    }
}

#[interpose(around)]
unsafe fn msgrcv(id: c_int, msg: *mut c_void, size: size_t, typ: c_long, flags: c_int) -> ssize_t {
    resume(|| real(id, msg, size, typ, flags))
}

#[interpose(around)]
unsafe fn msgsnd(id: c_int, msg: *const c_void, size: size_t, flags: c_int) -> c_int {
    resume(|| real(id, msg, size, flags))
}

/// A System V semaphore set: recorded (the image cannot hold it; the
/// checkpoint says so).
#[interpose]
unsafe fn semget(key: libc::key_t, nsems: c_int, semflg: c_int) -> c_int {
    let _ = (key, nsems, semflg);
    if ret >= 0 {
        ckpt::process::record_sysv(true, ret);
    }
}

/// A System V message queue: recorded, as semget.
#[interpose]
unsafe fn msgget(key: libc::key_t, msgflg: c_int) -> c_int {
    let _ = (key, msgflg);
    if ret >= 0 {
        ckpt::process::record_sysv(false, ret);
    }
}
