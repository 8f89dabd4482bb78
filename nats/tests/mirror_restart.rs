//! A mirror across restarts: the `annals-nats mirror` binary killed with
//! SIGKILL at random moments (seeded; `ANNALS_NATS_SEED` replays) while
//! the origin is written and shipped, and nats-server restarted once
//! under it. Each new mirror resumes after the replica's own last
//! position, and the replica ends equal to the origin.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use annals::Store;
use annals_nats::MirrorOptions;

#[test]
fn a_mirror_resumes_after_kills_and_a_server_restart() {
    let Some(mut server) = common::Server::own() else {
        return;
    };
    let mut rng = common::Rng::from_env("a_mirror_resumes");
    let origin = tempfile::tempdir().unwrap();
    let replica = tempfile::tempdir().unwrap();
    // An empty replica, so that it can be watched read-only from the start.
    Store::open(replica.path()).unwrap().close().unwrap();
    let store = Arc::new(Store::open(origin.path()).unwrap());
    common::append_events(&store, 2_000, 50, &mut rng);
    let stop_writer = Arc::new(AtomicBool::new(false));
    let writer = common::spawn_writer(
        Arc::clone(&store),
        Arc::clone(&stop_writer),
        100_000,
        rng.fork(),
    );
    let name = common::stream_name("mirror_restart");
    let binary = env!("CARGO_BIN_EXE_annals-nats");
    common::runtime().block_on(async {
        let js = common::jetstream(&server.url).await;
        let (stop_ship, shipper) =
            common::spawn_shipper(common::ship_options(origin.path(), &server.url, &name));
        common::wait_for_messages(&js, &name, 2_000, "shipping the first events").await;
        for round in 0..6 {
            let mut child = Command::new(binary)
                .args([
                    "mirror",
                    "--server",
                    &server.url,
                    "--stream",
                    &name,
                    "--store",
                ])
                .arg(replica.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("annals-nats starts");
            if round == 3 {
                // The server goes away under a running mirror (and under
                // the shipper), and comes back.
                common::wait_for_store(replica.path(), 1, "mirroring before the server restart")
                    .await;
                server.restart(true);
            }
            tokio::time::sleep(Duration::from_millis(rng.below(500))).await;
            child.kill().expect("SIGKILL the mirror");
            child.wait().unwrap();
        }
        stop_writer.store(true, Ordering::Release);
        writer.join().unwrap();
        let total = store.global_position();
        common::wait_for_messages(&js, &name, total, "shipping the rest").await;
        let (stop_mirror, mirror) =
            common::spawn_mirror(MirrorOptions::new(replica.path(), &server.url, &name));
        common::wait_for_store(replica.path(), total, "the last mirror catching up").await;
        stop_mirror.send(()).unwrap();
        let summary = mirror.await.unwrap().unwrap();
        assert!(
            summary.imported < total,
            "the last mirror started over: {summary:?}"
        );
        stop_ship.send(()).unwrap();
        shipper.await.unwrap().unwrap();
    });
    assert_eq!(
        common::read_store(replica.path()),
        common::read_store(origin.path())
    );
}
