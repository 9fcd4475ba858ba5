//! Helpers of the process-tree tests (tests/process_trees.rs): the
//! processes of a job as /proc shows them, killing a whole job (every
//! descendant, zombies' parents first), `ckpt checkpoint` of a tree and
//! what its directory must hold, building a statically linked program.
//!
//! Everything is bounded in time, as in the rest of `common`.

use super::{ckpt_cmd, programs_dir, run_cmd, CHECKPOINT_TIMEOUT};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One process as /proc/PID/stat shows it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
}

/// /proc/PID/stat of `pid`, parsed; None when it is gone.
pub fn info(pid: i32) -> Option<ProcInfo> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let rest: Vec<&str> = s[close + 1..].split_whitespace().collect();
    Some(ProcInfo {
        pid,
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgid: rest.get(2)?.parse().ok()?,
        sid: rest.get(3)?.parse().ok()?,
    })
}

/// The children of `pid` (of every one of its threads).
pub fn children(pid: i32) -> Vec<i32> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return v;
    };
    for t in rd.flatten() {
        let f = t.path().join("children");
        for p in std::fs::read_to_string(f)
            .unwrap_or_default()
            .split_whitespace()
        {
            if let Ok(p) = p.parse::<i32>() {
                if !v.contains(&p) {
                    v.push(p);
                }
            }
        }
    }
    v
}

/// Every descendant of `pid` (not `pid` itself), parents before children.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children(p) {
            if c != pid && !out.contains(&c) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// The descendants of `pid` that belong to the job: every one but ckpt's
/// own image writers (`ckpt-writer`).
pub fn job_descendants(pid: i32) -> Vec<i32> {
    descendants(pid)
        .into_iter()
        .filter(|&p| info(p).is_some_and(|i| i.comm != "ckpt-writer"))
        .collect()
}

/// `pid` and its descendants as lines "pid ppid pgid sid state comm", for
/// failure messages.
pub fn tree_report(root: i32) -> String {
    let mut s = format!("process tree of {root} (pid ppid pgid sid state comm):\n");
    for p in std::iter::once(root).chain(descendants(root)) {
        match info(p) {
            Some(i) => s.push_str(&format!(
                "  {} {} {} {} {} {}\n",
                i.pid, i.ppid, i.pgid, i.sid, i.state, i.comm
            )),
            None => s.push_str(&format!("  {p} (gone)\n")),
        }
    }
    s
}

/// SIGKILL `root` and every process below it, and wait (10 s at most)
/// until all are gone. Each is first stopped (SIGSTOP) and the tree read
/// again until it no longer changes, so nothing forks past the kill; then
/// all are killed at once. `root` itself is left for its parent to reap
/// (the test's handle does); a descendant counts as gone when it no longer
/// exists or is a zombie whose parent is not part of the job any more
/// (here pid 1 does not reap orphans). Returns the pids killed.
pub fn kill_job(root: i32) -> Result<Vec<i32>, String> {
    let mut all: Vec<i32> = vec![root];
    for round in 0..100 {
        let mut changed = false;
        for p in descendants(root) {
            if !all.contains(&p) {
                all.push(p);
                changed = true;
            }
        }
        for &p in &all {
            // SAFETY: plain kill(2) of processes of the job this test started.
            unsafe { libc::kill(p, libc::SIGSTOP) };
        }
        if round > 0 && !changed {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // One last look after everything is stopped.
    for p in descendants(root) {
        if !all.contains(&p) {
            all.push(p);
        }
    }
    for &p in &all {
        // SAFETY: as above.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    let set: BTreeSet<i32> = all.iter().copied().collect();
    let t = Instant::now();
    loop {
        let left: Vec<ProcInfo> = all
            .iter()
            .filter(|&&p| p != root)
            .filter_map(|&p| info(p))
            .filter(|i| i.state != 'Z' || set.contains(&i.ppid))
            .collect();
        if left.is_empty() {
            return Ok(all);
        }
        if t.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "processes of job {root} still there 10 s after SIGKILL: {left:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A whole-tree checkpoint: the `.tree` directory `ckpt checkpoint`
/// printed, and what it said on stderr.
#[derive(Debug, Clone)]
pub struct TreeImage {
    pub dir: PathBuf,
    pub stderr: String,
}

impl TreeImage {
    /// The pids that have a PID.img in the directory.
    pub fn image_pids(&self) -> BTreeSet<i32> {
        image_pids(&self.dir)
    }

    /// The directory's entries (names and sizes), for messages.
    pub fn listing(&self) -> String {
        let mut m = BTreeMap::new();
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                m.insert(e.file_name().to_string_lossy().into_owned(), len);
            }
        }
        format!("{}: {m:?}", self.dir.display())
    }

    /// Fail unless every pid of `pids` has its image in the directory.
    pub fn require(&self, pids: &[i32]) -> Result<(), String> {
        let have = self.image_pids();
        let missing: Vec<i32> = pids.iter().copied().filter(|p| !have.contains(p)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the tree image lacks PID.img for {missing:?} (has {have:?}); {}\ncheckpoint stderr: {}",
                self.listing(),
                self.stderr
            ))
        }
    }
}

/// The pids that have a PID.img in `dir`.
pub fn image_pids(dir: &Path) -> BTreeSet<i32> {
    let mut s = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(p) = name
                .strip_suffix(".img")
                .and_then(|p| p.parse::<i32>().ok())
            {
                s.insert(p);
            }
        }
    }
    s
}

