//! Terminals: the line discipline's settings (termios: raw or cooked,
//! echo, special characters) and the window size. A full-screen program
//! (an editor, `top`) puts its terminal in raw mode once; a restart
//! connects it to the `ckpt restart` command's terminal, which the shell
//! left cooked, so without this the program would run on with echo and
//! line editing it turned off.
//!
//! Verbs: [`snapshot`] (frozen: TCGETS, TIOCGWINSZ), [`restore`]
//! (post-restart, once every descriptor is at its number: the settings
//! again on each terminal, once; whether the window size differs, so
//! that the program is told with SIGWINCH as a resize would).

use crate::image::{Fd, FdKind, TtyState};

/// `struct termios` as TCGETS gives it (kernel layout: 36 bytes used).
const TERMIOS_LEN: usize = 60;

/// Terminal `fd`'s settings and window size. Runs frozen.
pub(crate) fn snapshot(fd: i32) -> Option<TtyState> {
    let mut t = [0u8; TERMIOS_LEN];
    let mut w = [0u16; 4];
    // SAFETY: TCGETS writes a struct termios (smaller than `t`); TIOCGWINSZ
    // a struct winsize (4 u16).
    unsafe {
        if libc::syscall(libc::SYS_ioctl, fd, libc::TCGETS, t.as_mut_ptr()) != 0 {
            return None;
        }
        if libc::syscall(libc::SYS_ioctl, fd, libc::TIOCGWINSZ, w.as_mut_ptr()) != 0 {
            w = [0; 4];
        }
    }
    let mut index = 0u32;
    // SAFETY: TIOCGPTN writes an unsigned int; it fails on all but a
    // pseudo-terminal's master.
    let master = unsafe { libc::syscall(libc::SYS_ioctl, fd, libc::TIOCGPTN, &mut index) } == 0;
    Some(TtyState {
        termios: serde_bytes::ByteBuf::from(&t[..]),
        rows: w[0],
        cols: w[1],
        pty_index: master.then_some(index),
    })
}

/// Put each terminal's settings back (once per terminal: the first
/// descriptor's). Returns whether a terminal's window size is not the one
/// it had. Post-restart context.
pub(crate) fn restore(fds: &[Fd]) -> bool {
    let mut done: Vec<(u64, u64)> = Vec::new();
    let mut resized = false;
    for f in fds.iter().filter(|f| f.kind == FdKind::Tty) {
        let Some(s) = &f.tty else { continue };
        // SAFETY: an all-zero stat is valid; fstat writes into it.
        let mut st: libc::stat = unsafe { core::mem::zeroed() };
        // SAFETY: fstat of the program's descriptor into a live stat.
        if unsafe { libc::syscall(libc::SYS_fstat, f.fd, &mut st) } != 0
            || done.contains(&(st.st_dev, st.st_rdev))
        {
            continue;
        }
        done.push((st.st_dev, st.st_rdev));
        let mut now = [0u8; TERMIOS_LEN];
        let mut w = [0u16; 4];
        // SAFETY: TCGETS / TIOCGWINSZ write into live buffers large enough.
        unsafe {
            if libc::syscall(libc::SYS_ioctl, f.fd, libc::TCGETS, now.as_mut_ptr()) != 0 {
                continue;
            }
            libc::syscall(libc::SYS_ioctl, f.fd, libc::TIOCGWINSZ, w.as_mut_ptr());
        }
        resized |= s.rows != 0 && (w[0], w[1]) != (s.rows, s.cols);
        if s.termios.len() == TERMIOS_LEN && now[..] != s.termios[..] {
            // SAFETY: TCSETS reads a struct termios from a live buffer.
            if unsafe { libc::syscall(libc::SYS_ioctl, f.fd, libc::TCSETS, s.termios.as_ptr()) }
                != 0
            {
                crate::restart_report::warn(&format!(
                    "descriptor {} ({}): cannot set the terminal as the program had it ({})",
                    f.fd,
                    f.path,
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    resized
}
