//! A Rust program that checkpoints itself with `ckpt::checkpoint()`.
//!
//! ```sh
//! cargo build --release --workspace --examples
//! target/release/ckpt run -- target/release/examples/self_checkpoint 40
//! # ... kill it after "checkpoint written", then:
//! target/release/ckpt restart IMAGE     # goes on from the checkpoint
//! ```
//!
//! The same `ckpt::checkpoint()` call returns twice when its image is
//! restarted: `Written(path)` when the image was taken, `Restarted` in the
//! restarted process.

use std::time::Duration;

fn main() {
    let steps: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..steps {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(i);
        println!("step {i} {state:016x}");
        if i == steps / 2 {
            match ckpt::checkpoint() {
                Ok(ckpt::Checkpoint::Written(path)) => {
                    eprintln!("checkpoint written: {}", path.display())
                }
                Ok(ckpt::Checkpoint::Restarted) => eprintln!("restarted from the checkpoint"),
                Err(e) => eprintln!("no checkpoint: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
