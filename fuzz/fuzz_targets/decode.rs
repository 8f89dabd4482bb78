//! Fuzzes the on-disk decoders on their own: segment headers, frame
//! headers, frames, records and whole segment files must never panic on any
//! bytes, never hold more entries than the input justifies, and give back
//! exactly what the encoders wrote; any damage to a valid frame or segment
//! must be caught.
//!
//! The input is used four ways: as raw bytes; as raw bytes whose
//! checksums are fixed up first, so that the checks behind the CRC (lengths,
//! UTF-8, padding, reserved bytes) see arbitrary values; as the body of a
//! segment file after a valid header; and as a structured description of
//! records that are encoded as frames and as a whole segment, decoded,
//! compared, then damaged. Segments go through what recovery uses: the
//! header check (`check_segment_header`) and the one frame walker
//! (`Frames`, based at `SEGMENT_HEADER_LEN`, expecting a first position).

#![no_main]

use annals::format::{
    ALIGN, DecodeError, End, FRAME_HEADER_LEN, FrameHeader, Frames, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN, Salt, SegmentHeader, check_segment_header, decode_frame,
    decode_frame_header, decode_record, decode_record_bytes, decode_segment_header,
    encode_frame_header, encode_segment_header, seal_record,
};
use annals_fuzz::{Rec, build_frame, build_segment, segment_size_for};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Spec {
    store_id: u64,
    segment_number: u64,
    segment_size: u64,
    first_position: u32,
    records: Vec<Rec>,
    /// Into how many frames (one to four) the whole segment cuts the records.
    frames: u8,
    /// Whether the segment's second frame starts one position too far.
    gap: bool,
    damage_at: u32,
    damage_xor: u8,
    cut: u32,
}

