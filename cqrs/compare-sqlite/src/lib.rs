//! Holds no code: see `../benches/commit.rs`.
