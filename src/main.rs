//! The `ckpt` command: run a program under ckpt, checkpoint it, inspect
//! images. Each command lives in its own module; this file only dispatches
//! and turns failures into `ckpt: message` plus an exit status.

mod cli;
mod cmd_checkpoint;
mod cmd_inspect;
mod cmd_list;
mod cmd_restart;
mod cmd_run;
mod human;
mod lean_json;
mod leftovers;
mod loaded;
mod pager;
mod progress;
mod renames;
mod report;
mod restart_ns;
mod shared_files;
mod shim_path;
mod staging;
mod stale_job;
mod store;
#[cfg(test)]
mod test_util;
mod tree_checkpoint;
mod tree_inspect;
mod tree_restart;

use clap::Parser;
use cli::{Cli, Command};
use std::io::Write;

/// Why a command stopped: one line for stderr and the exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    /// An ordinary error: exit status 1.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure::with_code(1, message)
    }

    pub fn with_code(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// Write `text` to stdout. A reader that went away (`ckpt inspect | head`)
/// is not an error worth a message.
pub fn print_stdout(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::new(format!("cannot write to stdout: {e}"))),
    }
}

/// The command line, with `ckpt help --help` (or `-h`) read as
/// `ckpt --help`: clap takes the flag for the name of a subcommand and
/// fails, where a user asking for help on `help` wants the overview.
fn command_line() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 3 && args[1] == "help" && (args[2] == "--help" || args[2] == "-h") {
        args.truncate(1);
        args.push("--help".into());
    }
    args
}

fn main() {
    let cli = Cli::parse_from(command_line());
    let result = match cli.command {
        Command::Run(args) => Err(cmd_run::run(args)),
        Command::Checkpoint(args) => cmd_checkpoint::checkpoint(args),
        Command::Inspect(args) => cmd_inspect::inspect(args),
        Command::List(args) => cmd_list::list(args),
        Command::Restart(args) => cmd_restart::restart(args),
    };
    if let Err(f) = result {
        eprintln!("ckpt: {}", f.message);
        std::process::exit(f.code);
    }
}
