//! Where an element puts the packets of a batch.

use crate::packet::{Batch, Packet};

/// Index of a drop reason in the element class's `drop_reasons` list.
/// Declare them with [`drop_reasons!`](crate::drop_reasons), which makes the
/// list and a constant for each reason, bound by name rather than position.
///
/// The runtime's own reasons ([`RUNTIME_DROP_REASONS`]) come after the
/// class's own, so they never collide.
///
/// ```
/// use hpio_nf::prelude::*;
///
/// hpio_nf::drop_reasons! {
///     DROP_REASONS = [
///         TOO_SHORT = "too-short",
///         NOT_IP = "not-ip",
///     ]
/// }
///
/// let mut out = Output::new(1, DROP_REASONS.len());
/// out.drop(Packet::from_bytes(&[0; 10]), TOO_SHORT);
/// assert_eq!(out.drops(TOO_SHORT), 1);
/// assert_eq!(out.drops(NOT_IP), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropReason(pub u8);

/// The drop reasons the runtime counts for every element, after the class's
/// own, in this order: packets the element left in its batch (`unhandled`),
/// packets sent to an output it does not have (`no-such-output`, also used
/// for a [`DropReason`] past the class's list), and packets of a batch during
/// which the element panicked (`panic`).
pub const RUNTIME_DROP_REASONS: [&str; 3] = ["unhandled", "no-such-output", "panic"];

/// Most outputs [`Output::scatter`] fills in one pass (a power of two); an
/// element with more takes the packet-by-packet path.
pub const SCATTER_LANES: usize = 8;

/// Position of each runtime reason in [`RUNTIME_DROP_REASONS`].
const UNHANDLED: usize = 0;
const NO_SUCH_OUTPUT: usize = 1;
const PANIC: usize = 2;

/// Staging batches for one element's outputs, plus its drops.
///
/// The runtime makes one per element replica; tests make their own with
/// [`Output::new`] and look at the results with [`Output::batch`],
/// [`Output::take`] and [`Output::drops`].
pub struct Output {
    pub(crate) batches: Vec<Batch>,
    pub(crate) dropped: Batch,
    /// Count per reason: the class's reasons, then [`RUNTIME_DROP_REASONS`].
    pub(crate) drop_counts: Vec<u64>,
    /// The message of a panic caught during the element's last `push`
    /// (set by the replica's guard, taken by the graph).
    pub(crate) panic: Option<String>,
}

impl Output {
    /// Outputs for an element with `outputs` outputs and `reasons` declared drop reasons.
    pub fn new(outputs: usize, reasons: usize) -> Output {
        Output {
            batches: (0..outputs).map(|_| Batch::new()).collect(),
            dropped: Batch::new(),
            drop_counts: vec![0; reasons + RUNTIME_DROP_REASONS.len()],
            panic: None,
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
            None => self.drop_internal(pkt, self.runtime_reason(NO_SUCH_OUTPUT)),
        }
    }

    /// Moves every packet of `batch` to output `port`.
    #[inline(always)]
    pub fn push_all(&mut self, port: usize, batch: &mut Batch) {
        match self.batches.get_mut(port) {
            Some(b) if b.is_empty() => std::mem::swap(b, batch),
            Some(b) => b.extend(batch.drain(..)),
            None => {
                let idx = self.runtime_reason(NO_SUCH_OUTPUT);
                for p in batch.drain(..) {
                    self.drop_internal(p, idx);
                }
            }
        }
    }

    /// Moves the first `n` packets of `batch` to output `port` and leaves
    /// the rest in `batch`: the whole batch by [`Output::push_all`] when `n`
    /// covers it. For elements that handle a batch in place as long as its
    /// packets take the common path, then the rest one by one.
    #[inline]
    pub fn push_first(&mut self, port: usize, batch: &mut Batch, n: usize) {
        if n >= batch.len() {
            return self.push_all(port, batch);
        }
        if n == 0 {
            return;
        }
        match self.batches.get_mut(port) {
            Some(b) => b.extend(batch.drain(..n)),
            None => {
                let idx = self.runtime_reason(NO_SUCH_OUTPUT);
                for p in batch.drain(..n) {
                    self.drop_internal(p, idx);
                }
            }
        }
    }

