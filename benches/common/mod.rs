//! What the benchmarks share: finding the built `ckpt`, compiling their C
//! programs, reading the programs' answers, medians.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    let mut dir = exe.parent().expect("bench dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

pub fn ckpt() -> PathBuf {
    let p = target_dir().join("ckpt");
    assert!(
        p.exists() && target_dir().join("ckpt-restorer").exists(),
        "build first: cargo build --release --workspace"
    );
    p
}

/// Compile `benches/programs/NAME.c` into `out`.
pub fn compile(name: &str, out: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("benches/programs/{name}.c"));
    let st = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(out)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(st.success(), "cc failed");
}

/// Read lines until one starts with `want`; returns it.
pub fn wait_line(out: &mut impl BufRead, want: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read program output");
        assert!(n > 0, "program ended before saying {want:?}");
        if line.starts_with(want) {
            return line;
        }
    }
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}
