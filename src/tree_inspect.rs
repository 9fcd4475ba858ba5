//! `ckpt inspect TREE`: what a tree image holds — its processes (pid,
//! parent, group, session, command, state, size) and the files they share.
//! Each member image is checked like a single one; `ckpt inspect
//! TREE/PID.img` shows one process in full.

use crate::human::{fmt_duration_ns, fmt_size, fmt_utc_ms, Table};
use crate::Failure;
use ckpt::tree::Manifest;
use std::path::Path;

pub fn inspect(dir: &Path, json: bool) -> Result<(), Failure> {
    let m = Manifest::read(dir).map_err(Failure::new)?;
    let mut rows = Vec::new();
    for p in &m.processes {
        let (state, bytes, threads) = match &p.image {
            Some(name) => {
                let loaded = crate::loaded::load(&dir.join(name)).map_err(Failure::new)?;
                (
                    "running".to_string(),
                    loaded.file_bytes,
                    loaded.meta.threads.len(),
                )
            }
            None => (zombie_state(p.zombie_status.unwrap_or(0)), 0, 0),
        };
        rows.push((p, state, bytes, threads));
    }
    if json {
        let procs: Vec<serde_json::Value> = rows
            .iter()
            .map(|(p, state, bytes, threads)| {
                serde_json::json!({
                    "pid": p.pid, "ppid": p.ppid, "pgid": p.pgid, "sid": p.sid,
                    "command": p.comm, "state": state, "image": p.image,
                    "zombie_status": p.zombie_status, "bytes": bytes, "threads": threads,
                })
            })
            .collect();
        let v = serde_json::json!({
            "tree": dir, "root": m.root, "seq": m.seq,
            "created_unix_ms": m.created_unix_ms, "freeze_us": m.freeze_us,
            "processes": procs, "shared_files": m.shared,
        });
        let text = serde_json::to_string_pretty(&v).map_err(|e| Failure::new(e.to_string()))?;
        return crate::print_stdout(&format!("{text}\n"));
    }
    let mut out = format!(
        "Tree image {}\n  root process {}, checkpoint #{}, taken {}, frozen {}\n\n",
        dir.display(),
        m.root,
        m.seq,
        fmt_utc_ms(m.created_unix_ms),
        fmt_duration_ns(m.freeze_us.saturating_mul(1000)),
    );
    out += &format!("Processes ({})\n", m.processes.len());
    let mut t = Table::new(&[
        "PID", "PPID", "PGID", "SID", "COMMAND", "STATE", "THREADS", "SIZE",
    ]);
    let outside = |v: Option<i32>| v.map_or("(root's)".to_string(), |x| x.to_string());
    for (p, state, bytes, threads) in &rows {
        t.row(vec![
            p.pid.to_string(),
            if p.ppid == 0 {
                "-".into()
            } else {
                p.ppid.to_string()
            },
            outside(p.pgid),
            outside(p.sid),
            p.comm.clone(),
            state.clone(),
            threads.to_string(),
            fmt_size(*bytes),
        ]);
    }
    out += &t.render(2);
    if !m.shared.is_empty() {
        out += &format!(
            "\nOpen files shared between processes ({})\n",
            m.shared.len()
        );
        for g in &m.shared {
            let who: Vec<String> = g.iter().map(|(pid, fd)| format!("{pid}:fd {fd}")).collect();
            out += &format!("  {}\n", who.join(", "));
        }
    }
    crate::print_stdout(&out)
}

/// "zombie (exit 3)" or "zombie (killed by signal 9)".
fn zombie_state(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        format!("zombie (killed by signal {})", libc::WTERMSIG(status))
    } else {
        format!("zombie (exit {})", libc::WEXITSTATUS(status))
    }
}