fuzz_target!(|input: &[u8]| {
    let store_id = word(input, 0).unwrap_or(0);
    let number = word(input, 8).unwrap_or(0);
    let salt = Salt::new(store_id, number);
    raw(input, salt);
    in_a_segment(input, store_id, number, 0);
    sealed(input, store_id, number);
    if let Ok(spec) = Spec::arbitrary(&mut Unstructured::new(input)) {
        round_trip(&spec);
        whole_segment(&spec);
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

/// A record as a walk gave it back, owned, to compare with what was
/// encoded.
#[derive(Debug, PartialEq, Eq)]
struct Got {
    position: u64,
    version: u64,
    stream: Vec<u8>,
    event_type: Vec<u8>,
    metadata: Vec<u8>,
    data: Vec<u8>,
    id: [u8; 16],
    recorded_at_us: u64,
}

/// What a walk over a whole segment found.
#[derive(Debug, PartialEq, Eq)]
struct Walked {
    /// Where each frame taken starts in the file.
    frames: Vec<usize>,
    records: Vec<Got>,
    end: End,
}

/// Walks the segment file `image` numbered `number` as recovery does: its
/// header checked against the file, then its frames from
/// `SEGMENT_HEADER_LEN` through the one frame walker, the first expected at
/// `first_position`. Whatever the bytes, the walk never panics, never
/// reports an offset outside the file, and the frames it takes are dense,
/// in order, and hold their records.
fn walk_segment(image: &[u8], number: u64, first_position: u64) -> Result<Walked, DecodeError> {
    let header = check_segment_header(image, number, image.len() as u64, None)?;
    assert_eq!(header.segment_number, number);
    let salt = Salt::new(header.store_id, number);
    let body = image.get(SEGMENT_HEADER_LEN..).unwrap_or_default();
    let mut frames = Frames::new(body, salt)
        .based_at(SEGMENT_HEADER_LEN)
        .expecting(first_position);
    let mut walked = Walked {
        frames: Vec::new(),
        records: Vec::new(),
        end: End::Clean { at: 0 },
    };
    let mut next = SEGMENT_HEADER_LEN;
    let mut position = first_position;
    while let Some(f) = frames.next_frame() {
        assert_eq!(f.at, next);
        assert_eq!(f.header.first_position, position);
        assert_eq!(f.records.len(), f.header.event_count as usize);
        assert!(f.end() <= image.len());
        walked.frames.push(f.at);
        for (i, (o, r)) in f.records.iter().enumerate() {
            assert!(*o > f.at && o + r.padded_len <= f.end());
            assert_eq!(r.position, position + i as u64);
            walked.records.push(Got {
                position: r.position,
                version: r.version,
                stream: r.stream.to_vec(),
                event_type: r.event_type.to_vec(),
                metadata: image[o + r.metadata.start..o + r.metadata.end].to_vec(),
                data: image[o + r.data.start..o + r.data.end].to_vec(),
                id: r.id,
                recorded_at_us: r.recorded_at_us,
            });
        }
        next = f.end();
        position = f.positions().end;
    }
    assert!(walked.records.len() <= body.len() / RECORD_HEADER_LEN);
    walked.end = frames.finish();
    assert_eq!(walked.end.at(), next);
    assert!(walked.end.at() <= image.len());
    if let Some((offset, _)) = walked.end.problem() {
        assert!(offset >= walked.end.at() && offset <= image.len());
    }
    Ok(walked)
}

/// Arbitrary bytes as the body of a whole segment file, after a valid
/// header of store `store_id` and number `number`: the header check passes,
/// and the walk keeps [`walk_segment`]'s promises.
fn in_a_segment(body: &[u8], store_id: u64, number: u64, first_position: u64) {
    let header = SegmentHeader {
        store_id,
        segment_number: number,
        segment_size: segment_size_for(body.len()),
    };
    let image = build_segment(&header, body).expect("sized to fit");
    walk_segment(&image, number, first_position).expect("a valid header passes");
}

/// The input with its checksums made valid: a frame header over the first
/// bytes and a sealed record at every place the lengths point to; decoded
/// alone and walked as a segment's body.
fn sealed(input: &[u8], store_id: u64, number: u64) {
    let salt = Salt::new(store_id, number);
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
        in_a_segment(&bytes, store_id, number, header.first_position);
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
    // A control or gap record (format 2's flags) re-encodes only through
    // the writer's own paths, which `build_frame` does not take.
    if r.control || r.gap {
        return;
    }
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
        if r.control || r.gap {
            // See `check_record`: not re-encoded here.
            return;
        }
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

/// A whole segment file as the writer lays one out: a header, the records
/// cut into up to four frames, zeros. Walked as recovery walks it, it gives
/// back every record and ends clean where the frames end; with a position
/// gap before the second frame it ends out of order there. Any flipped
/// byte, and any torn write (the frames zeroed from a cut on), is caught
/// at the frame it lands in, with exactly the frames before it taken.
fn whole_segment(spec: &Spec) {
    let records = &spec.records[..spec.records.len().min(16)];
    let (store_id, number) = (spec.store_id, spec.segment_number);
    let salt = Salt::new(store_id, number);
    let first = u64::from(spec.first_position);
    let per_frame = records
        .len()
        .div_ceil(1 + usize::from(spec.frames % 4))
        .max(1);
    // Where each frame starts in the file, and the positions it holds.
    let mut starts = Vec::new();
    let mut positions = Vec::new();
    let mut body = Vec::new();
    let mut position = first;
    for (i, chunk) in records.chunks(per_frame).enumerate() {
        if i == 1 && spec.gap {
            position += 1;
        }
        let Some(frame) = build_frame(salt, position, chunk) else {
            return;
        };
        starts.push(SEGMENT_HEADER_LEN + body.len());
        positions.push(position..position + chunk.len() as u64);
        body.extend_from_slice(&frame);
        position += chunk.len() as u64;
    }
    let header = SegmentHeader {
        store_id,
        segment_number: number,
        segment_size: segment_size_for(body.len()),
    };
    let image = build_segment(&header, &body).expect("sized to fit");
    let len = image.len() as u64;
    let body_end = SEGMENT_HEADER_LEN + body.len();

    // The header checks as recovery makes them: this file passes, and a
    // file of another number, length or store does not.
    assert_eq!(check_segment_header(&image, number, len, None), Ok(header));
    assert_eq!(
        check_segment_header(&image, number, len, Some(&header)),
        Ok(header)
    );
    assert!(check_segment_header(&image, number.wrapping_add(1), len, None).is_err());
    assert!(check_segment_header(&image, number, len + 1, None).is_err());
    let other_store = SegmentHeader {
        store_id: store_id ^ 1,
        ..header
    };
    assert!(check_segment_header(&image, number, len, Some(&other_store)).is_err());

    // The walk stops at the gap, or takes every frame.
    let stop = if spec.gap && starts.len() >= 2 {
        1
    } else {
        starts.len()
    };
    let walked = walk_segment(&image, number, first).expect("a valid header passes");
    assert_eq!(walked.frames, starts[..stop]);
    let want = &records[..(stop * per_frame).min(records.len())];
    assert_eq!(walked.records.len(), want.len());
    for (i, (got, want)) in walked.records.iter().zip(want).enumerate() {
        let encoded = Got {
            position: first + i as u64,
            version: want.version,
            stream: want.stream.as_bytes().to_vec(),
            event_type: want.event_type.as_bytes().to_vec(),
            metadata: want.metadata.clone(),
            data: want.data.clone(),
            id: want.id,
            recorded_at_us: want.recorded_at_us,
        };
        assert_eq!(got, &encoded);
    }
    let end = if stop == starts.len() {
        End::Clean { at: body_end }
    } else {
        End::OutOfOrder {
            at: starts[stop],
            first_position: positions[stop].start,
            expected: positions[stop - 1].end,
        }
    };
    assert_eq!(walked.end, end);

    let mut bounds = starts.clone();
    bounds.push(body_end);
    let frames = Changed {
        image: &image,
        number,
        first,
        bounds: &bounds,
        stop,
        walked: &walked,
    };
    if spec.damage_xor != 0 {
        let mut damaged = image.clone();
        damaged[spec.damage_at as usize % image.len()] ^= spec.damage_xor;
        frames.assert_caught(&damaged);
    }
    if !body.is_empty() {
        let cut = SEGMENT_HEADER_LEN + spec.cut as usize % body.len();
        let mut torn = image.clone();
        torn[cut..body_end].fill(0);
        frames.assert_caught(&torn);
    }
}

/// A valid segment built by [`whole_segment`], to compare changed copies
/// of it with.
struct Changed<'a> {
    image: &'a [u8],
    number: u64,
    first: u64,
    /// Where each frame starts in the file, and last where the frames end
    /// (the zero tail counts as one more frame).
    bounds: &'a [usize],
    /// The index of the frame where the walk of `image` stops.
    stop: usize,
    /// The walk of `image`.
    walked: &'a Walked,
}

impl Changed<'_> {
    /// Asserts that the walk of `changed`, a copy of the image with bytes
    /// changed, is caught where the first change lands: in the header, the
    /// header check fails; in a frame the walk reaches (or the zero tail
    /// after the last), the walk takes exactly the frames before it and ends
    /// there, clean only if nothing but zeros follow. A change in the zero
    /// tail is named at its own byte, unless it lands in the end marker's
    /// length word (which then reads as a frame header that fails). A
    /// change past where the walk stops changes nothing.
    fn assert_caught(&self, changed: &[u8]) {
        let Some(from) = changed.iter().zip(self.image).position(|(a, b)| a != b) else {
            let walked = walk_segment(changed, self.number, self.first).expect("unchanged");
            assert_eq!(&walked, self.walked);
            return;
        };
        if from < SEGMENT_HEADER_LEN {
            let walked = walk_segment(changed, self.number, self.first);
            assert!(
                walked.is_err(),
                "a change at byte {from} of the header passed"
            );
            return;
        }
        let walked = walk_segment(changed, self.number, self.first).expect("header unchanged");
        let j = self.bounds.partition_point(|s| *s <= from) - 1;
        if j > self.stop {
            assert_eq!(
                &walked, self.walked,
                "a change at {from} after the walk's end"
            );
            return;
        }
        let at = self.bounds[j];
        assert_eq!(walked.frames, self.bounds[..j], "a change at {from}");
        if changed[at..].iter().all(|b| *b == 0) {
            assert_eq!(walked.end, End::Clean { at }, "zeros from {at}");
        } else {
            assert!(
                matches!(&walked.end, End::Failed { at: a, offset, .. }
                    if *a == at && *offset >= at && *offset < changed.len()
                        && (j + 1 < self.bounds.len() || *offset == from || from < at + 4)),
                "a change at {from} in the frame at {at} was not caught: {:?}",
                walked.end
            );
        }
    }
}
