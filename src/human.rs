//! Formatting for people: durations, sizes, times, flag sets, signal
//! masks, and aligned tables.

use ckpt::image::signal_name;

/// `1.500s`, `250ms`, `1.250ms`, `40µs`, `12ns`, `0`.
pub fn fmt_duration_ns(ns: u64) -> String {
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    let scaled = |unit: u64, name: &str| {
        let (whole, rest) = (ns / unit, ns % unit);
        if rest == 0 {
            format!("{whole}{name}")
        } else {
            format!("{:.3}{name}", ns as f64 / unit as f64)
        }
    };
    match ns {
        0 => "0".into(),
        n if n >= S => format!("{:.3}s", n as f64 / S as f64),
        n if n >= MS => scaled(MS, "ms"),
        n if n >= US => scaled(US, "µs"),
        n => format!("{n}ns"),
    }
}

/// `512 B`, `8 MiB (8388608 bytes)`, `1.5 KiB (1536 bytes)`.
pub fn fmt_bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else {
        format!("{} ({n} bytes)", fmt_size(n))
    }
}

/// A size with a binary unit and no exact count: `8 MiB`, `1.5 KiB`, `0 B`.
pub fn fmt_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut unit = 0;
    while unit + 1 < UNITS.len() && n >= 1024u64 << (10 * unit) {
        unit += 1;
    }
    let base = 1u64 << (10 * unit);
    let (whole, rest) = (n / base, n % base);
    if rest == 0 {
        format!("{whole} {}", UNITS[unit])
    } else {
        format!("{:.1} {}", n as f64 / base as f64, UNITS[unit])
    }
}

/// Milliseconds since the epoch as `2024-03-01 12:34:56.789 UTC`.
pub fn fmt_utc_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!(
        "{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}.{:03} UTC",
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Signals in a mask (bit n-1 = signal n).
pub fn signals_in(mask: u64) -> Vec<i32> {
    (1..=64).filter(|s| mask & (1u64 << (s - 1)) != 0).collect()
}

/// A signal mask: `-` when empty, names when there are a few, hex
/// (with a count) when there are many.
pub fn fmt_sigmask(mask: u64) -> String {
    let sigs = signals_in(mask);
    match sigs.len() {
        0 => "-".into(),
        1..=4 => sigs
            .into_iter()
            .map(signal_name)
            .collect::<Vec<_>>()
            .join(","),
        n => format!("{mask:#018x} ({n} signals)"),
    }
}

/// Names of the bits of `value` found in `table`, joined by `|`, plus any
/// unknown bits in hex; `-` when none is set.
fn fmt_bits(value: u64, table: &[(u64, &str)]) -> String {
    let mut rest = value;
    let mut names: Vec<String> = Vec::new();
    for &(bit, name) in table {
        if bit != 0 && rest & bit == bit {
            names.push(name.into());
            rest &= !bit;
        }
    }
    if rest != 0 {
        names.push(format!("{rest:#x}"));
    }
    if names.is_empty() {
        "-".into()
    } else {
        names.join("|")
    }
}

/// sigaction flags. SA_RESTORER is left out: glibc sets it on every call.
pub fn fmt_sa_flags(flags: u64) -> String {
    const SA_RESTORER: u64 = 0x0400_0000;
    // The kernel's sa_flags is 32 bits; a sign-extended copy must not show
    // phantom high bits.
    let flags = flags as u32 as u64;
    let table = [
        (libc::SA_SIGINFO as u32 as u64, "SA_SIGINFO"),
        (libc::SA_RESTART as u32 as u64, "SA_RESTART"),
        (libc::SA_ONSTACK as u32 as u64, "SA_ONSTACK"),
        (libc::SA_RESETHAND as u32 as u64, "SA_RESETHAND"),
        (libc::SA_NODEFER as u32 as u64, "SA_NODEFER"),
        (libc::SA_NOCLDSTOP as u32 as u64, "SA_NOCLDSTOP"),
        (libc::SA_NOCLDWAIT as u32 as u64, "SA_NOCLDWAIT"),
    ];
    fmt_bits(flags & !SA_RESTORER, &table)
}

/// A descriptor's access mode: `r`, `w` or `rw` (or `path` for O_PATH).
pub fn fmt_access(flags: i32) -> &'static str {
    if flags & libc::O_PATH != 0 {
        return "path";
    }
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => "r",
        libc::O_WRONLY => "w",
        libc::O_RDWR => "rw",
        _ => "?",
    }
}

/// A descriptor's status flags besides the access mode: `APPEND|NONBLOCK`.
/// O_LARGEFILE is left out: the kernel sets it on every 64-bit open.
pub fn fmt_status_flags(flags: i32) -> String {
    let skip = libc::O_ACCMODE | libc::O_LARGEFILE | libc::O_PATH | libc::O_CLOEXEC;
    let flags = (flags & !skip) as u32 as u64;
    // O_SYNC includes the O_DSYNC bit, so it is tried first.
    let table = [
        (libc::O_APPEND as u64, "APPEND"),
        (libc::O_NONBLOCK as u64, "NONBLOCK"),
        (libc::O_SYNC as u64, "SYNC"),
        (libc::O_DSYNC as u64, "DSYNC"),
        (libc::O_ASYNC as u64, "ASYNC"),
        (libc::O_DIRECT as u64, "DIRECT"),
        (libc::O_NOATIME as u64, "NOATIME"),
        (libc::O_DIRECTORY as u64, "DIRECTORY"),
        (libc::O_NOFOLLOW as u64, "NOFOLLOW"),
        (
            libc::O_TMPFILE as u64 & !(libc::O_DIRECTORY as u64),
            "TMPFILE",
        ),
    ];
    fmt_bits(flags, &table)
}

