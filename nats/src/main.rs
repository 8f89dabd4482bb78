//! The `annals-nats` command: `ship` a store to JetStream, `mirror` it
//! back into a replica. Both run until interrupted (Ctrl-C or SIGTERM).

use std::path::PathBuf;
use std::process::ExitCode;

use annals_nats::{MirrorOptions, Report, ShipOptions};
use clap::{Parser, Subcommand};

/// Relays an annals store to NATS JetStream exactly once, and mirrors it
/// back into read replicas.
#[derive(Parser)]
#[command(name = "annals-nats", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish the store's global log to a JetStream stream, then follow it.
    Ship {
        /// The annals store's directory (opened read-only; the writer may run).
        #[arg(long)]
        store: PathBuf,
        /// The NATS server, e.g. nats://127.0.0.1:4222.
        #[arg(long)]
        server: String,
        /// The JetStream stream (created if missing).
        #[arg(long)]
        stream: String,
        /// The first tokens of every subject.
        #[arg(long, default_value = "annals")]
        subject_prefix: String,
        /// Also write JSON status lines on standard output.
        #[arg(long)]
        json: bool,
    },
    /// Build and keep up to date a replica store from a JetStream stream.
    Mirror {
        /// The NATS server, e.g. nats://127.0.0.1:4222.
        #[arg(long)]
        server: String,
        /// The JetStream stream that `ship` writes.
        #[arg(long)]
        stream: String,
        /// The replica's directory (created if missing).
        #[arg(long)]
        store: PathBuf,
        /// Also write JSON status lines on standard output.
        #[arg(long)]
        json: bool,
    },
}

/// Completes on Ctrl-C or SIGTERM, the two ways a supervisor or a person
/// asks a process to stop.
async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            tokio::signal::ctrl_c().await.ok();
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn report(json: bool) -> Report {
    if json { Report::Json } else { Report::Human }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("annals-nats: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Ship {
                store,
                server,
                stream,
                subject_prefix,
                json,
            } => {
                let options = ShipOptions::new(store, server, stream)
                    .subject_prefix(subject_prefix)
                    .report(report(json));
                annals_nats::ship(&options, interrupted()).await.map(|s| {
                    eprintln!(
                        "annals-nats: stopped: shipped {} events this run, last position {}",
                        s.shipped,
                        s.last_position
                            .map_or_else(|| "none".into(), |p| p.to_string())
                    );
                })
            }
            Command::Mirror {
                server,
                stream,
                store,
                json,
            } => {
                let options = MirrorOptions::new(store, server, stream).report(report(json));
                annals_nats::mirror(&options, interrupted()).await.map(|s| {
                    eprintln!(
                        "annals-nats: stopped: imported {} events this run, replica at position {}",
                        s.imported, s.next_position
                    );
                })
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("annals-nats: error: {e}");
            ExitCode::FAILURE
        }
    }
}
