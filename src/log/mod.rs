//! The log: everything between an append and the bytes on disk, and back
//! again at open.
//!
//! `format` encodes and decodes segment headers, frames and records on byte
//! slices (pure, fuzzed) and holds the one frame walker; `io` is the seam
//! through which every file-changing call goes; `segment` owns one segment
//! file and its memory map (the crate's only `unsafe`); `recovery` scans a
//! data directory at open and decides, by its table of cases, what the log
//! holds; `batch` validates and encodes an append; `writer`, with `group`
//! (group commit) and `prepare` (the next segment made ahead), writes,
//! syncs and publishes frames.
//!
//! This folder may import `crate::index` (to publish entries), `crate::error`,
//! `crate::event` and `crate::options`; nothing here knows about `Store` or
//! the read path.

pub(crate) mod batch;
#[doc(hidden)]
pub mod format;
pub(crate) mod group;
pub(crate) mod ids;
#[doc(hidden)]
pub mod io;
pub(crate) mod prepare;
pub(crate) mod recovery;
pub(crate) mod segment;
pub(crate) mod writer;