    /// Moves the first `dests.len()` packets of `batch` (all of them if it
    /// holds fewer) each to the output its entry in `dests` names, in order
    /// on each output, and leaves the rest in `batch`. A packet whose entry
    /// is past the last output is dropped under the reason `why` gives for
    /// the entry.
    ///
    /// For elements that decide a whole burst first (a route lookup) and
    /// then move it: with up to [`SCATTER_LANES`] outputs and every entry
    /// an output, the packets move in one pass with the room on each output
    /// made once, where [`Output::push`] checks the output and its batch's
    /// room per packet.
    #[inline]
    #[allow(unsafe_code)]
    pub fn scatter(&mut self, batch: &mut Batch, dests: &[u16], why: impl Fn(u16) -> DropReason) {
        let n = dests.len().min(batch.len());
        let dests = &dests[..n];
        let outputs = self.batches.len();
        // The largest entry by a fold rather than an `any` that stops early:
        // the fold compiles to vector compares.
        let last = dests.iter().fold(0, |m, &d| m.max(d));
        if outputs > SCATTER_LANES || usize::from(last) >= outputs {
            for (pkt, &d) in batch.drain(..n).zip(dests) {
                match self.batches.get_mut(usize::from(d)) {
                    Some(b) => b.push(pkt),
                    None => self.drop(pkt, why(d)),
                }
            }
            return;
        }
        let mut base = [std::ptr::null_mut::<Packet>(); SCATTER_LANES];
        let mut len = [0usize; SCATTER_LANES];
        for (o, b) in self.batches.iter_mut().enumerate() {
            b.reserve(n);
            len[o] = b.len();
            base[o] = b.as_mut_ptr();
        }
        let rest = batch.len() - n;
        // SAFETY: `batch` is forgotten first (`set_len(0)`), so that nothing
        // here can drop a packet twice; its first `n` elements are then
        // moved bitwise, each exactly once, to the end of the output its
        // entry names. Every entry is below `outputs` (checked above), so
        // `d & (SCATTER_LANES - 1)` is `d` and `base[d]` is that output's
        // buffer, with room for `n` more after `len[d]` (reserved above; no
        // output batch is touched between the reserve and `set_len` below).
        // The buffers are distinct: `batch` is not one of `self.batches`.
        // The `rest` packets after the first `n` move to the front with
        // `copy` (the ranges may overlap), and `set_len(rest)` takes them
        // back, so each packet ends with exactly one owner.
        unsafe {
            batch.set_len(0);
            let src = batch.as_mut_ptr();
            for (i, &d) in dests.iter().enumerate() {
                let d = usize::from(d) & (SCATTER_LANES - 1);
                std::ptr::copy_nonoverlapping(src.add(i), base[d].add(len[d]), 1);
                len[d] += 1;
            }
            std::ptr::copy(src.add(n), src, rest);
            batch.set_len(rest);
        }
        for (o, b) in self.batches.iter_mut().enumerate() {
            // SAFETY: `len[o]` counts the packets already there plus those
            // written above, all initialised, within the room reserved.
            unsafe { b.set_len(len[o]) };
        }
    }

    /// Drops `pkt`, counting it under `reason`; the slot goes back to the pool.
    #[inline]
    pub fn drop(&mut self, pkt: Packet, reason: DropReason) {
        let idx = self.class_reason(reason);
        self.drop_internal(pkt, idx);
    }

    /// Counts `n` packets lost under `reason` when there is no packet to hand
    /// back (a copy that could not be allocated, say).
    #[inline]
    pub fn count_drop(&mut self, reason: DropReason, n: u64) {
        let idx = self.class_reason(reason);
        self.drop_counts[idx] += n;
    }

