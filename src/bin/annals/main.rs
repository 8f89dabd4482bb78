//! `annals`: the command-line tool of the annals event store.
//!
//! `annals demo` is the main job: it fills a fresh store from several
//! threads, reopens it, reads everything back, verifies it and reports the
//! figures. The other commands are what an operator needs to look inside a
//! store without writing code: `append`, `read`, `tail`, `stats`, `streams`, `backup`,
//! `export`, `import`, `verify` and `dump`; and to let data go: `delete`,
//! `truncate`, `limits`, `scavenge`.
//!
//! Every command uses only the crate's public API. Only `append`,
//! `import`, `demo` and the lifecycle commands take the writer lock; the others open the store read-only (or
//! read segment files directly), so they work while another process writes,
//! and never modify anything. One module per command; exit codes live in
//! [`exit`].

#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]

mod append;
mod backup;
mod delete;
mod demo;
mod demo_data;
mod demo_read;
mod dump;
mod events;
mod exit;
mod export;
mod fmt;
mod import;
mod indexes;
mod limits;
mod open;
mod read;
mod scavenge;
mod segments;
mod stats;
mod streams;
mod tail;
mod truncate;
mod verify;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// The examples and exit codes at the end of `annals --help`.
const AFTER_HELP: &str = "\
Examples:
  annals demo                                  # the main job, on a temporary store
  annals append ./data order-42 --type OrderPlaced --data '{\"total\":10}' --create
  annals read ./data order-42
  annals read ./data --all --json
  annals read ./data --all --backward --max 10 # the newest ten, newest first
  annals read ./data --all --prefix order- --type OrderPaid
  annals tail ./data                           # follow a live writer; Ctrl-C to stop
  annals tail ./data --filter-prefix order- --wait
  annals stats ./data
  annals streams ./data --prefix order-
  annals backup ./data /backups/data         # online; again copies only what changed
  annals export ./data > events.jsonl         # JSON lines, as read --json
  annals import ./copy events.jsonl --create  # keeps ids: a re-run writes nothing twice
  annals verify ./data
  annals dump ./data --segment 0
  annals delete ./data cart-42 [--hard] [--expected 7]
  annals truncate ./data sensor-1 --before 1000
  annals limits ./data sessions --max-age 7d --max-count 100
  annals scavenge ./data                       # erase what no read returns

Only append, import, delete, truncate, limits, scavenge and demo take the
store's writer lock. read, tail, stats, streams, backup, export and verify
open it read-only and dump reads one file, so they work while another
process writes, and none of them modifies the store.

Warnings from the store (a torn tail dropped by a writable open, say) go to
standard error; RUST_LOG=info shows more, -q none.

Run `annals <COMMAND> --help` for each command's options and examples.";

/// An embedded event store's command-line tool: run the demo, append and
/// read events, follow a live store, inspect, verify and dump its files.
#[derive(Debug, Parser)]
#[command(name = "annals", version, propagate_version = true)]
#[command(after_help = exit::with_codes(AFTER_HELP))]
struct Cli {
    /// Print no warnings (such as a torn tail dropped when a store is
    /// opened for writing). Without it, warnings go to standard error;
    /// RUST_LOG sets the level (default: warn).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the main job on a fresh store and print its figures.
    Demo(demo::Args),
    /// Append one event to a stream.
    Append(append::Args),
    /// Read a stream, or the global log with --all.
    Read(read::Args),
    /// Print events as they are appended, until interrupted.
    Tail(tail::Args),
    /// Show what a store holds.
    Stats(stats::Args),
    /// List the streams, in id order, with their versions and event counts.
    Streams(streams::Args),
    /// Back up a live store into a directory, copying only what changed since the last backup there.
    Backup(backup::Args),
    /// Write the events as JSON lines (the shape of read --json) on standard output.
    Export(export::Args),
    /// Append the events of JSON lines (from export), keeping their ids.
    Import(import::Args),
    /// Check every record of every segment, and the index files; modifies nothing.
    Verify(verify::Args),
    /// Print the frames and records of one segment file, or its index.
    Dump(dump::Args),
    /// Delete a stream (soft, or for good with --hard).
    Delete(delete::Args),
    /// Stop reading a stream's versions below a bound.
    Truncate(truncate::Args),
    /// Set or remove a stream's count and age limits.
    Limits(limits::Args),
    /// Remove for good the events no read returns any more.
    Scavenge(scavenge::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli.quiet {
        show_warnings();
    }
    let result = match &cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Append(args) => append::run(args),
        Command::Read(args) => read::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Streams(args) => streams::run(args),
        Command::Backup(args) => backup::run(args),
        Command::Export(args) => export::run(args),
        Command::Import(args) => import::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Dump(args) => dump::run(args),
        Command::Delete(args) => delete::run(args),
        Command::Truncate(args) => truncate::run(args),
        Command::Limits(args) => limits::run(args),
        Command::Scavenge(args) => scavenge::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("annals: {failure}");
            }
            ExitCode::from(failure.code as u8)
        }
    }
}

/// Prints the library's `tracing` events to standard error, at the level
/// `RUST_LOG` asks for, or warnings and errors when it is unset. annals
/// reports what recovery did (a torn tail dropped, an interrupted segment
/// removed) only through `tracing`, and an operator must see it.
fn show_warnings() {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}
