//! Fuzzes the on-disk decoders on their own: segment headers, frame
//! headers, frames and records must never panic on any bytes, never hold
//! more entries than the input justifies, and give back exactly what the
//! encoders wrote; any damage to a valid frame must be caught.
//!
//! The input is used three ways: as raw bytes; as raw bytes whose
//! checksums are fixed up first, so that the checks behind the CRC (lengths,
//! UTF-8, padding, reserved bytes) see arbitrary values; and as a
//! structured description of records that are encoded, decoded, compared,
//! then damaged.

#![no_main]

use annals::format::{
    ALIGN, End, FRAME_HEADER_LEN, Frames, FrameHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, Salt,
    SegmentHeader, decode_frame, decode_frame_header, decode_record, decode_record_bytes,
    decode_segment_header, encode_frame_header, encode_segment_header, seal_record,
};
use annals_fuzz::{Rec, build_frame};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Spec {
    store_id: u64,
    segment_number: u64,
    segment_size: u64,
    first_position: u32,
    records: Vec<Rec>,
    damage_at: u32,
    damage_xor: u8,
    cut: u32,
}

fuzz_target!(|input: &[u8]| {
    let salt = Salt::new(word(input, 0).unwrap_or(0), word(input, 8).unwrap_or(0));
    raw(input, salt);
    walk(input, salt);
    sealed(input, salt);
    if let Ok(spec) = Spec::arbitrary(&mut Unstructured::new(input)) {
        round_trip(&spec);
    }
});

fn word(input: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(input.get(at..at + 8)?.try_into().ok()?))
}

/// Arbitrary bytes through every decoder: no panic, and whatever passes
/// re-encodes to the same bytes.
fn raw(untrusted: &[u8], salt: Salt) {
    if let Ok(h) = decode_segment_header(untrusted) {
        assert_eq!(
            &encode_segment_header(&h)[..],
            &untrusted[..SEGMENT_HEADER_LEN]
        );
    }
    if let Ok(Some(h)) = decode_frame_header(untrusted, salt) {
        let mut again = [0u8; FRAME_HEADER_LEN];
        encode_frame_header(&mut again, salt, &h);
        assert_eq!(&again[..], &untrusted[..FRAME_HEADER_LEN]);
    }
    check_record(untrusted, salt);
    check_frame(untrusted, salt);
}

/// Arbitrary bytes as a segment's body through the one frame walker that
/// recovery, the follower and `verify` use: it never panics, never reports
/// an offset outside the bytes, and the frames it takes are dense, in
/// order, and hold their records.
fn walk(untrusted: &[u8], salt: Salt) {
    let base = SEGMENT_HEADER_LEN;
    let mut frames = Frames::new(untrusted, salt).based_at(base).expecting(0);
    let mut next = base;
    let mut position = 0u64;
    let mut taken = 0usize;
    while let Some(f) = frames.next_frame() {
        assert_eq!(f.at, next);
        assert_eq!(f.header.first_position, position);
        assert_eq!(f.records.len(), f.header.event_count as usize);
        assert!(f.records.iter().all(|(o, _)| *o > f.at && *o < f.end()));
        next = f.end();
        position = f.positions().end;
        taken += f.records.len();
    }
    assert!(taken <= untrusted.len() / RECORD_HEADER_LEN);
    let end = frames.finish();
    assert_eq!(end.at(), next);
    assert!(end.at() <= base + untrusted.len());
    if let Some((offset, _)) = end.problem() {
        assert!(offset >= end.at() && offset <= base + untrusted.len());
    }
}

