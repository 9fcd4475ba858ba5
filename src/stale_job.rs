//! `ckpt restart` while processes of the checkpointed job still run.
//!
//! `kill -9` of a job's root leaves its children running (they are
//! adopted elsewhere, as in any Unix job), and a restart of the crashed
//! job that ran beside them got both writing the same files: lines twice,
//! interleaved, and nothing said. Every process of a `ckpt run` job
//! carries the job's tag in its environment (`CKPT_JOB`, kept by a
//! restart), and the image holds it (`Meta::job`): before it touches a
//! file, `ckpt restart` waits a little for such processes to end (a child
//! in the middle of a command), then refuses, naming them, unless told
//! to kill them (`--kill-old`).

use crate::Failure;
use std::time::{Duration, Instant};

/// How long the processes of the old job get to end by themselves.
const GRACE: Duration = Duration::from_secs(3);

/// A process still running with the job's tag.
struct Old {
    pid: i32,
    comm: String,
}

/// The processes alive now (not zombies) whose environment carries job
/// tag `tag`, other than this command and its ancestors.
fn running(tag: &str) -> Vec<Old> {
    let mine = ancestors();
    ckpt::files::joblog::tagged_processes()
        .into_iter()
        .filter(|(p, t)| t == tag && !mine.contains(p))
        .filter_map(|(pid, _)| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The state follows the command's closing parenthesis.
            let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
            (state != "Z" && state != "X").then(|| Old {
                pid,
                comm: ckpt::names::read_proc(format!("/proc/{pid}/comm"))
                    .map(|c| c.trim_end().to_string())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// This command's pid and its ancestors' (a restart started from inside
/// the job is not in its own way).
fn ancestors() -> Vec<i32> {
    let mut out = vec![std::process::id() as i32];
    let mut p = out[0];
    while p > 1 && out.len() < 4096 {
        let Some(parent) = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            })
        else {
            break;
        };
        out.push(parent);
        p = parent;
    }
    out
}

/// Before a restart of an image of job `tag` touches anything: no process
/// of that job may still run (after a grace period), or with `kill` they
/// are killed (SIGKILL) and waited for. Images from before jobs had tags
/// (`None`) are not checked here.
pub fn check(tag: Option<&str>, kill: bool) -> Result<(), Failure> {
    let Some(tag) = tag else { return Ok(()) };
    let start = Instant::now();
    let mut old = running(tag);
    let mut killed = false;
    while !old.is_empty() {
        if kill {
            for o in &old {
                // SAFETY: plain kill(2); the process carries the job's tag.
                unsafe { libc::kill(o.pid, libc::SIGKILL) };
            }
            killed = true;
        }
        if start.elapsed() >= GRACE {
            let list: Vec<String> = old
                .iter()
                .map(|o| format!("{} ({})", o.pid, o.comm))
                .collect();
            let pids: Vec<String> = old.iter().map(|o| o.pid.to_string()).collect();
            let (n, es, s) = match old.len() {
                1 => (1, "", "s"),
                n => (n, "es", ""),
            };
            return Err(Failure::new(if kill {
                format!(
                    "{n} process{es} of the checkpointed job did not end after SIGKILL: {}; \
                     nothing was touched",
                    list.join(", ")
                )
            } else {
                format!(
                    "{n} process{es} of the checkpointed job still run{s}: {}; the restarted \
                     job would run beside them, both writing the same files. Stop them \
                     (kill {}) or pass --kill-old; nothing was touched",
                    list.join(", "),
                    pids.join(" ")
                )
            }));
        }
        std::thread::sleep(Duration::from_millis(10));
        old = running(tag);
    }
    if killed {
        eprintln!("ckpt: killed the processes of the checkpointed job that still ran (--kill-old)");
    }
    Ok(())
}