/// A scheduling policy: `OTHER`, `FIFO`, ...
pub fn fmt_sched_policy(policy: i32) -> String {
    match policy {
        libc::SCHED_OTHER => "OTHER".into(),
        libc::SCHED_FIFO => "FIFO".into(),
        libc::SCHED_RR => "RR".into(),
        libc::SCHED_BATCH => "BATCH".into(),
        libc::SCHED_IDLE => "IDLE".into(),
        6 => "DEADLINE".into(),
        p => format!("policy {p}"),
    }
}

/// One argument as a shell would need it typed.
pub fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%^".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.into()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A table printed with aligned, left-justified columns.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table, each line indented by `indent` spaces; columns are two
    /// spaces apart and the last one is not padded.
    pub fn render(&self, indent: usize) -> String {
        let width = |s: &String| s.chars().count();
        let mut widths: Vec<usize> = self.header.iter().map(width).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i >= widths.len() {
                    widths.push(0);
                }
                widths[i] = widths[i].max(width(cell));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = " ".repeat(indent);
            for (i, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.push_str(&" ".repeat(widths[i] - width(cell) + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// "1 file", "3 files".
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The first five names, and how many more: "a, b, c, d, e and 3 more".
pub fn first_few<S: AsRef<str>>(names: &[S]) -> String {
    let mut s = names
        .iter()
        .take(5)
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 5 {
        s.push_str(&format!(" and {} more", names.len() - 5));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(fmt_duration_ns(0), "0");
        assert_eq!(fmt_duration_ns(12), "12ns");
        assert_eq!(fmt_duration_ns(40_000), "40µs");
        assert_eq!(fmt_duration_ns(1_500), "1.500µs");
        assert_eq!(fmt_duration_ns(250_000_000), "250ms");
        assert_eq!(fmt_duration_ns(1_250_000), "1.250ms");
        assert_eq!(fmt_duration_ns(1_500_000_000), "1.500s");
        assert_eq!(fmt_duration_ns(3_000_000_000), "3.000s");
    }

    #[test]
    fn sizes() {
        assert_eq!(fmt_size(0), "0 B");
        assert_eq!(fmt_size(1023), "1023 B");
        assert_eq!(fmt_size(1536), "1.5 KiB");
        assert_eq!(fmt_size(8 << 20), "8 MiB");
        assert_eq!(fmt_size(u64::MAX), "16.0 EiB");
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(4096), "4 KiB (4096 bytes)");
    }

    #[test]
    fn utc_times() {
        assert_eq!(fmt_utc_ms(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(fmt_utc_ms(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
        assert_eq!(fmt_utc_ms(1_709_296_496_789), "2024-03-01 12:34:56.789 UTC");
    }

    #[test]
    fn signal_masks() {
        assert_eq!(fmt_sigmask(0), "-");
        let two = (1 << (libc::SIGINT - 1)) | (1 << (libc::SIGTERM - 1));
        assert_eq!(fmt_sigmask(two), "SIGINT,SIGTERM");
        assert_eq!(fmt_sigmask(1 << 33), "SIGRT2");
        assert_eq!(fmt_sigmask(u64::MAX), "0xffffffffffffffff (64 signals)");
        assert_eq!(signals_in(0b101), [1, 3]);
    }

    #[test]
    fn sigaction_flags() {
        let sa_restorer = 0x0400_0000;
        let f = (libc::SA_SIGINFO | libc::SA_RESTART | sa_restorer) as u64;
        assert_eq!(fmt_sa_flags(f), "SA_SIGINFO|SA_RESTART");
        assert_eq!(fmt_sa_flags(0), "-");
        assert_eq!(
            fmt_sa_flags(libc::SA_ONSTACK as u64 | 0x100),
            "SA_ONSTACK|0x100"
        );
        let all = (libc::SA_RESETHAND | libc::SA_NODEFER) as u32 as u64;
        assert_eq!(fmt_sa_flags(all), "SA_RESETHAND|SA_NODEFER");
        // Sign-extended from a C int.
        let extended = (libc::SA_RESETHAND | libc::SA_NODEFER) as u64;
        assert_eq!(fmt_sa_flags(extended), "SA_RESETHAND|SA_NODEFER");
    }

    #[test]
    fn fd_flags() {
        assert_eq!(fmt_access(libc::O_RDONLY), "r");
        assert_eq!(fmt_access(libc::O_WRONLY | libc::O_APPEND), "w");
        assert_eq!(fmt_access(libc::O_RDWR), "rw");
        assert_eq!(fmt_access(libc::O_PATH), "path");
        assert_eq!(fmt_status_flags(libc::O_WRONLY | libc::O_LARGEFILE), "-");
        assert_eq!(
            fmt_status_flags(libc::O_APPEND | libc::O_NONBLOCK),
            "APPEND|NONBLOCK"
        );
        assert_eq!(fmt_status_flags(libc::O_SYNC), "SYNC");
        assert_eq!(fmt_status_flags(libc::O_DSYNC), "DSYNC");
    }

    #[test]
    fn quoting_and_policies() {
        assert_eq!(shell_quote("ls"), "ls");
        assert_eq!(shell_quote("--x=/a/b"), "--x=/a/b");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(fmt_sched_policy(libc::SCHED_FIFO), "FIFO");
        assert_eq!(fmt_sched_policy(42), "policy 42");
    }

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["FD", "PATH", "OFFSET"]);
        t.row(vec!["3".into(), "/tmp/a".into(), "0".into()]);
        t.row(vec!["10".into(), "µ".into(), "42".into()]);
        assert_eq!(
            t.render(2),
            "  FD  PATH    OFFSET\n  3   /tmp/a  0\n  10  µ       42\n"
        );
    }
}