/// The input with its checksums made valid: a frame header over the first
/// bytes and a sealed record at every place the lengths point to.
fn sealed(input: &[u8], salt: Salt) {
    let mut bytes = input.to_vec();
    if bytes.len() >= FRAME_HEADER_LEN {
        let header = FrameHeader {
            frame_len: u32::from_le_bytes(bytes[0..4].try_into().unwrap()),
            first_position: word(&bytes, 8).unwrap_or(0),
            event_count: u32::from_le_bytes(bytes[16..20].try_into().unwrap()) % 64,
        };
        encode_frame_header(&mut bytes, salt, &header);
        let mut at = FRAME_HEADER_LEN;
        for i in 0..header.event_count {
            // The encoders expect a buffer sized for the layout.
            let Some(record) = bytes.get_mut(at..).filter(|r| r.len() >= RECORD_HEADER_LEN) else {
                break;
            };
            let len = record
                .get(0..4)
                .map_or(0, |l| u32::from_le_bytes(l.try_into().unwrap()) as usize);
            let version = word(record, 16).unwrap_or(0);
            seal_record(
                record,
                salt,
                header.first_position.wrapping_add(u64::from(i)),
                version,
            );
            at = at.saturating_add(len.max(RECORD_HEADER_LEN).next_multiple_of(ALIGN));
        }
        check_frame(&bytes, salt);
    }
    if input.len() >= RECORD_HEADER_LEN {
        let mut record = input.to_vec();
        let version = word(&record, 16).unwrap_or(0);
        let position = word(&record, 8).unwrap_or(0);
        seal_record(&mut record, salt, position, version);
        check_record(&record, salt);
    }
}

/// Decodes a record; if it passes, its parts lie inside it and it
/// re-encodes to the same bytes.
fn check_record(untrusted: &[u8], salt: Salt) {
    let raw = decode_record_bytes(untrusted, salt);
    let Ok(r) = decode_record(untrusted, salt) else {
        return;
    };
    let raw = raw.expect("decode_record passed but decode_record_bytes failed");
    assert_eq!(
        (raw.position, raw.version, raw.padded_len),
        (r.position, r.version, r.padded_len)
    );
    assert!(r.padded_len <= untrusted.len() && r.padded_len % ALIGN == 0);
    assert!(r.metadata.end == r.data.start && r.data.end <= r.padded_len);
    let rec = Rec {
        stream: r.stream.to_owned(),
        event_type: r.event_type.to_owned(),
        metadata: untrusted[r.metadata.clone()].to_vec(),
        data: untrusted[r.data.clone()].to_vec(),
        id: r.id,
        recorded_at_us: r.recorded_at_us,
        version: r.version,
    };
    let frame = build_frame(salt, r.position, &[rec]).expect("a decoded record re-encodes");
    assert_eq!(&frame[FRAME_HEADER_LEN..], &untrusted[..r.padded_len]);
}

/// Decodes a frame; if it passes, its records are dense, inside it, no more
/// than its bytes allow, and it re-encodes to the same bytes.
fn check_frame(untrusted: &[u8], salt: Salt) {
    let mut records = Vec::new();
    let Ok(Some(h)) = decode_frame(untrusted, salt, &mut records) else {
        return;
    };
    assert_eq!(records.len(), h.event_count as usize);
    assert!(records.len() <= untrusted.len() / RECORD_HEADER_LEN);
    let frame_len = h.frame_len as usize;
    assert!(frame_len <= untrusted.len());
    let mut recs = Vec::new();
    for (i, (offset, r)) in records.iter().enumerate() {
        assert_eq!(r.position, h.first_position + i as u64);
        assert!(offset + r.padded_len <= frame_len);
        recs.push(Rec {
            stream: r.stream.to_owned(),
            event_type: r.event_type.to_owned(),
            metadata: untrusted[offset + r.metadata.start..offset + r.metadata.end].to_vec(),
            data: untrusted[offset + r.data.start..offset + r.data.end].to_vec(),
            id: r.id,
            recorded_at_us: r.recorded_at_us,
            version: r.version,
        });
    }
    let again = build_frame(salt, h.first_position, &recs).expect("a decoded frame re-encodes");
    assert_eq!(&again[..], &untrusted[..frame_len]);
}

