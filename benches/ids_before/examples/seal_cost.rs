//! Times encoding a segment index of N events with random ids, as a seal
//! does: `seal_cost N`.
use annals::index_format::{IndexHeader, StreamPart, encode_index};

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(190_000);
    let offsets: Vec<u32> = (0..n).map(|i| 64 + i * 340).collect();
    let positions: Vec<u32> = (0..n).collect();
    let mut x = 0x1234_5678_u64;
    let ids: Vec<([u8; 16], u32)> = (0..n)
        .map(|i| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1442695040888963407);
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&x.to_le_bytes());
            id[8..].copy_from_slice(&x.rotate_left(29).to_le_bytes());
            (id, i)
        })
        .collect();
    let streams = [StreamPart { name: b"s", first_version: 0, positions: &positions }];
    let header = IndexHeader {
        open: false,
        store_id: 1,
        segment_number: 0,
        first_position: 0,
        event_count: 0,
        data_end: 0,
        last_frame_at: 0,
        stream_count: 0,
        names_len: 0,
    };
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let out = encode_index(&header, &offsets, &streams, &ids).expect("encode");
        println!("{n} events: {:?} ({} bytes)", t.elapsed(), out.len());
    }
}
