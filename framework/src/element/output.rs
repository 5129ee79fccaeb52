//! Where an element puts the packets of a batch.

use crate::packet::{Batch, Packet};

/// Index of a drop reason in the element class's `drop_reasons` list.
///
/// The runtime's own reasons (`unhandled`, `no-such-output`) come after the
/// class's own, so they never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropReason(pub u8);

/// Staging batches for one element's outputs, plus its drops.
pub struct Output {
    pub(crate) batches: Vec<Batch>,
    pub(crate) dropped: Batch,
    /// Count per reason: the class's reasons, then `unhandled`, then `no-such-output`.
    pub(crate) drop_counts: Vec<u64>,
}

impl Output {
    /// Outputs for an element with `outputs` outputs and `reasons` declared drop reasons.
    pub fn new(outputs: usize, reasons: usize) -> Output {
        Output {
            batches: (0..outputs).map(|_| Batch::new()).collect(),
            dropped: Batch::new(),
            drop_counts: vec![0; reasons + 2],
        }
    }

    /// Number of outputs.
    #[inline]
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// True for an element without outputs (a sink).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Sends `pkt` to output `port`. A port past the last output drops the
    /// packet as `no-such-output` (the config checker rules that out for
    /// well-behaved elements).
    #[inline]
    pub fn push(&mut self, port: usize, pkt: Packet) {
        match self.batches.get_mut(port) {
            Some(b) => b.push(pkt),
            None => self.drop_internal(pkt, self.drop_counts.len() - 1),
        }
    }

    /// Moves every packet of `batch` to output `port`.
    #[inline]
    pub fn push_all(&mut self, port: usize, batch: &mut Batch) {
        match self.batches.get_mut(port) {
            Some(b) if b.is_empty() => std::mem::swap(b, batch),
            Some(b) => b.extend(batch.drain(..)),
            None => {
                let idx = self.drop_counts.len() - 1;
                for p in batch.drain(..) {
                    self.drop_internal(p, idx);
                }
            }
        }
    }

    /// Drops `pkt`, counting it under `reason`; the slot goes back to the pool.
    #[inline]
    pub fn drop(&mut self, pkt: Packet, reason: DropReason) {
        let idx = (reason.0 as usize).min(self.drop_counts.len() - 1);
        self.drop_internal(pkt, idx);
    }

    /// Counts `n` packets lost under `reason` when there is no packet to hand
    /// back (a copy that could not be allocated, say).
    #[inline]
    pub fn count_drop(&mut self, reason: DropReason, n: u64) {
        let idx = (reason.0 as usize).min(self.drop_counts.len() - 1);
        self.drop_counts[idx] += n;
    }

    #[inline]
    fn drop_internal(&mut self, pkt: Packet, idx: usize) {
        self.drop_counts[idx] += 1;
        self.dropped.push(pkt);
    }

    /// Drops every packet left in `batch` as `unhandled`.
    pub(crate) fn drop_unhandled(&mut self, batch: &mut Batch) {
        let idx = self.drop_counts.len() - 2;
        self.drop_counts[idx] += batch.len() as u64;
        self.dropped.extend(batch.drain(..));
    }

    /// The packets waiting on output `port` (tests use this to look at results).
    pub fn batch(&self, port: usize) -> &Batch {
        &self.batches[port]
    }

    /// Takes the packets waiting on output `port`.
    pub fn take(&mut self, port: usize) -> Batch {
        std::mem::take(&mut self.batches[port])
    }

    /// Packets dropped so far under the class's reason `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drop_counts
            .get(reason.0 as usize)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_past_last_output_is_counted_not_panicking() {
        let mut out = Output::new(1, 1);
        out.push(0, Packet::new());
        out.push(5, Packet::new());
        out.drop(Packet::new(), DropReason(0));
        assert_eq!(out.batch(0).len(), 1);
        assert_eq!(out.drop_counts, vec![1, 0, 1]);
        assert_eq!(out.dropped.len(), 2);
    }
}
