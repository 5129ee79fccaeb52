//! Nat44's memory of fragmented datagrams: how the first fragment of a
//! datagram was translated, so that its later fragments (which carry no
//! transport header, hence no port to look a mapping up by) are translated
//! the same way. A fixed, direct-mapped array: a datagram's entry may be
//! taken by a newer datagram that hashes to the same place, and it is
//! forgotten [`FRAG_TIMEOUT`] after its first fragment. Nothing is
//! allocated per packet.

use crate::wire::Ipv4Packet;

/// Datagrams remembered per worker (a power of two).
pub(super) const FRAG_SLOTS: usize = 1024;

/// How long after its first fragment a datagram's later fragments are
/// still translated (ns): the reassembly time a receiver gives a datagram
/// is of this order (RFC 791 suggests 15 s, Linux waits 30 s).
pub(super) const FRAG_TIMEOUT: u64 = 15_000_000_000;

/// A datagram's identity (RFC 791): source, destination, protocol and
/// identification, as it reached its input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Datagram {
    pub src: u32,
    pub dst: u32,
    pub proto: u8,
    pub id: u16,
}

impl Datagram {
    /// The identity of the IPv4 datagram whose header is at `l3` (checked
    /// by the parser).
    #[inline]
    pub fn of(f: &[u8], l3: usize) -> Datagram {
        let ip = Ipv4Packet::new_unchecked(&f[l3..]);
        Datagram {
            src: ip.src_addr().into(),
            dst: ip.dst_addr().into(),
            proto: ip.protocol(),
            id: ip.ident(),
        }
    }
}

/// How a datagram's fragments are translated: the addresses they get and
/// the output they leave on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Translation {
    pub src: u32,
    pub dst: u32,
    pub output: u8,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// 0: empty; else the input the datagram came in on, plus one.
    input: u8,
    datagram: Datagram,
    to: Translation,
    /// When its first fragment was translated.
    time: u64,
}

/// The translations of the datagrams whose first fragment was seen.
#[derive(Clone)]
pub(super) struct Frags {
    entries: Box<[Entry]>,
    /// Later fragments translated, and first fragments remembered.
    pub translated: u64,
    pub remembered: u64,
}

impl Frags {
    pub fn new() -> Frags {
        Frags {
            entries: vec![Entry::default(); FRAG_SLOTS].into_boxed_slice(),
            translated: 0,
            remembered: 0,
        }
    }

    #[inline]
    fn place(input: usize, d: &Datagram) -> usize {
        let x = (d.src as u64) << 32 | d.dst as u64;
        let y = (d.id as u64) << 16 | (d.proto as u64) << 8 | input as u64;
        let h = (x ^ y.rotate_left(40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> (64 - FRAG_SLOTS.trailing_zeros())) as usize
    }

    /// Remembers that datagram `d`, from `input`, was translated `to` at
    /// `now` (its first fragment was).
    pub fn remember(&mut self, input: usize, d: Datagram, to: Translation, now: u64) {
        self.entries[Self::place(input, &d)] = Entry {
            input: input as u8 + 1,
            datagram: d,
            to,
            time: now,
        };
        self.remembered += 1;
    }

    /// How a later fragment of `d` from `input` is translated at `now`, if
    /// its first fragment was seen less than [`FRAG_TIMEOUT`] ago.
    pub fn recall(&self, input: usize, d: &Datagram, now: u64) -> Option<Translation> {
        let e = &self.entries[Self::place(input, d)];
        (e.input == input as u8 + 1
            && e.datagram == *d
            && now.saturating_sub(e.time) <= FRAG_TIMEOUT)
            .then_some(e.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_is_recalled_by_its_input_and_identity_until_its_timeout() {
        let mut f = Frags::new();
        let d = Datagram {
            src: 1,
            dst: 2,
            proto: 17,
            id: 7,
        };
        let to = Translation {
            src: 9,
            dst: 2,
            output: 0,
        };
        f.remember(0, d, to, 100);
        assert_eq!(f.recall(0, &d, 100 + FRAG_TIMEOUT), Some(to));
        assert_eq!(f.recall(0, &d, 101 + FRAG_TIMEOUT), None);
        assert_eq!(f.recall(1, &d, 100), None);
        assert_eq!(f.recall(0, &Datagram { id: 8, ..d }, 100), None);
        assert_eq!(f.recall(0, &Datagram { proto: 6, ..d }, 100), None);
    }
}
