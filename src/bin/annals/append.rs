//! `annals append`: one event, with an optimistic-concurrency check.

use std::io::{Read, Write};
use std::path::PathBuf;

use annals::{EventData, ExpectedVersion};

use crate::exit::{Code, Failure, out};
use crate::open;

/// Append one event to a stream, and print its version and position.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::with_codes("\
Examples:
  annals append ./data order-42 --type OrderPlaced --data '{\"total\":10}' --create
  annals append ./data order-42 --type OrderPaid --expected 0 --data @payment.json
  echo '{\"reason\":\"late\"}' | annals append ./data order-42 --type OrderCancelled --data -

The writer lock is held only while the command runs; another process that
has the store open for writing makes this fail with exit code 4."))]
pub struct Args {
    /// The store's data directory.
    pub dir: PathBuf,
    /// The stream to append to.
    pub stream: String,
    /// The event type.
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: String,
    /// The check the stream's version must pass: `any`, `no-stream`
    /// (the stream must be new), `exists`, or a version number N (the
    /// stream's last version must be N).
    #[arg(long, default_value = "any", value_parser = parse_expected)]
    pub expected: ExpectedVersion,
    /// The payload: TEXT itself, `@FILE` for a file's bytes, or `-` for
    /// standard input. Empty when not given.
    #[arg(long, value_name = "TEXT|@FILE|-")]
    pub data: Option<String>,
    /// The metadata, given the same ways as --data. Empty when not given.
    #[arg(long, value_name = "TEXT|@FILE|-")]
    pub metadata: Option<String>,
    /// Create the directory and an empty store when there is none (without
    /// it, a missing store is an error, so a mistyped path creates nothing).
    #[arg(long)]
    pub create: bool,
}

/// Parses the `--expected` forms.
pub fn parse_expected(s: &str) -> Result<ExpectedVersion, String> {
    match s {
        "any" => Ok(ExpectedVersion::Any),
        "no-stream" => Ok(ExpectedVersion::NoStream),
        "exists" => Ok(ExpectedVersion::StreamExists),
        n => n
            .parse::<u64>()
            .map(ExpectedVersion::Exact)
            .map_err(|_| format!("'{n}' is not any, no-stream, exists or a version number")),
    }
}

/// Reads a `--data`/`--metadata` value: text, `@FILE` or `-`.
fn payload(spec: Option<&str>, what: &str) -> Result<Vec<u8>, Failure> {
    match spec {
        None => Ok(Vec::new()),
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| {
                Failure::new(
                    Code::Failure,
                    format!("cannot read --{what} from standard input: {e}"),
                )
            })?;
            Ok(buf)
        }
        Some(s) => match s.strip_prefix('@') {
            Some(file) => std::fs::read(file).map_err(|e| {
                Failure::new(
                    Code::Usage,
                    format!("cannot read --{what} file {file}: {e}"),
                )
            }),
            None => Ok(s.as_bytes().to_vec()),
        },
    }
}

/// Runs `annals append`.
pub fn run(args: &Args) -> Result<(), Failure> {
    if args.data.as_deref() == Some("-") && args.metadata.as_deref() == Some("-") {
        return Err(Failure::new(
            Code::Usage,
            "--data and --metadata cannot both read standard input",
        ));
    }
    let data = payload(args.data.as_deref(), "data")?;
    let metadata = payload(args.metadata.as_deref(), "metadata")?;
    let store = open::writer(&args.dir, args.create)?;
    let event = EventData::new(args.event_type.as_str(), data).with_metadata(metadata);
    let result = store.append(&args.stream, args.expected, &[event])?;
    store.close()?;
    let (Some(version), Some(position)) = (result.last_version(), result.last_position()) else {
        return Err(Failure::new(
            Code::Failure,
            "the store reported an empty append for one event",
        ));
    };
    let mut stdout = std::io::stdout().lock();
    out(writeln!(
        stdout,
        "appended to {}: version {version}, position {position}",
        args.stream
    ))
}
