//! Edits made to a built frame: a partial checksum, a lying IP length,
//! a cut.

use super::{Edit, Frame, Ip, L4};

/// Applies `f.edits` to `out`, the frame `f` built.
pub(super) fn apply(f: &Frame, out: &mut Vec<u8>) {
    let l3 = 14 + 4 * f.vlans.len();
    for e in &f.edits {
        match *e {
            Edit::PartialCsum => partial_csum(f, out, l3),
            Edit::NoUdpCsum => {
                assert!(matches!(f.l4, L4::Udp { .. }), "UDP's checksum");
                let at = out.len() - f.payload.len() - 2;
                out[at..at + 2].fill(0);
            }
            Edit::IpLen(len) => match f.ip {
                Ip::V4(..) => {
                    out[l3 + 2..l3 + 4].copy_from_slice(&len.to_be_bytes());
                    let ihl = usize::from(out[l3] & 0x0f) * 4;
                    out[l3 + 10..l3 + 12].fill(0);
                    let c = !fold(sum(&out[l3..l3 + ihl], 0));
                    out[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
                }
                Ip::V6(..) => out[l3 + 4..l3 + 6].copy_from_slice(&len.to_be_bytes()),
            },
            Edit::TcpHeaderLen(len) => {
                assert!(matches!(f.l4, L4::Tcp { .. }) && len % 4 == 0);
                let at = out.len() - f.payload.len() - 20 - f.tcp_options.len() + 12;
                out[at] = (len / 4) << 4 | (out[at] & 0x0f);
            }
            Edit::Cut(len) => out.truncate(len),
            Edit::Pad(len, byte) => out.resize(out.len().max(len), byte),
        }
    }
}

/// Writes the pseudo-header sum (not complemented) into the TCP or UDP
/// checksum field.
fn partial_csum(f: &Frame, out: &mut [u8], l3: usize) {
    let (proto, head, at) = match f.l4 {
        L4::Tcp { .. } => (6, 20 + f.tcp_options.len(), 16),
        L4::Udp { .. } => (17, 8, 6),
        _ => panic!("a partial checksum is TCP's or UDP's"),
    };
    let len = head + f.payload.len();
    let l4 = out.len() - len;
    let addrs = match f.ip {
        Ip::V4(..) => &out[l3 + 12..l3 + 20],
        Ip::V6(..) => &out[l3 + 8..l3 + 40],
    };
    let ps = fold(sum(addrs, proto + len as u64));
    out[l4 + at..l4 + at + 2].copy_from_slice(&ps.to_be_bytes());
}

/// The ones'-complement sum of `b` as 16-bit big-endian words, added to `acc`.
pub(super) fn sum(b: &[u8], acc: u64) -> u64 {
    b.chunks(2).fold(acc, |a, w| {
        a + u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))
    })
}

/// `acc` folded to 16 bits.
pub(super) fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}
