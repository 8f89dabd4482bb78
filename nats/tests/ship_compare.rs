//! Ships 100 k events and compares what JetStream holds with `read_all`,
//! event by event and field by field, at sequences 1..=100 000; then a
//! second run of the shipper finds JetStream's end and adds nothing.

mod common;

use annals::{Options, Store};
use annals_nats::ship;
use tokio::sync::oneshot;

#[test]
fn ships_100k_events_exactly_as_read_all_returns_them() {
    let Some(server) = common::Server::any() else {
        return;
    };
    let mut rng = common::Rng::from_env("ships_100k_events");
    let dir = tempfile::tempdir().unwrap();
    {
        // 4 MiB segments: the shipper reads across a few of them.
        let store = Store::open_with(dir.path(), Options::default().segment_size(4 << 20)).unwrap();
        common::append_events(&store, 100_000, 400, &mut rng);
        assert_eq!(store.global_position(), 100_000);
    }
    let name = common::stream_name("compare");
    let options = common::ship_options(dir.path(), &server.url, &name);
    common::runtime().block_on(async {
        let js = common::jetstream(&server.url).await;
        for run in 0..2 {
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let shipper = tokio::spawn({
                let options = options.clone();
                async move {
                    ship(&options, async {
                        stop_rx.await.ok();
                    })
                    .await
                }
            });
            common::wait_for_messages(&js, &name, 100_000, "shipping 100 k events").await;
            stop_tx.send(()).unwrap();
            let summary = shipper.await.unwrap().unwrap();
            if run == 1 {
                assert_eq!(summary.shipped, 0, "a second run ships nothing");
            }
        }
        let shipped = common::read_jetstream(&js, &name).await;
        common::assert_same(&common::read_store(dir.path()), &shipped);
    });
}
