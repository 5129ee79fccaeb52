//! Property tests of the pcap/pcapng reader: files written here by hand (not
//! by the pcap-file crate the reader uses), little- and big-endian,
//! microsecond and nanosecond, read back exactly; then truncated, with
//! lying or huge lengths, wrong magic or flipped bytes: an error naming the
//! file or some frames, never a panic. The reader's buffer is pcap-file's
//! fixed 8 MB one: a record claiming 4 GiB is refused without allocating it
//! (`huge_record_lengths_are_errors`).
//!
//! CI runs the case counts below from a fixed seed; `PROPTEST_CASES=100000`
//! runs more (testkit::prop).

use super::tests::{read_all, TempPath};
use proptest::prelude::*;

/// One record: timestamp in ns, captured bytes, extra original length.
type Rec = (u64, Vec<u8>, u32);

fn u32b(v: u32, be: bool) -> [u8; 4] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

fn u16b(v: u16, be: bool) -> [u8; 2] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

/// A classic pcap file.
fn pcap_file(recs: &[Rec], be: bool, nanos: bool) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }, be));
    f.extend(u16b(2, be));
    f.extend(u16b(4, be));
    f.extend(u32b(0, be));
    f.extend(u32b(0, be));
    f.extend(u32b(65535, be));
    f.extend(u32b(1, be));
    for (ts, data, extra) in recs {
        let (sec, frac) = (ts / 1_000_000_000, ts % 1_000_000_000);
        let frac = if nanos { frac } else { frac / 1000 };
        f.extend(u32b(sec as u32, be));
        f.extend(u32b(frac as u32, be));
        f.extend(u32b(data.len() as u32, be));
        f.extend(u32b(data.len() as u32 + extra, be));
        f.extend_from_slice(data);
    }
    f
}

/// One pcapng block: type, body, padded, lengths at both ends.
fn block(f: &mut Vec<u8>, ty: u32, body: &[u8], be: bool) {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    f.extend(u32b(ty, be));
    f.extend(u32b(len, be));
    f.extend_from_slice(body);
    f.extend(std::iter::repeat_n(0, pad));
    f.extend(u32b(len, be));
}

/// A pcapng file: one section, one Ethernet interface with nanosecond
/// timestamps (`if_tsresol` 9) or the default microseconds, enhanced
/// packet blocks.
fn pcapng_file(recs: &[Rec], be: bool, nanos: bool) -> Vec<u8> {
    let mut f = Vec::new();
    let mut shb = Vec::new();
    shb.extend(u32b(0x1a2b_3c4d, be));
    shb.extend(u16b(1, be));
    shb.extend(u16b(0, be));
    shb.extend([0xff; 8]);
    block(&mut f, 0x0a0d_0d0a, &shb, be);
    let mut idb = Vec::new();
    idb.extend(u16b(1, be));
    idb.extend(u16b(0, be));
    idb.extend(u32b(0, be));
    if nanos {
        idb.extend(u16b(9, be)); // if_tsresol
        idb.extend(u16b(1, be));
        idb.extend([9, 0, 0, 0]);
        idb.extend([0; 4]); // opt_endofopt
    }
    block(&mut f, 1, &idb, be);
    for (ts, data, extra) in recs {
        let units = if nanos { *ts } else { ts / 1000 };
        let mut epb = Vec::new();
        epb.extend(u32b(0, be));
        epb.extend(u32b((units >> 32) as u32, be));
        epb.extend(u32b(units as u32, be));
        epb.extend(u32b(data.len() as u32, be));
        epb.extend(u32b(data.len() as u32 + extra, be));
        epb.extend_from_slice(data);
        block(&mut f, 6, &epb, be);
    }
    f
}

fn records() -> impl Strategy<Value = Vec<Rec>> {
    prop::collection::vec(
        (
            0u64..4_000_000_000_000_000_000,
            prop::collection::vec(any::<u8>(), 0..300),
            prop_oneof![4 => Just(0u32), 1 => 1u32..100_000],
        ),
        0..6,
    )
}

/// Any file: the same properties for pcap and pcapng of each variant.
fn file(recs: &[Rec], ng: bool, be: bool, nanos: bool) -> Vec<u8> {
    if ng {
        pcapng_file(recs, be, nanos)
    } else {
        pcap_file(recs, be, nanos)
    }
}

/// Reads `bytes` through a pcap port; an error must name the file.
fn read_bytes(bytes: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let path = TempPath::new("pcap");
    std::fs::write(&path.0, bytes).unwrap();
    match read_all(&path.s()) {
        Ok(pkts) => Ok(pkts
            .iter()
            .map(|p| (p.timestamp(), p.data().to_vec()))
            .collect()),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(&path.s()), "error without the file: {msg}");
            Err(msg)
        }
    }
}

proptest! {
    #![proptest_config(testkit::prop::config(256))]

    /// Well-formed files of every variant read back exactly; records cut
    /// by a snap length are dropped (counted as truncated_capture).
    #[test]
    fn well_formed_files_read_back(recs in records(), ng: bool, be: bool, nanos: bool) {
        let got = read_bytes(&file(&recs, ng, be, nanos)).map_err(TestCaseError::fail)?;
        let want: Vec<(u64, Vec<u8>)> = recs
            .iter()
            .filter(|r| r.2 == 0)
            .map(|(ts, d, _)| (if nanos { *ts } else { ts / 1000 * 1000 }, d.clone()))
            .collect();
        prop_assert_eq!(got, want);
    }

    /// Truncated anywhere, a u32 overwritten anywhere (lengths, magic,
    /// block types), bytes flipped: frames or an error, never a panic.
    #[test]
    fn damaged_files_are_errors_or_frames(
        recs in records(), ng: bool, be: bool, nanos: bool,
        cut in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        word in prop_oneof![Just(u32::MAX), Just(0x8000_0000u32), Just(0), any::<u32>()],
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut b = file(&recs, ng, be, nanos);
        let i = at.index(b.len().saturating_sub(3)) & !3;
        b[i..i + 4].copy_from_slice(&word.to_ne_bytes());
        for (j, v) in flips {
            let j = j.index(b.len());
            b[j] = v;
        }
        let _ = read_bytes(&b);
        b.truncate(cut.index(b.len() + 1));
        let _ = read_bytes(&b);
    }
}

#[test]
fn huge_record_lengths_are_errors() {
    for ng in [false, true] {
        for be in [false, true] {
            let mut b = file(&[(0, vec![0; 60], 0)], ng, be, false);
            // The record's captured length (pcap: at 24+8; pcapng: the EPB's).
            let at = if ng { b.len() - 60 - 4 - 8 } else { 24 + 8 };
            b[at..at + 4].copy_from_slice(&u32b(u32::MAX, be));
            let err = read_bytes(&b).unwrap_err();
            assert!(err.contains("packet 1"), "{err}");
        }
    }
}

#[test]
fn wrong_magic_is_refused() {
    for magic in [[0u8; 4], [0xd4, 0xc3, 0xb2, 0xa2], *b"GIF8"] {
        let mut b = pcap_file(&[(0, vec![1; 20], 0)], false, false);
        b[..4].copy_from_slice(&magic);
        let err = read_bytes(&b).unwrap_err();
        assert!(err.contains("not a pcap or pcapng file"), "{err}");
    }
}
