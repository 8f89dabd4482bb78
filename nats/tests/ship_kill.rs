//! kill -9 of the shipper at random moments while the writer appends (and
//! rotates segments), sometimes with two shippers racing: JetStream must end up holding every
//! event exactly once, in position order. The shipper is the
//! `annals-nats` binary, a child process killed with SIGKILL 20 times;
//! the moments are drawn from a seed that the test prints and takes from
//! `ANNALS_NATS_SEED`.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use annals::{Options, Store};
use annals_nats::ship;
use tokio::sync::oneshot;

/// The writer stops here at the latest, so the test stays bounded.
const MAX_EVENTS: usize = 200_000;

#[test]
fn kill_9_twenty_times_while_writing_ships_each_event_once() {
    let Some(server) = common::Server::any() else {
        return;
    };
    let mut rng = common::Rng::from_env("kill_9_twenty_times");
    let dir = tempfile::tempdir().unwrap();
    // Small segments, so that the writer rotates to a new one every two
    // hundred events or so, under the shippers, even on a slow disk.
    let options = Options::default().segment_size(64 << 10);
    let store = Arc::new(Store::open_with(dir.path(), options).unwrap());
    let name = common::stream_name("kill");
    let kills_done = Arc::new(AtomicBool::new(false));
    let writer = std::thread::spawn({
        let store = Arc::clone(&store);
        let done = Arc::clone(&kills_done);
        let mut rng = rng.fork();
        move || {
            while !done.load(Ordering::Acquire) && (store.global_position() as usize) < MAX_EVENTS {
                common::append_events(&store, 1 + rng.below(20) as usize, 20, &mut rng);
            }
        }
    });
    let binary = env!("CARGO_BIN_EXE_annals-nats");
    for round in 0..20 {
        let shippers = 1 + usize::from(rng.below(3) == 0);
        let children: Vec<_> = (0..shippers)
            .map(|_| {
                Command::new(binary)
                    .args([
                        "ship",
                        "--server",
                        &server.url,
                        "--stream",
                        &name,
                        "--subject-prefix",
                        &name,
                        "--store",
                    ])
                    .arg(dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("annals-nats starts")
            })
            .collect();
        // The moment of the kill: anywhere from while the shipper starts
        // and connects to deep into its publishing.
        let moment = Duration::from_millis(rng.below(400));
        std::thread::sleep(moment);
        for mut child in children {
            child.kill().expect("SIGKILL the shipper");
            let status = child.wait().unwrap();
            assert!(
                status.code().is_none(),
                "round {round}: the shipper exited by itself: {status}"
            );
        }
    }
    kills_done.store(true, Ordering::Release);
    writer.join().unwrap();
    let total = store.global_position();
    let segments = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(
        segments > 5,
        "the writer was to rotate segments: {segments} files"
    );
    drop(store);
    common::runtime().block_on(async {
        let js = common::jetstream(&server.url).await;
        let before = common::message_count(&js, &name).await;
        eprintln!("after 20 kills JetStream holds {before} of {total} events");
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let options = common::ship_options(dir.path(), &server.url, &name);
        let shipper = tokio::spawn(async move {
            ship(&options, async {
                stop_rx.await.ok();
            })
            .await
        });
        common::wait_for_messages(&js, &name, total, "the last shipper catching up").await;
        stop_tx.send(()).unwrap();
        shipper.await.unwrap().unwrap();
        let shipped = common::read_jetstream(&js, &name).await;
        common::assert_same(&common::read_store(dir.path()), &shipped);
    });
}