/// Fields from the input, encoded, decoded and compared; then every kind of
/// damage to the encoding must be refused.
fn round_trip(spec: &Spec) {
    let header = SegmentHeader {
        store_id: spec.store_id,
        segment_number: spec.segment_number,
        segment_size: spec.segment_size,
    };
    assert_eq!(
        decode_segment_header(&encode_segment_header(&header)),
        Ok(header)
    );

    let salt = Salt::new(spec.store_id, spec.segment_number);
    let records = &spec.records[..spec.records.len().min(16)];
    let first = u64::from(spec.first_position);
    let Some(frame) = build_frame(salt, first, records) else {
        return;
    };
    let mut decoded = Vec::new();
    let result = decode_frame(&frame, salt, &mut decoded);
    // Stream ids and event types must be non-empty; the encoder does not
    // check (the store validates before encoding), the decoder must.
    let valid = !records.is_empty()
        && records
            .iter()
            .all(|r| !r.stream.is_empty() && !r.event_type.is_empty());
    if !valid {
        assert!(result.is_err(), "a frame without events or names passed");
        return;
    }
    let h = result
        .expect("a valid frame decodes")
        .expect("not the end marker");
    assert_eq!(
        (
            h.frame_len as usize,
            h.first_position,
            h.event_count as usize
        ),
        (frame.len(), first, records.len())
    );
    for ((offset, got), want) in decoded.iter().zip(records) {
        assert_eq!(got.stream, want.stream);
        assert_eq!(got.event_type, want.event_type);
        assert_eq!(
            &frame[offset + got.metadata.start..offset + got.metadata.end],
            &want.metadata[..]
        );
        assert_eq!(
            &frame[offset + got.data.start..offset + got.data.end],
            &want.data[..]
        );
        assert_eq!(
            (got.id, got.recorded_at_us, got.version),
            (want.id, want.recorded_at_us, want.version)
        );
    }
    // Any changed byte is caught (CRC-32 catches every burst of 32 bits or
    // less, and padding and reserved bytes are checked to be zero).
    if spec.damage_xor != 0 {
        let mut damaged = frame.clone();
        let at = spec.damage_at as usize % damaged.len();
        damaged[at] ^= spec.damage_xor;
        // A length word flipped to zero reads as the end marker; recovery
        // then finds the non-zero bytes after it.
        let end_marker = damaged[..4] == [0; 4];
        match decode_frame(&damaged, salt, &mut Vec::new()) {
            Err(_) => {}
            Ok(None) if end_marker => {}
            Ok(_) => panic!("a flip of byte {at} passed"),
        }
    }
    // Two such frames and zeros walk clean, as two frames; with the first
    // damaged, the walk takes nothing and does not end clean.
    let mut segment = frame.clone();
    let second = build_frame(salt, first + records.len() as u64, records)
        .expect("the same records encode again");
    segment.extend_from_slice(&second);
    segment.resize(segment.len() + 64, 0);
    let mut frames = Frames::new(&segment, salt).expecting(first);
    let mut count = 0;
    while frames.next_frame().is_some() {
        count += 1;
    }
    assert_eq!(count, 2);
    assert_eq!(frames.finish(), End::Clean { at: frame.len() + second.len() });
    if spec.damage_xor != 0 {
        let at = spec.damage_at as usize % frame.len();
        segment[at] ^= spec.damage_xor;
        let mut frames = Frames::new(&segment, salt).expecting(first);
        assert!(frames.next_frame().is_none(), "a flip of byte {at} was walked past");
        assert!(!frames.finish().is_clean());
    }
    // Any cut is caught.
    let cut = spec.cut as usize % frame.len();
    assert!(
        decode_frame(&frame[..cut], salt, &mut Vec::new()).is_err(),
        "a frame cut to {cut} bytes passed"
    );
    // Another segment's salt is refused.
    let other = Salt::new(spec.store_id, spec.segment_number.wrapping_add(1));
    if other != salt {
        assert!(decode_frame(&frame, other, &mut Vec::new()).is_err());
    }
}
