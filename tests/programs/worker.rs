//! A Rust program for `ckpt run`: threads, channels, files; waits to be
//! checkpointed, then prints results that do not depend on timing.
//!
//!     worker CONTROL_DIR
//!
//! Writes marker CONTROL_DIR/ready (pid=...), keeps two threads busy until
//! CONTROL_DIR/go exists (60 s at most, then exit 97).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn marker(ctl: &Path, name: &str, text: &str) {
    let tmp = ctl.join(format!("{name}.tmp"));
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, ctl.join(name)).unwrap();
}

fn main() {
    let ctl = std::env::args().nth(1).expect("usage: worker CONTROL_DIR");
    let ctl = Path::new(&ctl);

    let mut m = BTreeMap::new();
    for i in 0u64..5000 {
        m.insert(format!("key{i:05}"), i.wrapping_mul(2654435761) % 1000003);
    }
    let total: u64 = m.values().sum();
    println!("phase1 {} {}", m.len(), total);

    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(ctl.join("rs_data.bin"))
        .unwrap();
    f.write_all(&[7u8; 4096]).unwrap();
    f.seek(SeekFrom::Start(1000)).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let work = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<u64>();
    let mut handles = Vec::new();
    for t in 0..2u64 {
        let (stop, work, tx) = (stop.clone(), work.clone(), tx.clone());
        handles.push(
            std::thread::Builder::new()
                .name(format!("rs-worker-{t}"))
                .stack_size(512 * 1024)
                .spawn(move || {
                    let mut x = t + 1;
                    let mut v: Vec<u64> = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        v.push(x);
                        if v.len() > 10_000 {
                            v.clear();
                        }
                        work.fetch_add(1, Ordering::Relaxed);
                        if x % 64 == 0 {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                    // A deterministic answer, whatever the timing.
                    tx.send((t + 1) * 1000).unwrap();
                })
                .unwrap(),
        );
    }
    drop(tx);

    marker(ctl, "ready", &format!("pid={}\n", std::process::id()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ctl.join("go").exists() {
        if Instant::now() > deadline {
            eprintln!("timed out waiting for go");
            std::process::exit(97);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let mut answers: Vec<u64> = rx.iter().collect();
    answers.sort();
    for h in handles {
        h.join().unwrap();
    }
    println!("answers {answers:?} worked {}", work.load(Ordering::Relaxed) > 0);

    let pos = f.stream_position().unwrap();
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).unwrap();
    println!("file at {pos} rest {}", rest.len());
    let mut again = String::new();
    File::open(ctl.join("ready")).unwrap().read_to_string(&mut again).unwrap();
    println!("ready marker has pid {}", again.starts_with("pid="));
    println!("done");
}
