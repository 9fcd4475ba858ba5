//! The human-readable report of `ckpt inspect`: one section per kind of
//! recorded state, tables with aligned columns.

use crate::human::{
    fmt_access, fmt_bytes, fmt_duration_ns, fmt_sa_flags, fmt_sched_policy, fmt_sigmask, fmt_size,
    fmt_status_flags, fmt_utc_ms, shell_quote, Table,
};
use crate::loaded::Loaded;
use ckpt::image::{clock_name, signal_name, Fd, Meta, Notify, ThreadState};
use std::fmt::Write;

pub fn render(l: &Loaded) -> String {
    let mut out = String::new();
    summary(&mut out, l);
    process(&mut out, &l.meta);
    threads(&mut out, &l.meta);
    fds(&mut out, &l.meta);
    timers(&mut out, &l.meta);
    signals(&mut out, &l.meta);
    memory(&mut out, &l.meta);
    out
}

/// `name  value` lines with the values aligned.
fn fields(out: &mut String, rows: &[(&str, String)]) {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<w$}  {v}");
    }
}

fn section(out: &mut String, title: &str, table: &Table) {
    let _ = writeln!(out, "\n{title}");
    if table.is_empty() {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&table.render(2));
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.into()
    }
}

fn size_or_dash(n: u64) -> String {
    if n == 0 {
        "-".into()
    } else {
        fmt_size(n)
    }
}

fn summary(out: &mut String, l: &Loaded) {
    let m = &l.meta;
    let p = &m.process;
    let _ = writeln!(out, "Image {}", l.path.display());
    let cmdline: Vec<String> = p.cmdline.iter().map(|a| shell_quote(a)).collect();
    let mut v = vec![
        (
            "format",
            format!(
                "version {}, {}: metadata {}, page data {}",
                l.header.version,
                fmt_bytes(l.file_bytes),
                fmt_size(l.header.meta_len),
                fmt_size(l.header.data_len)
            ),
        ),
        ("writer", or_dash(&m.writer)),
        ("created", fmt_utc_ms(m.created_unix_ms)),
        ("checkpoint", format!("#{}", m.seq)),
        (
            "frozen for",
            fmt_duration_ns(m.freeze_us.saturating_mul(1000)),
        ),
        ("pid", format!("{} (parent {})", p.pid, p.ppid)),
        ("exe", or_dash(&p.exe)),
        ("cmdline", or_dash(&cmdline.join(" "))),
    ];
    if let Some(c) = &m.cpu {
        let us = |v: i64| fmt_duration_ns((v.max(0) as u64).saturating_mul(1000));
        v.push((
            "CPU time",
            format!(
                "{} (user {}, system {}); reaped children {}",
                fmt_duration_ns(c.process_ns),
                us(c.usage[0]),
                us(c.usage[1]),
                us(c.children[0] + c.children[1])
            ),
        ));
    }
    fields(out, &v);
}

