//! The smallest whole program: open a store in a temporary directory,
//! append to a few streams with optimistic concurrency, read them back,
//! reopen, and read the global log.

use annals::{EventData, ExpectedVersion, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("annals-quickstart-{}", std::process::id()));
    let store = Store::open(&dir)?;
    println!("store at {}", dir.display());

    for order in 0..3 {
        let stream = format!("order-{order}");
        store.append(
            &stream,
            ExpectedVersion::NoStream,
            &[EventData::new(
                "OrderPlaced",
                format!(r#"{{"order":{order},"total":10}}"#),
            )],
        )?;
        let r = store.append(
            &stream,
            ExpectedVersion::Exact(0),
            &[EventData::new("OrderPaid", r#"{"amount":10}"#)],
        )?;
        println!(
            "{stream}: version {:?}, position {:?}",
            r.last_version(),
            r.last_position()
        );
    }

    match store.append(
        "order-0",
        ExpectedVersion::Exact(0),
        &[EventData::new("OrderCancelled", "{}")],
    ) {
        Err(e) => println!("a stale writer is refused: {e}"),
        Ok(_) => return Err("a stale expected version was accepted".into()),
    }
    store.close()?;

    let store = Store::open(&dir)?;
    println!("reopened: {} events", store.global_position());
    for e in store.read_all(0, 100)? {
        println!(
            "  #{} {}@{} {} {}",
            e.position,
            e.stream_id,
            e.version,
            e.event_type,
            String::from_utf8_lossy(&e.data)
        );
    }
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
