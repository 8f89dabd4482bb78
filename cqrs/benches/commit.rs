//! The time of one command through cqrs-es on annals, and of its commit
//! alone: `cargo bench -p annals-cqrs --bench commit`. The same bench
//! compares sqlite-es (cqrs-es's SQLite backend) in the same run and
//! directory, WAL with `synchronous=FULL` so that both sync every commit,
//! when it is built by `compare-sqlite/` (`cd cqrs/compare-sqlite && cargo
//! bench`): a crate outside the workspace, because sqlx's SQLite and the
//! root's rusqlite link two versions of libsqlite3.
//!
//! - `execute`: `CqrsFramework::execute` of a `DepositMoney` on one of 100
//!   open bank accounts, round robin: load the aggregate (every event of
//!   the account, an event store), handle, commit.
//! - `commit`: `PersistedEventStore::commit` of one event, the aggregate
//!   loaded outside the timing.
//!
//! Every command is timed on its own; besides criterion's estimates, the
//! bench prints each case's p50 and p99 over all the commands it ran.
//! The data goes under `ANNALS_BENCH_DIR`, or `target/annals-bench` in the
//! building crate's directory, and must not be on tmpfs (where a sync is
//! free).

#[path = "../examples/bank_account/domain.rs"]
#[allow(dead_code)]
mod domain;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
use cqrs_es::{CqrsFramework, EventStore};
use criterion::{Criterion, criterion_group, criterion_main};
use domain::{BankAccount, BankAccountCommand, BankAccountEvent};
use tokio::runtime::Runtime;

const ACCOUNTS: usize = 100;

fn bench_root() -> PathBuf {
    match std::env::var_os("ANNALS_BENCH_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/annals-bench"),
    }
}

/// A fresh directory for one case, refused on tmpfs; and its mount.
fn fresh_dir(name: &str) -> (PathBuf, String) {
    let dir = bench_root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the bench directory");
    let out = std::process::Command::new("findmnt")
        .args(["-n", "-o", "SOURCE,FSTYPE", "--target"])
        .arg(&dir)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "unknown (no findmnt)".to_string());
    assert!(
        !out.contains("tmpfs") && !out.contains("ramfs"),
        "{} is on {out}: a sync is free there; set ANNALS_BENCH_DIR to a real disk",
        dir.display()
    );
    (dir, out)
}

/// Per-command latencies, for the p50 and p99.
#[derive(Default, Clone)]
struct Latencies(Arc<Mutex<Vec<Duration>>>);

impl Latencies {
    fn push(&self, d: Duration) {
        self.0.lock().expect("not poisoned").push(d);
    }

    fn report(&self, case: &str, mount: &str) {
        let mut v = self.0.lock().expect("not poisoned").clone();
        v.sort();
        if v.is_empty() {
            return;
        }
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        println!(
            "{case}: p50 {:?}, p99 {:?} over {} commands ({mount})",
            at(0.5),
            at(0.99),
            v.len()
        );
    }
}

/// Benches `execute` and `commit` on one event repository.
fn bench_repo<R, F>(c: &mut Criterion, rt: &Runtime, system: &str, mount: &str, make: F)
where
    R: PersistedEventRepository + 'static,
    F: Fn() -> R,
{
    let mut group = c.benchmark_group(format!("cqrs-{system}"));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));

    let cqrs = CqrsFramework::new(
        PersistedEventStore::<R, BankAccount>::new_event_store(make()),
        vec![],
        Default::default(),
    );
    let ids: Vec<String> = (0..ACCOUNTS).map(|i| format!("ACCT-{i}")).collect();
    rt.block_on(async {
        for id in &ids {
            let open = BankAccountCommand::OpenAccount {
                account_id: id.clone(),
            };
            cqrs.execute(id, open).await.expect("open an account");
        }
    });
    let lat = Latencies::default();
    let mut next = 0;
    group.bench_function("execute", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let id = &ids[next % ACCOUNTS];
                    next += 1;
                    let t = Instant::now();
                    cqrs.execute(id, BankAccountCommand::DepositMoney { amount: 1.0 })
                        .await
                        .expect("a deposit");
                    let d = t.elapsed();
                    lat.push(d);
                    total += d;
                }
                total
            })
        })
    });
    lat.report(&format!("{system} execute"), mount);

    let es = PersistedEventStore::<R, BankAccount>::new_event_store(make());
    let lat = Latencies::default();
    let mut n = 0;
    group.bench_function("commit", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A new aggregate each time, so that loading stays cheap
                    // and outside the timing.
                    let id = format!("COMMIT-{n}");
                    n += 1;
                    let context = es.load_aggregate(&id).await.expect("load");
                    let event = BankAccountEvent::AccountOpened { account_id: id };
                    let t = Instant::now();
                    es.commit(vec![event], context, HashMap::new())
                        .await
                        .expect("a commit");
                    let d = t.elapsed();
                    lat.push(d);
                    total += d;
                }
                total
            })
        })
    });
    lat.report(&format!("{system} commit"), mount);
    group.finish();
}

fn annals(c: &mut Criterion) {
    let rt = Runtime::new().expect("a tokio runtime");
    let (dir, mount) = fresh_dir("cqrs-annals");
    let store = Arc::new(annals::Store::open(&dir).expect("open the store"));
    bench_repo(c, &rt, "annals", &mount, || {
        annals_cqrs::AnnalsEventRepository::new(store.clone())
    });
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "compare-sqlite")]
fn sqlite(c: &mut Criterion) {
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    let rt = Runtime::new().expect("a tokio runtime");
    let (dir, mount) = fresh_dir("cqrs-sqlite");
    let pool = rt.block_on(async {
        let options = SqliteConnectOptions::new()
            .filename(dir.join("events.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .expect("open the database");
        // sqlite-es's migration (its tables; the view table is not needed).
        for sql in [
            "CREATE TABLE events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
             sequence integer CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, \
             event_version text NOT NULL, payload text NOT NULL, metadata text NOT NULL, \
             PRIMARY KEY (aggregate_type, aggregate_id, sequence)) STRICT",
            "CREATE TABLE snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
             last_sequence integer CHECK (last_sequence >= 0) NOT NULL, \
             current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL, \
             payload text NOT NULL, \
             PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)) STRICT",
        ] {
            sqlx::query(sql)
                .execute(&pool)
                .await
                .expect("create a table");
        }
        pool
    });
    bench_repo(c, &rt, "sqlite-es", &mount, || {
        sqlite_es::SqliteEventRepository::new(pool.clone())
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(not(feature = "compare-sqlite"))]
fn sqlite(_: &mut Criterion) {
    println!("sqlite-es: not compared here; see compare-sqlite/");
}

criterion_group!(benches, annals, sqlite);
criterion_main!(benches);
