//! The JetStream behaviour that exactly-once shipping rests on, checked
//! against the real server: a publish that expects another last sequence
//! is refused and stores nothing, including the first publish of all
//! (expected sequence 0) on a stream that is no longer empty.

mod common;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream;

#[test]
fn expected_last_sequence_is_enforced() {
    let Some(server) = common::Server::any() else {
        return;
    };
    common::runtime().block_on(async {
        let js = common::jetstream(&server.url).await;
        let name = common::stream_name("guarantees");
        js.create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })
        .await
        .expect("create the stream");
        let subject = format!("{name}.x");
        let publish = |expected: u64, id: &str| {
            js.send_publish(
                subject.clone(),
                PublishMessage::build()
                    .payload("p".into())
                    .message_id(id)
                    .expected_last_sequence(expected),
            )
        };
        let ack = publish(0, "a").await.unwrap().await.unwrap();
        assert_eq!(ack.sequence, 1);
        let refused = publish(0, "b").await.unwrap().await;
        assert_eq!(
            refused.map_err(|e| e.kind()),
            Err(PublishErrorKind::WrongLastSequence),
            "expected last sequence 0 on a non-empty stream must be refused"
        );
        let refused = publish(5, "c").await.unwrap().await;
        assert_eq!(
            refused.map_err(|e| e.kind()),
            Err(PublishErrorKind::WrongLastSequence)
        );
        let ack = publish(1, "d").await.unwrap().await.unwrap();
        assert_eq!(ack.sequence, 2);
        assert_eq!(common::message_count(&js, &name).await, 2);
    });
}
