//! A per-worker pool of packet slots.

use super::{Batch, Packet, DEFAULT_MAX_FRAME, MAX_FRAME_LIMIT};

/// A worker's packet buffers: all slots are allocated up front and recycled
/// last-in first-out, so the slots in use stay hot in cache.
///
/// A pool belongs to one worker; it is not shared and takes no lock.
pub struct Pool {
    free: Vec<Packet>,
    capacity: usize,
    max_frame: usize,
    exhausted: u64,
}

impl Pool {
    /// A pool of `capacity` slots of [`DEFAULT_MAX_FRAME`] bytes, all allocated now.
    pub fn new(capacity: usize) -> Pool {
        Pool::with_max_frame(capacity, DEFAULT_MAX_FRAME)
    }

    /// A pool of `capacity` slots that each hold a frame of up to
    /// `max_frame` bytes (see [`Packet::with_capacity`]), all allocated now.
    pub fn with_max_frame(capacity: usize, max_frame: usize) -> Pool {
        let mut free = Vec::with_capacity(capacity);
        free.extend((0..capacity).map(|_| Packet::with_capacity(max_frame)));
        Pool {
            free,
            capacity,
            max_frame: max_frame.clamp(DEFAULT_MAX_FRAME, MAX_FRAME_LIMIT),
            exhausted: 0,
        }
    }

    /// Frame capacity of the pool's slots.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Puts `n` new slots of the pool's size back in place of packets that
    /// were lost (an element panicked holding them), up to the capacity.
    pub fn replace_lost(&mut self, n: usize) {
        for _ in 0..n {
            self.free(Packet::with_capacity(self.max_frame));
        }
    }

    /// Takes a slot, reset to an empty frame at the default offset;
    /// `None` (and counted) when every slot is in use.
    #[inline]
    pub fn alloc(&mut self) -> Option<Packet> {
        match self.free.pop() {
            Some(mut p) => {
                p.reset();
                Some(p)
            }
            None => {
                self.exhausted += 1;
                None
            }
        }
    }

    /// Appends up to `n` fresh slots to `batch` (fewer when the pool runs
    /// out) and returns how many it added: the buffers a batched receive
    /// fills.
    #[inline]
    pub fn alloc_into(&mut self, batch: &mut Batch, n: usize) -> usize {
        let start = batch.len();
        let take = self.take_into(batch, n);
        for p in &mut batch[start..] {
            p.reset();
        }
        take
    }

