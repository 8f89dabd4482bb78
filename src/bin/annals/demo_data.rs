//! The demo's events, generated deterministically from (stream, version),
//! so that every event read back can be checked against what must have been
//! written without keeping a copy.

use annals::RecordedEvent;

/// Bytes of every demo payload.
pub const PAYLOAD_LEN: usize = 256;

/// Event types, picked per event by its hash.
const TYPES: [&str; 4] = ["Deposited", "Withdrawn", "Transferred", "Audited"];

/// How the demo's events are spread: `events` over `streams`, the first
/// `events % streams` streams holding one more than the rest.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Events in all.
    pub events: u64,
    /// Streams in all.
    pub streams: u64,
}

impl Plan {
    /// How many events stream `s` gets.
    pub fn stream_len(&self, s: u64) -> u64 {
        self.events / self.streams + u64::from(s < self.events % self.streams)
    }
}

/// The name of demo stream `s`.
pub fn stream_name(s: u64) -> String {
    format!("account-{s:06}")
}

/// The stream number in a demo stream name.
pub fn stream_number(name: &str) -> Option<u64> {
    name.strip_prefix("account-")?.parse().ok()
}

/// SplitMix64: a tiny, well-mixed hash for deterministic filler.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn seed(s: u64, v: u64) -> u64 {
    mix(s.wrapping_mul(0x1_0000_0001) ^ mix(v))
}

/// The event type of version `v` of stream `s`.
pub fn event_type(s: u64, v: u64) -> &'static str {
    if v == 0 {
        "Opened"
    } else {
        TYPES[(seed(s, v) % TYPES.len() as u64) as usize]
    }
}

/// The payload of version `v` of stream `s`: a JSON object of exactly
/// [`PAYLOAD_LEN`] bytes, into `out` (cleared first).
pub fn payload(s: u64, v: u64, out: &mut Vec<u8>) {
    use std::io::Write as _;
    out.clear();
    let h = seed(s, v);
    let _ = write!(
        out,
        r#"{{"account":"{}","version":{v},"amount_cents":{},"note":""#,
        stream_name(s),
        h % 1_000_000
    );
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut x = h;
    while out.len() < PAYLOAD_LEN - 2 {
        x = mix(x);
        for shift in (0..64).step_by(4) {
            if out.len() == PAYLOAD_LEN - 2 {
                break;
            }
            out.push(HEX[((x >> shift) & 0xf) as usize]);
        }
    }
    out.extend_from_slice(br#""}"#);
}

/// Checks that `e` is version `v` of stream `s` as the demo wrote it;
/// `scratch` is reused for the expected payload.
pub fn check(e: &RecordedEvent, s: u64, v: u64, scratch: &mut Vec<u8>) -> Result<(), String> {
    let name = stream_name(s);
    if *e.stream_id != *name || e.version != v {
        return Err(format!(
            "position {}: expected {name}@{v}, found {}@{}",
            e.position, e.stream_id, e.version
        ));
    }
    if *e.event_type != *event_type(s, v) {
        return Err(format!(
            "{name}@{v}: type {} where {} was written",
            e.event_type,
            event_type(s, v)
        ));
    }
    payload(s, v, scratch);
    if e.data[..] != scratch[..] {
        return Err(format!(
            "{name}@{v} (position {}): the payload differs from what was written",
            e.position
        ));
    }
    if !e.metadata.is_empty() {
        return Err(format!("{name}@{v}: metadata where none was written"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_fixed_size_json_and_deterministic() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        payload(42, 7, &mut a);
        payload(42, 7, &mut b);
        assert_eq!(a, b);
        assert_eq!(a.len(), PAYLOAD_LEN);
        let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["version"], 7);
        payload(42, 8, &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn plan_spreads_every_event() {
        let plan = Plan {
            events: 1003,
            streams: 10,
        };
        let total: u64 = (0..10).map(|s| plan.stream_len(s)).sum();
        assert_eq!(total, 1003);
        assert_eq!(plan.stream_len(0), 101);
        assert_eq!(plan.stream_len(9), 100);
    }

    #[test]
    fn check_catches_every_kind_of_difference() {
        let mut data = Vec::new();
        payload(3, 5, &mut data);
        let good = RecordedEvent {
            stream_id: stream_name(3).into(),
            version: 5,
            position: 77,
            event_type: event_type(3, 5).into(),
            data: data.clone().into(),
            metadata: annals::Bytes::new(),
            id: annals::Uuid::nil(),
            recorded_at: 0,
        };
        let mut scratch = Vec::new();
        assert_eq!(check(&good, 3, 5, &mut scratch), Ok(()));
        assert!(check(&good, 3, 6, &mut scratch).is_err(), "wrong version");
        assert!(check(&good, 4, 5, &mut scratch).is_err(), "wrong stream");
        let mut flipped = data.clone();
        flipped[100] ^= 1;
        let bad_data = RecordedEvent {
            data: flipped.into(),
            ..good.clone()
        };
        assert!(check(&bad_data, 3, 5, &mut scratch).is_err(), "payload");
        let bad_type = RecordedEvent {
            event_type: "Opened-ish".into(),
            ..good.clone()
        };
        assert!(check(&bad_type, 3, 5, &mut scratch).is_err(), "type");
        let with_metadata = RecordedEvent {
            metadata: annals::Bytes::from_static(b"m"),
            ..good
        };
        assert!(
            check(&with_metadata, 3, 5, &mut scratch).is_err(),
            "metadata"
        );
    }

    #[test]
    fn stream_names_round_trip() {
        assert_eq!(stream_number(&stream_name(1234)), Some(1234));
        assert_eq!(stream_number("other"), None);
    }
}
