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
    let int = |req: libc::Ioctl| -> Option<i32> {
        let mut v: i32 = 0;
        // SAFETY: each request used here writes one int.
        (unsafe { libc::syscall(libc::SYS_ioctl, fd, req, &mut v) } == 0).then_some(v)
    };
    Some(TtyState {
        termios: serde_bytes::ByteBuf::from(&t[..]),
        rows: w[0],
        cols: w[1],
        pty_index: master.then_some(index),
        pending: int(libc::TIOCINQ).unwrap_or(0).max(0) as u32,
        locked: master && int(libc::TIOCGPTLCK).is_some_and(|l| l != 0),
        packet: master && int(libc::TIOCGPKT).is_some_and(|p| p != 0),
        // The slave's group, asked through the master (no session: none).
        fg_pgrp: int(libc::TIOCGPGRP).filter(|&g| master && g > 0),
    })
}

/// The number N of a pseudo-terminal slave `f` (/dev/pts/N), whether or
/// not its master is the job's.
pub fn slave_index(f: &Fd) -> Option<u32> {
    if f.kind != FdKind::Tty || f.tty.as_ref().is_some_and(|t| t.pty_index.is_some()) {
        return None;
    }
    f.path.strip_prefix("/dev/pts/")?.parse().ok()
}

/// The master of pseudo-terminal descriptor `f` among `fds` (`f` itself
/// when it is one), when the process holds it.
pub fn master_in<'a>(f: &'a Fd, fds: &'a [Fd]) -> Option<&'a Fd> {
    if f.tty.as_ref().is_some_and(|t| t.pty_index.is_some()) {
        return Some(f);
    }
    let n = slave_index(f)?;
    fds.iter().find(|g| {
        g.tty.as_ref().and_then(|t| t.pty_index) == Some(n)
            && g.shares_with.is_none_or(|s| s == g.fd)
    })
}

/// The pseudo-terminal number of a controlling terminal given as
/// /proc/PID/stat's `tty_nr` (slaves have majors 136 to 143).
pub fn pts_of_tty_nr(tty_nr: u32) -> Option<u32> {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    (136..144)
        .contains(&major)
        .then(|| (major - 136) * 256 + minor)
}

/// A new pseudo-terminal pair made as `master` (the master's descriptor
/// in the image) had its own: settings, window size, packet mode, its
/// slave unlocked (locked again by [`lock_again`] once its slaves are
/// open). Returns the new master.
pub(crate) fn make_pair(master: &Fd) -> Result<i32, String> {
    let s = master.tty.as_ref().ok_or("not a terminal")?;
    let flags = (master.flags & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL))
        | libc::O_NOCTTY
        | libc::O_CLOEXEC;
    // SAFETY: openat of a constant path.
    let m = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            c"/dev/ptmx".as_ptr(),
            flags,
            0,
        )
    } as i32;
    if m < 0 {
        return Err(format!(
            "cannot open /dev/ptmx for the pseudo-terminal of descriptor {}: {}",
            master.fd,
            std::io::Error::last_os_error()
        ));
    }
    let unlock: i32 = 0;
    let packet: i32 = s.packet.into();
    let w = [s.rows, s.cols, 0, 0];
    // SAFETY: ioctls on the master just opened, each from a live value of
    // the size it reads (TCSETS on a master sets its slave's termios).
    unsafe {
        libc::syscall(libc::SYS_ioctl, m, libc::TIOCSPTLCK, &unlock);
        if s.termios.len() == TERMIOS_LEN {
            libc::syscall(libc::SYS_ioctl, m, libc::TCSETS, s.termios.as_ptr());
        }
        if s.rows != 0 || s.cols != 0 {
            libc::syscall(libc::SYS_ioctl, m, libc::TIOCSWINSZ, w.as_ptr());
        }
        if s.packet {
            libc::syscall(libc::SYS_ioctl, m, libc::TIOCPKT, &packet);
        }
    }
    Ok(m)
}

/// A new open file of the slave of master `m`, as slave descriptor `f`
/// had it (access mode and status flags; never taken as a controlling
/// terminal here).
pub(crate) fn open_slave(m: i32, f: &Fd) -> Result<i32, String> {
    let flags = (f.flags & (libc::O_ACCMODE | libc::O_NONBLOCK)) | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER on our own master, with open flags.
    let fd = unsafe { libc::syscall(libc::SYS_ioctl, m, libc::TIOCGPTPEER, flags) } as i32;
    if fd < 0 {
        return Err(format!(
            "cannot open the slave of a new pseudo-terminal for descriptor {}: {}",
            f.fd,
            std::io::Error::last_os_error()
        ));
    }
    super::restore::set_status(fd, f.flags);
    Ok(fd)
}

/// Lock the new pair's slave again when the program had not unlocked it.
pub(crate) fn lock_again(m: i32, master: &Fd) {
    if master.tty.as_ref().is_some_and(|s| s.locked) {
        let lock: i32 = 1;
        // SAFETY: TIOCSPTLCK from a live int on our own master.
        unsafe { libc::syscall(libc::SYS_ioctl, m, libc::TIOCSPTLCK, &lock) };
    }
}

/// The number the new pair behind master `m` got.
pub(crate) fn number(m: i32) -> Option<u32> {
    let mut n = 0u32;
    // SAFETY: TIOCGPTN writes an unsigned int.
    (unsafe { libc::syscall(libc::SYS_ioctl, m, libc::TIOCGPTN, &mut n) } == 0).then_some(n)
}

/// Make pseudo-terminal `master` of a process again with its slaves
/// among `fds` (each open file once; a dup follows its original): the
/// (target, temporary) pairs. Post-restart context.
pub(crate) fn rebuild_pair(master: &Fd, fds: &[Fd], base: i32) -> Result<Vec<(i32, i32)>, String> {
    let n = master.tty.as_ref().and_then(|t| t.pty_index);
    let m = super::restore::move_to_at_least(make_pair(master)?, base)?;
    let mut out = vec![(master.fd, m)];
    for g in fds
        .iter()
        .filter(|g| slave_index(g) == n && n.is_some() && g.shares_with.is_none_or(|s| s == g.fd))
    {
        out.push((
            g.fd,
            super::restore::move_to_at_least(open_slave(m, g)?, base)?,
        ));
    }
    lock_again(m, master);
    if let (Some(old), Some(new)) = (n, number(m)) {
        if old != new && out.len() > 1 {
            crate::restart_report::warn(&format!(
                "pseudo-terminal /dev/pts/{old} of the program is /dev/pts/{new} now (a new \
                 pair; the kernel chooses its number)"
            ));
        }
    }
    Ok(out)
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
