//! Periodic checkpoints from the program itself, without `ckpt run`:
//! `Checkpointer::every` (ckpt's timer, as `ckpt run --interval`) keeping
//! the newest 2 images, compressed with lz4, and one checkpoint taken
//! without waiting for its image (`wait(false)`, then
//! `ckpt::wait_for_image`).
//!
//! ```sh
//! target/release/examples/periodic 200 imgs &   # kill -9 it mid-way ...
//! target/release/examples/periodic 200 imgs     # ... it goes on from its newest image
//! ```

use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let steps: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let dir = args.next().unwrap_or_else(|| "ckpt-images".into());
    // A third argument `sqlite:PATH`: the periodic checkpoints go to that
    // store instead of the directory.
    let store = args.next();
    std::fs::create_dir_all(&dir).expect("image directory");
    // Back from the newest checkpoint, in the store or the directory.
    ckpt::resume(store.as_deref().unwrap_or(&dir)).expect("resume");

    // One now, without waiting for its image ...
    match ckpt::Checkpointer::new().dir(&dir).wait(false).take() {
        Ok(ckpt::Checkpoint::Written(path)) => {
            // ... which is in place once wait_for_image returns.
            let done = ckpt::wait_for_image().expect("the image");
            eprintln!(
                "first image in place: {}",
                done.as_deref() == Some(path.as_path()) && path.is_file()
            );
        }
        other => eprintln!("first checkpoint: {other:?}"),
    }
    let periodic = match &store {
        Some(spec) => ckpt::Checkpointer::new().store(spec),
        None => ckpt::Checkpointer::new().dir(&dir),
    };
    periodic
        .keep(2)
        .compress(Some(ckpt::Codec::Lz4))
        .every(Duration::from_millis(if store.is_some() {
            300
        } else {
            100
        }))
        .expect("periodic checkpoints");

    let mut state = 1u64;
    for i in 0..steps {
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(i);
        }
        println!("step {i} {state:016x}");
        std::thread::sleep(Duration::from_millis(20));
    }
    ckpt::stop_periodic().expect("stop");
    let _ = ckpt::forget(&dir);
}