/// The prctl attributes that differ from a fresh process's.
fn prctl_text(p: Option<&ckpt::image::PrctlState>) -> String {
    let Some(p) = p else { return "-".into() };
    let mut v = Vec::new();
    if p.dumpable == 0 {
        v.push("not dumpable".to_string());
    }
    if p.no_new_privs {
        v.push("no_new_privs".into());
    }
    if p.child_subreaper {
        v.push("child subreaper".into());
    }
    if p.thp_disable {
        v.push("THP disabled".into());
    }
    if p.seccomp != 0 {
        v.push(format!("seccomp mode {} (not restored)", p.seccomp));
    }
    if p.personality != 0 {
        v.push(format!("personality {:#x}", p.personality));
    }
    if p.ioprio != 0 {
        v.push(format!(
            "I/O priority class {} level {}",
            p.ioprio >> 13,
            p.ioprio & 0x1fff
        ));
    }
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

fn process(out: &mut String, m: &Meta) {
    let p = &m.process;
    let _ = writeln!(out, "\nProcess");
    let ckpt_signal = match p.ckpt_signal {
        0 => "-".into(),
        s => format!("{} ({s})", signal_name(s)),
    };
    fields(
        out,
        &[
            ("cwd", or_dash(&p.cwd)),
            ("comm", or_dash(&p.comm)),
            ("umask", format!("{:04o}", p.umask)),
            ("ckpt signal", ckpt_signal),
            ("forks/execs", format!("{} / {}", p.forks, p.execs)),
            ("prctl", prctl_text(p.prctl.as_ref())),
        ],
    );
    let mut t = Table::new(&["RESOURCE", "SOFT", "HARD", "SET BY PROGRAM"]);
    let limit = |v: Option<u64>| v.map_or("unlimited".to_string(), |n| n.to_string());
    for r in &p.rlimits {
        let set = if r.set_by_program { "yes" } else { "-" };
        t.row(vec![
            or_dash(&r.name),
            limit(r.soft),
            limit(r.hard),
            set.into(),
        ]);
    }
    section(out, "Resource limits", &t);
}

fn threads(out: &mut String, m: &Meta) {
    let mut t = Table::new(&[
        "ID", "TID", "NAME", "STATE", "ORIGIN", "JOIN", "STACK", "GUARD", "SCHED", "MASK",
        "PENDING", "ALTSTACK",
    ]);
    for th in &m.threads {
        let state = match th.state {
            ThreadState::Frozen => "frozen",
            ThreadState::BlocksSignals => "blocks-signals",
        };
        let join = if th.detached { "detached" } else { "joinable" };
        let altstack = th.altstack.map_or("-".into(), |a| {
            let off = if a.flags & libc::SS_DISABLE != 0 {
                ", disabled"
            } else {
                ""
            };
            format!("{:#x} ({}{off})", a.sp, fmt_size(a.size))
        });
        t.row(vec![
            th.id.to_string(),
            th.tid.to_string(),
            or_dash(&th.name),
            state.into(),
            or_dash(&th.origin),
            join.into(),
            size_or_dash(th.stack_size),
            size_or_dash(th.guard_size),
            format!(
                "{}/{}",
                fmt_sched_policy(th.sched_policy),
                th.sched_priority
            ),
            fmt_sigmask(th.sigmask),
            fmt_sigmask(th.pending),
            altstack,
        ]);
    }
    section(out, &format!("Threads ({})", m.threads.len()), &t);
}

/// Relations and extras of a descriptor: dup source, shared description,
/// pipe peer, deletion, eventfd counter, locks, inotify watches.
fn fd_notes(fd: &Fd) -> String {
    let mut notes = Vec::new();
    if let Some(n) = fd.dup_of {
        notes.push(format!("dup of {n}"));
    }
    if let Some(n) = fd.shares_with {
        notes.push(format!("shares offset with {n}"));
    }
    if let Some(n) = fd.pipe_peer {
        notes.push(format!("pipe peer {n}"));
    }
    if fd.peer_closed {
        notes.push("other end closed".into());
    }
    if fd.deleted {
        notes.push("deleted".into());
    }
    if let Some(c) = fd.eventfd_count {
        notes.push(format!("count {c}"));
    }
    for l in &fd.locks {
        let range = match l.len {
            0 => format!("{}-", l.start),
            n => format!("{}-{}", l.start, l.start + n - 1),
        };
        let kind = if l.write { "write" } else { "read" };
        notes.push(format!("{:?} {kind} lock {range}", l.kind));
    }
    for w in fd.inotify.iter().flatten() {
        let path = w.path.as_deref().unwrap_or("(path unknown)");
        notes.push(format!("watch {} {path} mask {:#x}", w.wd, w.mask));
    }
    if notes.is_empty() {
        "-".into()
    } else {
        notes.join(", ")
    }
}

fn fds(out: &mut String, m: &Meta) {
    let mut t = Table::new(&[
        "FD", "KIND", "PATH", "OFFSET", "MODE", "FLAGS", "CLOEXEC", "ORIGIN", "NOTES",
    ]);
    for fd in &m.fds {
        let kind = serde_json::to_value(fd.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{:?}", fd.kind));
        t.row(vec![
            fd.fd.to_string(),
            kind,
            or_dash(&fd.path),
            fd.offset.to_string(),
            fmt_access(fd.flags).into(),
            fmt_status_flags(fd.flags),
            if fd.cloexec { "yes" } else { "-" }.into(),
            or_dash(&fd.origin),
            fd_notes(fd),
        ]);
    }
    section(out, &format!("Descriptors ({})", m.fds.len()), &t);
}

fn timers(out: &mut String, m: &Meta) {
    let mut t = Table::new(&[
        "TIMER",
        "CLOCK",
        "NOTIFY",
        "SIGNAL",
        "INTERVAL",
        "REMAINING",
        "TARGET",
        "FUNCTION",
    ]);
    for tm in &m.timers {
        let notify = match tm.notify {
            Notify::Signal => "signal",
            Notify::None => "none",
            Notify::Thread => "thread",
            Notify::ThreadId => "thread-id",
        };
        let signal = match tm.notify {
            Notify::Signal | Notify::ThreadId => signal_name(tm.signo),
            Notify::None | Notify::Thread => "-".into(),
        };
        let target = match (tm.target_thread, tm.target_tid) {
            (Some(id), Some(tid)) => format!("thread {id} (tid {tid})"),
            (Some(id), None) => format!("thread {id}"),
            (None, Some(tid)) => format!("tid {tid}"),
            (None, None) => "-".into(),
        };
        t.row(vec![
            format!("{:#x}", tm.timer_id),
            clock_name(tm.clock),
            notify.into(),
            signal,
            interval(tm.interval_ns),
            remaining(tm.remaining_ns),
            target,
            tm.function.map_or("-".into(), |f| format!("{f:#x}")),
        ]);
    }
    section(out, &format!("Timers ({})", m.timers.len()), &t);

    let mut t = Table::new(&["WHICH", "INTERVAL", "REMAINING"]);
    for it in &m.itimers {
        t.row(vec![
            or_dash(&it.which),
            interval(it.interval_ns),
            remaining(it.remaining_ns),
        ]);
    }
    section(out, &format!("Interval timers ({})", m.itimers.len()), &t);
}

fn interval(ns: u64) -> String {
    if ns == 0 {
        "one-shot".into()
    } else {
        fmt_duration_ns(ns)
    }
}

fn remaining(ns: u64) -> String {
    if ns == 0 {
        "disarmed".into()
    } else {
        fmt_duration_ns(ns)
    }
}

fn signals(out: &mut String, m: &Meta) {
    let mut t = Table::new(&["SIGNAL", "ACTION", "FLAGS", "MASK"]);
    let changed = m.signals.iter().filter(|s| s.disposition != "default");
    let mut count = 0;
    for s in changed {
        count += 1;
        let action = match s.disposition.as_str() {
            "handler" => format!("handler@{:#x}", s.handler),
            other => other.to_string(),
        };
        let name = if s.name.is_empty() {
            signal_name(s.signo)
        } else {
            s.name.clone()
        };
        t.row(vec![
            name,
            action,
            fmt_sa_flags(s.flags),
            fmt_sigmask(s.mask),
        ]);
    }
    section(out, &format!("Signal actions ({count} not default)"), &t);
}

fn memory(out: &mut String, m: &Meta) {
    let mapped: u64 = m
        .regions
        .iter()
        .map(|r| r.end.saturating_sub(r.start))
        .sum();
    let sum = |own: bool| -> u64 {
        m.regions
            .iter()
            .flat_map(|r| &r.extents)
            .filter(|e| (e.src == 0) == own)
            .map(|e| e.len)
            .sum()
    };
    let (stored, referred) = (sum(true), sum(false));
    let _ = writeln!(out, "\nMemory");
    if m.regions.is_empty() {
        out.push_str("  no regions recorded\n");
    } else {
        let _ = writeln!(
            out,
            "  {} regions, {} mapped, {} stored",
            m.regions.len(),
            fmt_size(mapped),
            fmt_size(stored)
        );
    }
    let own = || {
        m.regions
            .iter()
            .flat_map(|r| &r.extents)
            .filter(|e| e.src == 0)
    };
    let packed: Vec<&ckpt::image::Extent> = own().filter(|e| e.codec != 0).collect();
    if let Some(first) = packed.first() {
        let plain: u64 = packed.iter().map(|e| e.len).sum();
        let file: u64 = packed.iter().map(|e| e.footprint()).sum();
        let codec = ckpt::image::Codec::from_u8(first.codec).map_or("?", |c| c.name());
        let _ = writeln!(
            out,
            "  compressed ({codec}): {} of it in {} ({:.1}%); {} stored as it is",
            fmt_size(plain),
            fmt_size(file),
            100.0 * file as f64 / plain.max(1) as f64,
            fmt_size(own().filter(|e| e.codec == 0).map(|e| e.len).sum())
        );
    }
    if !m.deps.is_empty() {
        let names: Vec<&str> = m.deps.iter().map(|d| d.name.as_str()).collect();
        let _ = writeln!(
            out,
            "  incremental: {} unchanged since, taken from {}",
            fmt_size(referred),
            names.join(", ")
        );
    }
    let kept_out = |wipe: bool| {
        m.fork_advice
            .iter()
            .filter(|a| a.wipe == wipe)
            .map(|a| a.end.saturating_sub(a.start))
            .sum::<u64>()
    };
    let (dontfork, wipe) = (kept_out(false), kept_out(true));
    if dontfork + wipe > 0 {
        let _ = writeln!(
            out,
            "  advised out of forks: {} MADV_DONTFORK, {} MADV_WIPEONFORK (stored, advised again at restart)",
            fmt_size(dontfork),
            fmt_size(wipe)
        );
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use ckpt::image::{
        AltStack, FdKind, Itimer, Process, Region, Rlimit, SignalAction, Thread, Timer,
    };

    fn fd(n: i32, kind: FdKind, path: &str) -> Fd {
        Fd {
            flags: libc::O_RDONLY,
            origin: "inherited".into(),
            ..Fd::new(n, kind, path)
        }
    }

    fn thread(id: u32, name: &str) -> Thread {
        Thread {
            id,
            tid: 1000 + id as i32,
            name: name.into(),
            comm: name.into(),
            state: ThreadState::Frozen,
            origin: if id == 1 { "main" } else { "pthread_create" }.into(),
            detached: false,
            stack_size: 8 << 20,
            guard_size: 4096,
            sched_policy: 0,
            sched_priority: 0,
            inherit_sched: true,
            start_routine: 0,
            arg: 0,
            sigmask: 0,
            pending: 0,
            queued: Vec::new(),
            altstack: None,
            fs_base: 0,
            gs_base: 0,
            tiles_in_use: false,
            own: None,
            ucontext: 0,
            errno: 0,
            robust_head: 0,
            robust_len: 0,
            rseq: 0,
            rseq_len: 0,
            rseq_sig: 0,
            rseq_unknown: false,
            keyring: false,
            run_policy: 0,
            run_priority: 0,
            nice: 0,
            affinity: Vec::new(),
            timer_slack_ns: 0,
            cpu: None,
            pdeathsig: 0,
            ioprio: None,
            mce_kill: None,
            mempolicy: None,
            cpuid_faulting: false,
        }
    }

    /// A small but complete image's metadata.
    pub fn sample_meta() -> Meta {
        let mut log = fd(3, FdKind::File, "/tmp/out.log");
        log.flags = libc::O_WRONLY | libc::O_APPEND;
        log.offset = 4096;
        log.cloexec = true;
        log.origin = "open".into();
        let mut dup = fd(4, FdKind::File, "/tmp/out.log");
        dup.dup_of = Some(3);
        dup.shares_with = Some(3);
        let mut worker = thread(2, "worker");
        worker.sigmask = 1 << (libc::SIGINT - 1);
        worker.altstack = Some(AltStack {
            sp: 0x7f00_0000_0000,
            size: 65536,
            flags: 0,
        });
        Meta {
            writer: "ckpt 0.1.0".into(),
            created_unix_ms: 1_709_296_496_789,
            seq: 3,
            freeze_us: 1500,
            process: Process {
                pid: 1001,
                ppid: 1,
                exe: "/usr/bin/prog".into(),
                cmdline: vec!["prog".into(), "two words".into()],
                comm: "prog".into(),
                cwd: "/home/user".into(),
                umask: 0o022,
                rlimits: vec![Rlimit {
                    resource: libc::RLIMIT_NOFILE as i32,
                    name: "NOFILE".into(),
                    soft: Some(1024),
                    hard: None,
                    set_by_program: true,
                }],
                forks: 0,
                execs: 0,
                ckpt_signal: 62,
                ..Process::default()
            },
            threads: vec![thread(1, "prog"), worker],
            fds: vec![fd(0, FdKind::Tty, "/dev/pts/0"), log, dup],
            timers: vec![Timer {
                timer_id: 0,
                kernel_id: 0,
                clock: libc::CLOCK_MONOTONIC,
                notify: Notify::ThreadId,
                signo: libc::SIGALRM,
                sigev_value: 0,
                kernel_value: 0,
                target_thread: Some(2),
                target_tid: Some(1002),
                function: None,
                interval_ns: 250_000_000,
                remaining_ns: 1_500_000_000,
                overrun: 0,
                realtime_deadline_ns: None,
                read_at_ns: None,
            }],
            itimers: vec![Itimer {
                which: "real".into(),
                interval_ns: 0,
                remaining_ns: 2_000_000_000,
                read_at_ns: None,
            }],
            signals: vec![
                SignalAction {
                    signo: libc::SIGINT,
                    name: "SIGINT".into(),
                    disposition: "handler".into(),
                    handler: 0x55_5555_1000,
                    flags: (libc::SA_SIGINFO | libc::SA_RESTART) as u64,
                    mask: 0,
                    restorer: 0,
                },
                SignalAction {
                    signo: libc::SIGHUP,
                    name: "SIGHUP".into(),
                    disposition: "default".into(),
                    handler: 0,
                    flags: 0,
                    mask: 0,
                    restorer: 0,
                },
            ],
            regions: Vec::<Region>::new(),
            ..Meta::default()
        }
    }

    fn rendered(meta: Meta) -> String {
        render(&Loaded {
            path: "/imgs/prog.img".into(),
            file_bytes: 1000,
            header: ckpt::image::Header::decode(&ckpt::image::build(&meta).unwrap()).unwrap(),
            meta,
        })
    }

    #[test]
    fn report_shows_every_section() {
        let text = rendered(sample_meta());
        for want in [
            "Image /imgs/prog.img",
            "created     2024-03-01 12:34:56.789 UTC",
            "frozen for  1.500ms",
            "cmdline     prog 'two words'",
            "umask        0022",
            "ckpt signal  SIGRT30 (62)",
            "NOFILE    1024  unlimited  yes",
            "worker",
            "SIGINT",
            "0x7f0000000000 (64 KiB)",
            "/tmp/out.log",
            "w     APPEND",
            "dup of 3, shares offset with 3",
            "CLOCK_MONOTONIC",
            "thread 2 (tid 1002)",
            "250ms",
            "1.500s",
            "real   one-shot  2.000s",
            "handler@0x5555551000",
            "SA_SIGINFO|SA_RESTART",
            "Signal actions (1 not default)",
            "no regions recorded",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(
            !text.contains("SIGHUP"),
            "default actions are listed:\n{text}"
        );
    }

    #[test]
    fn empty_meta_renders_placeholders() {
        let text = rendered(Meta::default());
        assert!(text.contains("Threads (0)\n  (none)"), "{text}");
        assert!(text.contains("Descriptors (0)\n  (none)"), "{text}");
        assert!(text.contains("exe         -"), "{text}");
    }
}
