//! A per-worker pool of packet slots.

use super::{Batch, Packet};

/// A worker's packet buffers: all slots are allocated up front and recycled
/// last-in first-out, so the slots in use stay hot in cache.
///
/// A pool belongs to one worker; it is not shared and takes no lock.
pub struct Pool {
    free: Vec<Packet>,
    capacity: usize,
    exhausted: u64,
}

impl Pool {
    /// A pool of `capacity` slots, all allocated now.
    pub fn new(capacity: usize) -> Pool {
        let mut free = Vec::with_capacity(capacity);
        free.extend((0..capacity).map(|_| Packet::new()));
        Pool {
            free,
            capacity,
            exhausted: 0,
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
        batch.reserve(n);
        for _ in 0..n {
            match self.alloc() {
                Some(p) => batch.push(p),
                None => break,
            }
        }
        batch.len() - start
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
    pub fn free_batch(&mut self, batch: &mut Batch) {
        if self.free.len() + batch.len() <= self.capacity {
            self.free.extend(batch.drain(..));
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
    }
}
