//! A store that does not hold what JetStream holds is refused, naming both
//! event ids: another store shipped to the same stream, a store that lost
//! a tail JetStream already has, and a replica mirrored from elsewhere.
//! Nothing is shipped or imported over the difference.

mod common;

use std::process::{Command, Stdio};
use std::time::Instant;

use annals::{Store, replication};
use annals_nats::{Error, MirrorOptions, ShipOptions};

fn store_with(n: usize, rng: &mut common::Rng) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    common::append_events(&store, n, 10, rng);
    dir
}

#[test]
fn a_divergent_store_or_replica_is_refused() {
    let Some(server) = common::Server::any() else {
        return;
    };
    let mut rng = common::Rng::from_env("a_divergent_store_is_refused");
    let origin = store_with(500, &mut rng);
    let other = store_with(600, &mut rng);
    let shorter = store_with(100, &mut rng);
    let origin_events = common::read_store(origin.path());
    let other_events = common::read_store(other.path());
    let name = common::stream_name("divergent");
    common::runtime().block_on(async {
        let js = common::jetstream(&server.url).await;
        let (stop, shipper) =
            common::spawn_shipper(common::ship_options(origin.path(), &server.url, &name));
        common::wait_for_messages(&js, &name, 500, "shipping the origin").await;
        stop.send(()).unwrap();
        shipper.await.unwrap().unwrap();

        // Another store: its event at position 499 has another id.
        let (_stop, shipper) =
            common::spawn_shipper(common::ship_options(other.path(), &server.url, &name));
        let err = shipper.await.unwrap().unwrap_err();
        let text = err.to_string();
        match err {
            Error::Divergent {
                position,
                jetstream_id,
                ..
            } => {
                assert_eq!(position, 499);
                assert_eq!(jetstream_id, origin_events[499].id);
            }
            other => panic!("expected Divergent, got {other}"),
        }
        assert!(text.contains(&origin_events[499].id.to_string()), "{text}");
        assert!(text.contains(&other_events[499].id.to_string()), "{text}");

        // A store that ends before what JetStream holds.
        let (_stop, shipper) =
            common::spawn_shipper(common::ship_options(shorter.path(), &server.url, &name));
        let err = shipper.await.unwrap().unwrap_err();
        assert!(
            matches!(err, Error::Divergent { position: 499, .. }),
            "expected Divergent, got {err}"
        );
        assert!(err.to_string().contains("no event there"), "{err}");
        assert_eq!(
            common::message_count(&js, &name).await,
            500,
            "nothing was shipped over it"
        );

        // Another stream over the same subjects cannot be created; that
        // needs a person, not a retry.
        let options =
            ShipOptions::new(origin.path(), &server.url, format!("{name}_2")).subject_prefix(&name);
        let (_stop, shipper) = common::spawn_shipper(options);
        let err = shipper.await.unwrap().unwrap_err();
        assert!(
            matches!(err, Error::StreamConfig { .. }),
            "expected StreamConfig, got {err}"
        );

        // A replica that holds another store's events.
        let replica = tempfile::tempdir().unwrap();
        {
            let store = Store::open(replica.path()).unwrap();
            replication::import(&store, &other_events[..300]).unwrap();
        }
        let (_stop, mirror) =
            common::spawn_mirror(MirrorOptions::new(replica.path(), &server.url, &name));
        let err = mirror.await.unwrap().unwrap_err();
        assert!(
            matches!(err, Error::Divergent { position: 299, .. }),
            "expected Divergent, got {err}"
        );
        assert_eq!(
            common::read_store(replica.path()),
            other_events[..300].to_vec()
        );
    });

    // The binary says so and exits with a failure.
    let mut child = Command::new(env!("CARGO_BIN_EXE_annals-nats"))
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
        .arg(other.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + common::DEADLINE;
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the shipper of a divergent store did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("diverge at position 499"), "{stderr}");
    assert!(
        stderr.contains(&origin_events[499].id.to_string()),
        "{stderr}"
    );
}
