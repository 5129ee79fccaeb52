//! Internet checksums: full computation and incremental update (RFC 1624).

/// One's-complement sum of `data` folded to 16 bits, added to `initial`.
pub fn sum(data: &[u8], initial: u32) -> u32 {
    let mut acc = initial as u64;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        acc += (*last as u64) << 8;
    }
    fold(acc)
}

/// Folds a wide one's-complement accumulator to 16 bits (returned in a u32).
#[inline]
pub fn fold(mut acc: u64) -> u32 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u32
}

/// The checksum of `data`: the complement of its one's-complement sum.
pub fn checksum(data: &[u8]) -> u16 {
    !(sum(data, 0) as u16)
}

/// Updates checksum `check` after the 16-bit-aligned bytes `old` became `new`
/// (both the same even length), per RFC 1624 eq. 3: HC' = ~(~HC + ~m + m').
#[inline]
pub fn update(check: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    let mut acc = (!check) as u64;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += (!u16::from_be_bytes([o[0], o[1]])) as u64;
        acc += u16::from_be_bytes([n[0], n[1]]) as u64;
    }
    !(fold(acc) as u16)
}

/// Updates checksum `check` after one 16-bit word changed from `old` to `new`.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    update(check, &old.to_be_bytes(), &new.to_be_bytes())
}

/// Adds the RFC 1624 difference of the 16-bit-aligned bytes `old` becoming
/// `new` (both the same even length) to the running difference `acc`:
/// `acc + sum(~m + m')`, folded to 16 bits. Start from 0 and apply the result
/// with [`apply_delta`]; one difference can update several checksums (an
/// address change moves both the IPv4 header checksum and a TCP/UDP
/// pseudo-header checksum).
#[inline]
pub fn delta(acc: u32, old: &[u8], new: &[u8]) -> u32 {
    debug_assert_eq!(old.len(), new.len());
    let mut wide = acc as u64;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        wide += (!u16::from_be_bytes([o[0], o[1]])) as u64;
        wide += u16::from_be_bytes([n[0], n[1]]) as u64;
    }
    fold(wide)
}

/// [`delta`] for one 16-bit word changing from `old` to `new`.
#[inline]
pub fn delta16(acc: u32, old: u16, new: u16) -> u32 {
    fold(acc as u64 + (!old) as u64 + new as u64)
}

/// Checksum `check` after the difference `delta` (from [`delta`]), per
/// RFC 1624 eq. 3: `~(~check + delta)`.
#[inline]
pub fn apply_delta(check: u16, delta: u32) -> u16 {
    !(fold((!check) as u64 + delta as u64) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // The example words of RFC 1071 section 3: sum 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data, 0), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn incremental_matches_full_recompute() {
        let mut data = [
            0x45u8, 0, 0, 60, 1, 2, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&data), 0);
        let old = [data[12], data[13], data[14], data[15]];
        let new = [192, 168, 7, 9];
        data[12..16].copy_from_slice(&new);
        let c2 = update(c, &old, &new);
        data[10..12].copy_from_slice(&c2.to_be_bytes());
        assert_eq!(checksum(&data), 0);
    }

    #[test]
    fn accumulated_delta_matches_full_recompute() {
        let mut data = [
            0x45u8, 0, 0, 60, 1, 2, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&data);
        let mut d = delta(0, &data[12..16], &[172, 16, 0, 9]);
        data[12..16].copy_from_slice(&[172, 16, 0, 9]);
        d = delta16(d, u16::from_be_bytes([data[8], data[9]]), 0x3f11);
        data[8] = 0x3f;
        data[10..12].copy_from_slice(&apply_delta(c, d).to_be_bytes());
        assert_eq!(checksum(&data), 0);
    }
}