    /// Index in `drop_counts` of a class reason (`no-such-output` when the
    /// class has no such reason).
    #[inline]
    fn class_reason(&self, reason: DropReason) -> usize {
        (reason.0 as usize).min(self.runtime_reason(NO_SUCH_OUTPUT))
    }

    /// Index in `drop_counts` of runtime reason `k` of [`RUNTIME_DROP_REASONS`].
    #[inline]
    fn runtime_reason(&self, k: usize) -> usize {
        self.drop_counts.len() - RUNTIME_DROP_REASONS.len() + k
    }

    #[inline]
    fn drop_internal(&mut self, pkt: Packet, idx: usize) {
        self.drop_counts[idx] += 1;
        self.dropped.push(pkt);
    }

    /// Drops every packet left in `batch` as `unhandled`.
    pub(crate) fn drop_unhandled(&mut self, batch: &mut Batch) {
        let idx = self.runtime_reason(UNHANDLED);
        self.drop_counts[idx] += batch.len() as u64;
        self.dropped.extend(batch.drain(..));
    }

    /// After a panic during a `push` that was handed `handed` packets:
    /// drops what is left in `batch` and every packet the element had
    /// already put on an output, and counts as `panic` every packet of the
    /// batch that the element had not dropped with a reason itself.
    ///
    /// Returns that count and how many packets of the batch are nowhere to
    /// be found (destroyed while the panic unwound, say from a `drain`), so
    /// that the caller can give their slots back to the pool.
    pub(crate) fn drop_after_panic(&mut self, batch: &mut Batch, handed: usize) -> (u64, usize) {
        let explicit = self.dropped.len();
        self.dropped.extend(batch.drain(..));
        for b in &mut self.batches {
            self.dropped.extend(b.drain(..));
        }
        let found = self.dropped.len() - explicit;
        let counted = handed.saturating_sub(explicit).max(found);
        let idx = self.runtime_reason(PANIC);
        self.drop_counts[idx] += counted as u64;
        (counted as u64, handed.saturating_sub(explicit + found))
    }

    /// The packets waiting on output `port` (tests use this to look at results).
    pub fn batch(&self, port: usize) -> &Batch {
        &self.batches[port]
    }

    /// Takes the packets waiting on output `port`.
    pub fn take(&mut self, port: usize) -> Batch {
        std::mem::take(&mut self.batches[port])
    }

    /// Whether the element panicked during its last `push` (the runtime
    /// then drops the batch; tests of a guarded replica look here).
    pub fn panicked(&self) -> Option<&str> {
        self.panic.as_deref()
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
        out.drop(Packet::new(), DropReason(9));
        assert_eq!(out.drop_counts, vec![1, 0, 2, 0]);
        assert_eq!(out.dropped.len(), 3);
    }

    #[test]
    fn push_first_moves_a_prefix_in_order_and_keeps_the_rest() {
        let mk = |b: u8| Packet::from_bytes(&[b; 20]);
        let mut out = Output::new(1, 0);
        out.push(0, mk(0));
        let mut batch: Batch = (1..=4).map(mk).collect();
        out.push_first(0, &mut batch, 2);
        let firsts = |b: &Batch| b.iter().map(|p| p.data()[0]).collect::<Vec<_>>();
        assert_eq!(firsts(out.batch(0)), [0, 1, 2]);
        assert_eq!(firsts(&batch), [3, 4]);
        out.push_first(0, &mut batch, 0);
        assert_eq!(batch.len(), 2);
        out.push_first(0, &mut batch, 2);
        assert!(batch.is_empty());
        assert_eq!(firsts(out.batch(0)), [0, 1, 2, 3, 4]);
        let mut batch: Batch = (5..=6).map(mk).collect();
        out.push_first(3, &mut batch, 1);
        assert_eq!(
            (batch.len(), out.dropped.len()),
            (1, 1),
            "no output 3: dropped"
        );
    }

