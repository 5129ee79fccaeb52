//! Taps: copies of the frames crossing an edge, for a reader on another
//! thread, through a bounded lock-free queue that never blocks a worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;

use crate::elements::classify::Filter;
use crate::packet::Batch;

/// Timestamps below this (2001-09-09 in ns since the epoch) are not wall
/// clock times (a generator's, a monotonic clock's): a copy then gets the
/// time it was made.
const WALL_CLOCK_FROM: u64 = 1_000_000_000_000_000_000;

/// One copied frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapCopy {
    /// When it crossed the edge: ns since the Unix epoch.
    pub time_ns: u64,
    /// Its length on the wire (more than `data.len()` for a cut capture).
    pub wire_len: usize,
    /// The frame's bytes.
    pub data: Vec<u8>,
}

/// What a tap's workers and its reader share.
#[derive(Debug)]
pub struct TapShared {
    copies: ArrayQueue<TapCopy>,
    /// Buffers the reader gave back, so that copying allocates nothing once
    /// the queue has been round once.
    spare: ArrayQueue<Vec<u8>>,
    /// Copies lost because the queue was full.
    lost: AtomicU64,
    /// Copies queued.
    queued: AtomicU64,
    /// Copies wanted at most (`u64::MAX`: no limit).
    limit: u64,
    filter: Option<Filter>,
}

impl TapShared {
    /// A tap holding up to `capacity` copies not yet read, taking at most
    /// `limit` copies of the frames `filter` selects.
    pub fn new(capacity: usize, limit: Option<u64>, filter: Option<Filter>) -> TapShared {
        TapShared {
            copies: ArrayQueue::new(capacity.max(1)),
            spare: ArrayQueue::new(capacity.max(1)),
            lost: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            limit: limit.unwrap_or(u64::MAX),
            filter,
        }
    }

    /// The oldest copy not read yet.
    pub fn pop(&self) -> Option<TapCopy> {
        self.copies.pop()
    }

    /// Gives a read copy's buffer back for reuse.
    pub fn recycle(&self, copy: TapCopy) {
        let _ = self.spare.push(copy.data);
    }

    /// Copies lost so far because the reader was behind.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Copies queued so far.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// The limit is reached: workers copy nothing more.
    pub fn done(&self) -> bool {
        self.queued() >= self.limit
    }

    /// Copies the frames of `batch` that the filter selects (on a worker).
    /// The shared counts move once per batch.
    pub(crate) fn copy(&self, batch: &mut Batch) {
        let room = self.limit.saturating_sub(self.queued());
        let (mut queued, mut lost, mut wall) = (0, 0, 0);
        for pkt in batch.iter_mut() {
            if queued >= room {
                break;
            }
            if let Some(f) = &self.filter {
                if !f.matches(pkt) {
                    continue;
                }
            }
            let mut time_ns = pkt.timestamp();
            if time_ns < WALL_CLOCK_FROM {
                if wall == 0 {
                    wall = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64);
                }
                time_ns = wall;
            }
            let mut data = self.spare.pop().unwrap_or_default();
            data.clear();
            data.extend_from_slice(pkt.data());
            let copy = TapCopy {
                time_ns,
                wire_len: pkt.wire_len(),
                data,
            };
            match self.copies.push(copy) {
                Ok(()) => queued += 1,
                Err(copy) => {
                    lost += 1;
                    let _ = self.spare.push(copy.data);
                }
            }
        }
        if queued > 0 {
            self.queued.fetch_add(queued, Ordering::Relaxed);
        }
        if lost > 0 {
            self.lost.fetch_add(lost, Ordering::Relaxed);
        }
    }
}