/// `ckpt checkpoint PID --dir DIR` (run in `cwd`) of a job with
/// descendants: it must succeed and print one line, the path of a
/// directory named `ckpt-COMM-ROOTPID.SEQ.tree` holding a `manifest`.
pub fn checkpoint_tree(cwd: &Path, pid: i32, dir: &Path) -> Result<TreeImage, String> {
    let r = checkpoint_raw(cwd, pid, dir)?;
    if !r.status.success() {
        return Err(format!(
            "`ckpt checkpoint {pid}` failed ({}) after {:?}: stdout={:?}\nstderr:\n{}",
            r.status, r.elapsed, r.stdout, r.stderr
        ));
    }
    let lines: Vec<&str> = r.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() != 1 {
        return Err(format!(
            "`ckpt checkpoint {pid}` must print exactly one line (the tree directory), printed {:?}\nstderr:\n{}",
            r.stdout, r.stderr
        ));
    }
    let mut p = PathBuf::from(lines[0].trim());
    if p.is_relative() {
        p = cwd.join(p);
    }
    let img = TreeImage {
        dir: p.clone(),
        stderr: r.stderr.clone(),
    };
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !p.is_dir() {
        return Err(format!(
            "`ckpt checkpoint {pid}` of a job with descendants printed {}, which is not a directory\nstderr:\n{}",
            p.display(),
            r.stderr
        ));
    }
    if !(name.starts_with("ckpt-") && name.ends_with(".tree")) {
        return Err(format!(
            "tree directory name {name:?} is not ckpt-COMM-ROOTPID.SEQ.tree; {}",
            img.listing()
        ));
    }
    if !p.join("manifest").is_file() {
        return Err(format!(
            "the tree directory has no manifest; {}",
            img.listing()
        ));
    }
    if img.image_pids().is_empty() {
        return Err(format!(
            "the tree directory holds no PID.img; {}",
            img.listing()
        ));
    }
    Ok(img)
}

/// `ckpt checkpoint PID --dir DIR` as it ran, whatever it did.
pub fn checkpoint_raw(cwd: &Path, pid: i32, dir: &Path) -> Result<super::CmdOut, String> {
    let mut c = ckpt_cmd(cwd, ["checkpoint".to_string(), pid.to_string()]);
    c.arg("--dir").arg(dir);
    run_cmd(&mut c, CHECKPOINT_TIMEOUT)
}

/// The pid, as this test sees it, of the process among `pid_and_below`'s
/// descendants whose innermost pid (NSpid) is `inner`.
pub fn outer_pid(root: i32, inner: i32) -> Option<i32> {
    std::iter::once(root).chain(descendants(root)).find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .and_then(|v| v.split_whitespace().last().map(str::to_string))
            })
            .and_then(|v| v.parse::<i32>().ok())
            == Some(inner)
    })
}

/// Compile tests/programs/`src` with `cc -static` into `out_dir/out_name`;
/// Err(reason) when static linking does not work here (no static libc).
pub fn compile_c_static(src: &str, out_dir: &Path, out_name: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(out_dir).map_err(|e| format!("mkdir {}: {e}", out_dir.display()))?;
    let out = out_dir.join(out_name);
    let mut cmd = Command::new("cc");
    cmd.args(["-static", "-O1", "-Wall", "-I"])
        .arg(programs_dir())
        .arg("-o")
        .arg(&out)
        .arg(programs_dir().join(src));
    let r = run_cmd(&mut cmd, Duration::from_secs(120))?;
    if !r.status.success() {
        return Err(format!("cc -static {src} failed: {}", r.stderr));
    }
    // A static program has no interpreter (no PT_INTERP program header).
    let b = std::fs::read(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|x| u16::from_le_bytes([x[0], x[1]]) as usize)
    };
    let phoff = b
        .get(0x20..0x28)
        .map(|x| u64::from_le_bytes(x.try_into().unwrap()) as usize);
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, u16_at(0x36), u16_at(0x38)) else {
        return Err(format!("{}: not an ELF64 file", out.display()));
    };
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if b.get(o..o + 4) == Some(&3u32.to_le_bytes()[..]) {
            return Err(format!("{} has an interpreter: not static", out.display()));
        }
    }
    Ok(out)
}
