// Around form: the body is the whole wrapper.
use libc::{c_int, sigset_t};

#[interpose(around)]
unsafe fn sigprocmask(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int {
    let filtered = crate::signals::without_reserved(set);
    let r = real(how, filtered.as_ptr(), old);
    guard.record(|| crate::signals::record_mask(how, set, r));
    r
}
