//! A Rust program that makes itself restartable with the `ckpt` crate
//! alone: no `ckpt run`, no LD_PRELOAD. Started normally it resumes from
//! its newest image if it has one (`ckpt::resume`), checkpoints itself
//! every few steps, and runs hooks around checkpoints and restarts.
//!
//! ```sh
//! cargo build --release --workspace --examples
//! target/release/examples/resumable 60 imgs &   # kill -9 it mid-way ...
//! target/release/examples/resumable 60 imgs     # ... it goes on from its last checkpoint
//! ```
//!
//! Output on stdout is the same as an uninterrupted run's; stderr tells
//! what happened. At the end it removes its images (`ckpt::forget`), so
//! the next run starts afresh.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering::*};
use std::time::Duration;

static BEFORE: AtomicU32 = AtomicU32::new(0);
static AFTER: AtomicU32 = AtomicU32::new(0);

fn main() {
    let mut args = std::env::args().skip(1);
    let steps: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let dir = args.next().unwrap_or_else(|| "ckpt-images".into());
    std::fs::create_dir_all(&dir).expect("image directory");
    // Back where the last run was, if it left an image; else go on here.
    if let Err(e) = ckpt::resume(&dir) {
        eprintln!("cannot resume: {e}");
        std::process::exit(1);
    }
    // A worker thread with state of its own, made before ckpt is loaded.
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let (back_tx, back_rx) = std::sync::mpsc::channel::<u64>();
    std::thread::spawn(move || {
        for v in rx {
            back_tx.send(v.rotate_left(7) ^ 0x5555).unwrap();
        }
    });
    ckpt::before_checkpoint(|| {
        BEFORE.fetch_add(1, SeqCst);
    })
    .expect("hook");
    ckpt::after_checkpoint(|| {
        AFTER.fetch_add(1, SeqCst);
    })
    .expect("hook");
    ckpt::on_restore(|| eprintln!("restored ({} time(s)): reconnecting", ckpt::restored()))
        .expect("hook");

    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let out = std::io::stdout();
    for i in 0..steps {
        tx.send(
            state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(i),
        )
        .unwrap();
        state = back_rx.recv().unwrap();
        writeln!(out.lock(), "step {i} {state:016x}").unwrap();
        if i % 10 == 5 {
            match ckpt::Checkpointer::new().dir(&dir).take() {
                Ok(ckpt::Checkpoint::Written(p)) => eprintln!(
                    "checkpoint written: {} (hooks before {} after {})",
                    p.display(),
                    BEFORE.load(SeqCst),
                    AFTER.load(SeqCst)
                ),
                Ok(ckpt::Checkpoint::Restarted) => {
                    eprintln!(
                        "restarted from the checkpoint (restored {})",
                        ckpt::restored()
                    )
                }
                Err(e) => eprintln!("no checkpoint: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    eprintln!(
        "hooks ran: before {} after {}",
        BEFORE.load(SeqCst),
        AFTER.load(SeqCst)
    );
    let _ = ckpt::forget(&dir);
}
