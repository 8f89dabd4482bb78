//! Preparing the next segment ahead of need, on a background thread, so
//! that creating, zero-filling and syncing a segment never lands on the
//! append that crosses into it.
//!
//! The writer starts a preparation once the active segment holds a durable
//! frame (never earlier: two empty segments after the active one would be
//! refused by recovery), and collects it when it rotates. A failed or
//! unfinished preparation costs only time: the writer then creates the
//! segment itself.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::Error;
use crate::format::SegmentHeader;
use crate::io::FileIo;
use crate::log::segment::Segment;

type Prepared = Result<(Arc<Segment>, File), Error>;

/// A segment being created on a background thread.
#[derive(Debug)]
pub(crate) struct Preparation {
    number: u64,
    handle: JoinHandle<Prepared>,
}

impl Preparation {
    /// Starts creating the segment `header` describes; `None` if no thread
    /// could be started.
    pub(crate) fn start(
        io: Arc<dyn FileIo>,
        dir: PathBuf,
        header: SegmentHeader,
    ) -> Option<Preparation> {
        let handle = std::thread::Builder::new()
            .name(format!("annals-prepare-{}", header.segment_number))
            .spawn(move || Segment::create(&*io, &dir, &header))
            .ok()?;
        Some(Preparation {
            number: header.segment_number,
            handle,
        })
    }

    /// The number of the segment being prepared.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// Waits for the preparation and returns the segment.
    pub(crate) fn finish(self) -> Prepared {
        self.handle.join().unwrap_or_else(|_| {
            Err(Error::io(
                "prepare segment",
                PathBuf::new(),
                std::io::Error::other("the preparing thread panicked"),
            ))
        })
    }
}