    /// `scatter` against `push` packet by packet: the same packets on the
    /// same outputs in the same order, the same drops, the same rest left
    /// in the batch; for the one-pass path (up to `SCATTER_LANES` outputs,
    /// every entry an output) and the per-packet one (an entry past the
    /// last output, or more outputs than lanes), with outputs that already
    /// hold packets and with fewer or more entries than packets.
    #[test]
    fn scatter_moves_like_push_packet_by_packet() {
        let mk = |i: usize| Packet::from_bytes(&[(i % 251) as u8, (i / 251) as u8, 0, 0]);
        let id = |p: &Packet| usize::from(p.data()[0]) + 251 * usize::from(p.data()[1]);
        let ids = |b: &Batch| b.iter().map(id).collect::<Vec<_>>();
        let mut seed = 7u32;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for outputs in [1, 2, 3, SCATTER_LANES, SCATTER_LANES + 1, 20] {
            for (packets, entries, bad) in [
                (0, 0, false),
                (1, 1, false),
                (70, 70, false),
                (300, 256, false),
                (10, 30, false),
                (256, 256, true),
                (5, 3, true),
            ] {
                let dests: Vec<u16> = (0..entries)
                    .map(|i| {
                        if bad && i % 7 == 3 {
                            u16::MAX - (rand() % 3) as u16
                        } else {
                            (rand() as usize % outputs) as u16
                        }
                    })
                    .collect();
                let why = |d: u16| DropReason((u16::MAX - d) as u8);
                let (mut a, mut b) = (Output::new(outputs, 3), Output::new(outputs, 3));
                // Packets already waiting on output 0 stay first.
                a.push(0, mk(1000));
                b.push(0, mk(1000));
                let mut batch_a: Batch = (0..packets).map(mk).collect();
                let mut batch_b: Batch = (0..packets).map(mk).collect();
                a.scatter(&mut batch_a, &dests, why);
                let n = entries.min(packets);
                for (pkt, &d) in batch_b.drain(..n).zip(&dests) {
                    if usize::from(d) < outputs {
                        b.push(usize::from(d), pkt);
                    } else {
                        b.drop(pkt, why(d));
                    }
                }
                let case = format!("{outputs} outputs, {packets} packets, {entries} entries");
                assert_eq!(ids(&batch_a), ids(&batch_b), "rest: {case}");
                assert_eq!(
                    ids(&batch_a),
                    (n..packets).collect::<Vec<_>>(),
                    "rest: {case}"
                );
                for o in 0..outputs {
                    assert_eq!(ids(a.batch(o)), ids(b.batch(o)), "output {o}: {case}");
                }
                assert_eq!(ids(&a.dropped), ids(&b.dropped), "drops: {case}");
                assert_eq!(a.drop_counts, b.drop_counts, "drop counts: {case}");
                let total: usize = (0..outputs).map(|o| a.batch(o).len()).sum();
                assert_eq!(
                    total + a.dropped.len() + batch_a.len(),
                    packets + 1,
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn a_panic_drops_the_batch_and_what_was_already_output() {
        let mut out = Output::new(2, 1);
        out.push(0, Packet::new());
        out.push(1, Packet::new());
        out.drop(Packet::new(), DropReason(0));
        let mut rest: Batch = (0..3).map(|_| Packet::new()).collect();
        // 8 handed: 1 dropped with a reason, 5 found, 2 destroyed.
        assert_eq!(out.drop_after_panic(&mut rest, 8), (7, 2));
        assert!(rest.is_empty() && out.batch(0).is_empty() && out.batch(1).is_empty());
        assert_eq!(out.drop_counts, vec![1, 0, 0, 7]);
        assert_eq!(out.dropped.len(), 6);
    }
}