    /// [`Pool::alloc_into`] without the reset: the packets keep the
    /// metadata of their last use, for a receive that sets all of it with
    /// [`Packet::set_received`] (the generator's loops, which otherwise
    /// store most fields twice per packet).
    #[inline]
    #[allow(unsafe_code)]
    pub(crate) fn take_into(&mut self, batch: &mut Batch, n: usize) -> usize {
        let have = self.free.len();
        let take = n.min(have);
        if take < n {
            self.exhausted += 1;
        }
        let start = batch.len();
        batch.reserve(take);
        let from = have - take;
        // SAFETY: the last `take` elements of `free` (from index `from`) are
        // initialised, and `batch` has room for `take` more after `start`
        // (reserved just above); the buffers are distinct, so they do not
        // overlap. Ownership moves bitwise: `free.set_len(from)` forgets the
        // packets in `free` without dropping them and `batch.set_len` takes
        // them in, so each `Packet` keeps exactly one owner.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.free.as_ptr().add(from),
                batch.as_mut_ptr().add(start),
                take,
            );
            self.free.set_len(from);
            batch.set_len(start + take);
        }
        take
    }

    /// Returns a slot to the pool. A pool never grows past its capacity:
    /// a surplus packet (one not allocated here) is released to the allocator.
    #[inline]
    pub fn free(&mut self, p: Packet) {
        if self.free.len() < self.capacity {
            self.free.push(p);
        }
    }

    /// Returns every packet of `batch` to the pool, leaving it empty.
    #[inline]
    #[allow(unsafe_code)]
    pub fn free_batch(&mut self, batch: &mut Batch) {
        let (have, n) = (self.free.len(), batch.len());
        if have + n <= self.capacity {
            // One copy of n pointers instead of n pushes (`Vec::extend` from
            // a `SmallVec` drain goes packet by packet).
            self.free.reserve(n);
            // SAFETY: `free` has room for `n` more elements after `have`
            // (reserved just above), and `batch`'s first `n` elements are
            // initialised; the two buffers are distinct allocations (or
            // inline storage) so they do not overlap. The packets' ownership
            // moves bitwise into `free`: `free.set_len` takes them in, and
            // `batch.set_len(0)` forgets them in `batch` without dropping, so
            // each `Packet` keeps exactly one owner.
            unsafe {
                std::ptr::copy_nonoverlapping(batch.as_ptr(), self.free.as_mut_ptr().add(have), n);
                self.free.set_len(have + n);
                batch.set_len(0);
            }
        } else {
            for p in batch.drain(..) {
                self.free(p);
            }
        }
    }

    /// Slots currently free.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Slots the pool was created with.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many times [`Pool::alloc`] found no free slot.
    pub fn exhausted(&self) -> u64 {
        self.exhausted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_is_lifo_and_bounded() {
        let mut pool = Pool::new(2);
        let mut a = pool.alloc().unwrap();
        a.set_frame(&[1, 2, 3]);
        let b = pool.alloc().unwrap();
        assert!(pool.alloc().is_none());
        assert_eq!(pool.exhausted(), 1);
        pool.free(b);
        pool.free(a);
        assert_eq!(pool.available(), 2);
        // The last freed slot comes back first, reset.
        let again = pool.alloc().unwrap();
        assert_eq!(again.len(), 0);
        pool.free(again);
        pool.free(Packet::new());
        assert_eq!(pool.available(), 2, "pool must not grow past capacity");
    }

    #[test]
    fn alloc_into_stops_when_the_pool_runs_out() {
        let mut pool = Pool::new(3);
        let mut batch = Batch::new();
        batch.push(Packet::new());
        assert_eq!(pool.alloc_into(&mut batch, 2), 2);
        assert_eq!(batch.len(), 3);
        assert_eq!(pool.alloc_into(&mut batch, 5), 1);
        assert_eq!(pool.alloc_into(&mut batch, 5), 0);
        assert_eq!(batch.len(), 4);
        assert_eq!(pool.exhausted(), 2, "each short fill counts once");
    }

    /// The bulk moves of `alloc_into` and `free_batch` hand over the very
    /// slots (each exactly once), reset what they hand out, and respect the
    /// capacity, across inline and spilled batches.
    #[test]
    fn bulk_moves_keep_every_slot_exactly_once() {
        let addr = |p: &Packet| p.data().as_ptr() as usize;
        let mut pool = Pool::new(200);
        let mut all = std::collections::BTreeSet::new();
        for n in [1, 31, 64, 65, 130, 200] {
            let mut batch = Batch::new();
            assert_eq!(pool.alloc_into(&mut batch, n), n);
            assert_eq!(pool.available(), 200 - n);
            for (i, p) in batch.iter_mut().enumerate() {
                // Handed out reset, whatever the last user left.
                assert_eq!((p.len(), *p.anno()), (0, [0; 4]), "slot {i} of {n}");
                p.set_frame(&[0xee; 60]);
                *p.anno_mut() = [7; 4];
            }
            let slots: std::collections::BTreeSet<usize> = batch.iter().map(addr).collect();
            assert_eq!(slots.len(), n, "no slot handed out twice");
            all.extend(slots);
            pool.free_batch(&mut batch);
            assert!(batch.is_empty());
            assert_eq!(pool.available(), 200);
        }
        assert_eq!(all.len(), 200, "only the pool's own slots");
        // A batch that would overfill the pool: the surplus is released.
        let mut batch = Batch::new();
        pool.alloc_into(&mut batch, 10);
        batch.extend((0..5).map(|_| Packet::new()));
        pool.free_batch(&mut batch);
        assert_eq!((pool.available(), batch.len()), (200, 0));
    }

    /// A slot from `take_into` filled through `recv_room` and
    /// `set_received` ends as one from `alloc_into`, `recv_buf` and
    /// `finish_recv`: whatever its last user left (a moved frame start,
    /// annotations, a port, a cached parse), every field is set anew.
    #[test]
    fn take_into_and_set_received_set_what_a_reset_receive_sets() {
        let frame: Vec<u8> = (0..60u8).collect();
        let used = |pool: &mut Pool| {
            let mut batch = Batch::new();
            assert_eq!(pool.alloc_into(&mut batch, 1), 1);
            let p = &mut batch[0];
            p.set_frame(&[0x45; 80]);
            p.pull_front(6).unwrap();
            *p.anno_mut() = [7; 4];
            p.set_in_port(Some(3));
            let _ = p.headers();
            assert!(p.headers_cached());
            pool.free_batch(&mut batch);
        };
        let (mut a, mut b) = (Pool::new(1), Pool::new(1));
        used(&mut a);
        used(&mut b);
        let (mut ba, mut bb) = (Batch::new(), Batch::new());
        assert_eq!(a.take_into(&mut ba, 1), 1);
        ba[0].recv_room()[..60].copy_from_slice(&frame);
        ba[0].set_received(60, 70, 1234);
        assert_eq!(b.alloc_into(&mut bb, 1), 1);
        bb[0].recv_buf()[..60].copy_from_slice(&frame);
        bb[0].finish_recv(60, 70, 1234);
        let (p, q) = (&mut ba[0], &mut bb[0]);
        assert_eq!(p.data(), &frame[..]);
        assert_eq!(p.data(), q.data());
        assert_eq!(
            (
                p.wire_len(),
                p.timestamp(),
                p.in_port(),
                *p.anno(),
                p.headers_cached()
            ),
            (
                q.wire_len(),
                q.timestamp(),
                q.in_port(),
                *q.anno(),
                q.headers_cached()
            )
        );
        assert_eq!(
            (p.in_port(), *p.anno(), p.headers_cached()),
            (None, [0; 4], false)
        );
    }

    #[test]
    fn slots_have_the_pool_size() {
        let mut pool = Pool::with_max_frame(4, 9216);
        assert_eq!(pool.max_frame(), 9216);
        let mut batch = Batch::new();
        assert_eq!(pool.alloc_into(&mut batch, 4), 4);
        assert!(batch.iter().all(|p| p.capacity() == 9216));
        batch[0].set_len(9216).unwrap();
        pool.free_batch(&mut batch);
        assert_eq!(pool.alloc().unwrap().capacity(), 9216);
        assert_eq!(Pool::new(1).max_frame(), DEFAULT_MAX_FRAME);
        let mut lost = Pool::with_max_frame(3, 4000);
        let (a, b) = (lost.alloc().unwrap(), lost.alloc().unwrap());
        drop((a, b));
        lost.replace_lost(5);
        assert_eq!(lost.available(), 3, "never past the capacity");
        assert!((0..3).all(|_| lost.alloc().unwrap().capacity() == 4000));
    }
}
