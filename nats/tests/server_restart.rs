//! nats-server restarted twice while the shipper publishes and the writer
//! appends, once killed (SIGKILL, which may lose messages JetStream had
//! already acknowledged) and once stopped (SIGTERM): the shipper
//! reconnects (and, when the server was away long enough for
//! acknowledgements to time out, resumes from what JetStream really
//! holds), and in the end
//! JetStream holds every event exactly once, in order.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use annals::Store;

#[test]
fn shipping_survives_server_restarts() {
    let Some(mut server) = common::Server::own() else {
        return;
    };
    let mut rng = common::Rng::from_env("shipping_survives_server_restarts");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let stop_writer = Arc::new(AtomicBool::new(false));
    let writer = common::spawn_writer(
        Arc::clone(&store),
        Arc::clone(&stop_writer),
        200_000,
        rng.fork(),
    );
    let name = common::stream_name("restart");
    let runtime = common::runtime();
    runtime.block_on(async {
        let js = common::jetstream(&server.url).await;
        let (stop, shipper) =
            common::spawn_shipper(common::ship_options(dir.path(), &server.url, &name));
        let mut target = 1_000;
        for hard in [true, false] {
            common::wait_for_messages(&js, &name, target, "shipping before a restart").await;
            // Away for a random while: sometimes back before the client
            // notices, sometimes long enough for acknowledgements to time
            // out and the shipper to resume from JetStream's end.
            let down = std::time::Duration::from_millis(rng.below(1_500));
            server.restart_after(hard, down);
            target = common::message_count(&js, &name).await.max(target) + 1_000;
        }
        common::wait_for_messages(&js, &name, target, "shipping after the restarts").await;
        stop_writer.store(true, Ordering::Release);
        writer.join().unwrap();
        let total = store.global_position();
        common::wait_for_messages(&js, &name, total, "catching up after the writer stopped").await;
        stop.send(()).unwrap();
        shipper.await.unwrap().unwrap();
        let shipped = common::read_jetstream(&js, &name).await;
        common::assert_same(&common::read_store(dir.path()), &shipped);
    });
}
