//! A cdylib built by `tests/cdylib.rs`: wrappers and the registry must link
//! and survive `--gc-sections` in a shared object, as in the shim.

use ckpt_macros::{interpose, originals_registry};
use libc::{c_int, mode_t};

originals_registry!();

/// The alias has no original in the C library: it stays unresolved, and
/// only using it would abort.
#[interpose(aliases(ckpt_fixture_no_such_symbol))]
unsafe fn dup(fd: c_int) -> c_int {
    let _ = (fd, ret);
}

#[interpose(around)]
unsafe fn umask(mask: mode_t) -> mode_t {
    real(mask)
}

/// What the test calls through `dlsym`.
#[no_mangle]
pub extern "C" fn fixture_resolve_all_originals() -> usize {
    resolve_all_originals()
}
