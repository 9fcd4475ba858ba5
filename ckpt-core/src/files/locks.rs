//! File locks the process holds (fcntl record locks, OFD locks, flock).
//! The kernel lists them in each descriptor's fdinfo ("lock:" lines);
//! nothing needs recording. A restart takes them again, so a program that
//! guards its work with a lock file still holds it.
//!
//! Verbs: `snapshot` (parse fdinfo), `restore` (take them again, without
//! waiting: a lock another process took meanwhile is a warning).

use crate::image::{Fd, FileLock, LockKind};

/// The locks in fdinfo text: "lock:\t1: POSIX  ADVISORY  WRITE 15001
/// fe:00:10010869 10 29" (kind, mandatory, type, pid, dev:ino, first and
/// last byte or EOF). Waiters ("->" lines) and leases are left out.
pub fn snapshot(info: &[u8]) -> Vec<FileLock> {
    String::from_utf8_lossy(info)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.strip_prefix("lock:")?.split_whitespace().collect();
            // [n:, KIND, ADVISORY, TYPE, pid, dev:ino, start, end]
            if f.len() < 8 || f[1] == "->" {
                return None;
            }
            let kind = match f[1] {
                "POSIX" => LockKind::Posix,
                "OFDLCK" => LockKind::Ofd,
                "FLOCK" => LockKind::Flock,
                _ => return None,
            };
            let write = match f[3] {
                "WRITE" => true,
                "READ" => false,
                _ => return None,
            };
            let start: u64 = f[6].parse().ok()?;
            let len = match f[7] {
                "EOF" => 0,
                end => end.parse::<u64>().ok()?.checked_sub(start)? + 1,
            };
            Some(FileLock {
                kind,
                write,
                start,
                len,
            })
        })
        .collect()
}

/// Take `f`'s locks again on its (restored) descriptor; a warning for each
/// that another process holds now. Taking a lock twice is harmless (same
/// owner), so descriptors sharing a file may each do it. Post-restart.
pub fn restore(f: &Fd) -> Vec<String> {
    f.locks
        .iter()
        .filter(|l| take(f.fd, l) < 0)
        .map(|l| {
            format!(
                "descriptor {} ({}): cannot take its {:?} {} lock again (errno {}): another process holds the file",
                f.fd,
                f.path,
                l.kind,
                if l.write { "write" } else { "read" },
                crate::interpose::errno()
            )
        })
        .collect()
}

fn take(fd: i32, l: &FileLock) -> i64 {
    if l.kind == LockKind::Flock {
        let op = if l.write {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        // SAFETY: flock on our own descriptor, never blocking.
        return unsafe { libc::syscall(libc::SYS_flock, fd, op | libc::LOCK_NB) };
    }
    let fl = libc::flock {
        l_type: if l.write {
            libc::F_WRLCK
        } else {
            libc::F_RDLCK
        } as i16,
        l_whence: libc::SEEK_SET as i16,
        l_start: l.start as i64,
        l_len: l.len as i64,
        l_pid: 0,
    };
    let cmd = if l.kind == LockKind::Ofd {
        libc::F_OFD_SETLK
    } else {
        libc::F_SETLK
    };
    // SAFETY: F_SETLK / F_OFD_SETLK with a live flock, never blocking.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, cmd, &fl) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_locks_are_parsed() {
        let text =
            b"pos:\t0\nflags:\t02\nlock:\t1: POSIX  ADVISORY  WRITE 15001 fe:00:10010869 10 29\n\
lock:\t2: POSIX  ADVISORY  READ 15001 fe:00:10010869 100 EOF\n\
lock:\t1: -> POSIX  ADVISORY  WRITE 15002 fe:00:10010869 10 29\n\
lock:\t3: FLOCK  ADVISORY  WRITE 15001 fe:00:10010890 0 EOF\n\
lock:\t4: OFDLCK ADVISORY  READ -1 fe:00:10010903 0 4\n";
        let l = snapshot(text);
        let p = |kind, write, start, len| FileLock {
            kind,
            write,
            start,
            len,
        };
        assert_eq!(
            l,
            [
                p(LockKind::Posix, true, 10, 20),
                p(LockKind::Posix, false, 100, 0),
                p(LockKind::Flock, true, 0, 0),
                p(LockKind::Ofd, false, 0, 5),
            ]
        );
    }
}
