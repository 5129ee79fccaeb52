//! Cutting a frame's IP datagram into fragments the way a sending host
//! does, with etherparse's header types (independent of the code under
//! test), checked with etherparse's reassembly.

use super::Frame;
use etherparse::defrag::IpDefragPool;
use etherparse::{IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader, Ipv6Header};
use etherparse::{NetSlice, SlicedPacket};

/// The fragments of `frame` (Ethernet, then IPv4 or IPv6, no VLAN tag):
/// pieces of at most `chunk` payload bytes (a multiple of 8), identification
/// `id`. IPv4 fragments copy the header with MF and the offset set and a
/// fresh checksum; IPv6 ones get a Fragment header after the fixed header.
pub fn fragments(frame: &[u8], chunk: usize, id: u32) -> Vec<Vec<u8>> {
    assert!(
        chunk > 0 && chunk % 8 == 0,
        "fragments hold multiples of 8 bytes"
    );
    let (eth, ip) = frame.split_at(14);
    let ethertype = u16::from_be_bytes([eth[12], eth[13]]);
    let mut out = Vec::new();
    match ethertype {
        0x0800 => {
            let (h, rest) = Ipv4Header::from_slice(ip).expect("IPv4");
            let payload = &rest[..h.payload_len().expect("payload length") as usize];
            for (i, piece) in payload.chunks(chunk).enumerate() {
                let mut f = h.clone();
                f.identification = id as u16;
                f.more_fragments = (i + 1) * chunk < payload.len();
                f.fragment_offset = IpFragOffset::try_new((i * chunk / 8) as u16).unwrap();
                f.set_payload_len(piece.len()).unwrap();
                let mut v = eth.to_vec();
                f.write(&mut v).unwrap();
                v.extend_from_slice(piece);
                out.push(v);
            }
        }
        0x86dd => {
            let (h, rest) = Ipv6Header::from_slice(ip).expect("IPv6");
            let payload = &rest[..h.payload_length as usize];
            for (i, piece) in payload.chunks(chunk).enumerate() {
                let mut f = h.clone();
                f.next_header = IpNumber::IPV6_FRAGMENTATION_HEADER;
                f.payload_length = (8 + piece.len()) as u16;
                let fh = Ipv6FragmentHeader::new(
                    h.next_header,
                    IpFragOffset::try_new((i * chunk / 8) as u16).unwrap(),
                    (i + 1) * chunk < payload.len(),
                    id,
                );
                let mut v = eth.to_vec();
                v.extend_from_slice(&f.to_bytes());
                v.extend_from_slice(&fh.to_bytes());
                v.extend_from_slice(piece);
                out.push(v);
            }
        }
        t => panic!("not IP: {t:#06x}"),
    }
    assert_eq!(
        reassemble(&out),
        ip_payload(frame),
        "etherparse reassembles them"
    );
    out
}

/// The IP payload (transport header and data) of an unfragmented `frame`.
fn ip_payload(frame: &[u8]) -> Vec<u8> {
    let p = SlicedPacket::from_ethernet(frame).expect("a whole datagram");
    match &p.net {
        Some(NetSlice::Ipv4(s)) => s.payload().payload.to_vec(),
        Some(NetSlice::Ipv6(s)) => s.payload().payload.to_vec(),
        _ => panic!("not IP"),
    }
}

/// The datagram payload (transport header and data) etherparse reassembles
/// from the fragments `frags` (Ethernet frames, any order); panics unless
/// they make exactly one whole datagram.
pub fn reassemble(frags: &[Vec<u8>]) -> Vec<u8> {
    let mut pool = IpDefragPool::<(), ()>::new();
    let mut done = None;
    for f in frags {
        let p = SlicedPacket::from_ethernet(f).expect("etherparse slices a fragment");
        if let Some(v) = pool
            .process_sliced_packet(&p, (), ())
            .expect("fragment accepted")
        {
            done = Some(v.payload);
        }
    }
    done.expect("the fragments make a whole datagram")
}

/// What a router sends for `frame` (Ethernet, VLAN tags allowed, then
/// IPv4) on a link of `mtu`, per RFC 791's fragmentation procedure, written
/// with etherparse's header type: the frame itself when its IP datagram
/// fits; else fragments of at most `mtu` bytes of IP, each but the last
/// carrying a multiple of 8 data bytes, with the identification kept, the
/// offsets counted from the frame's own offset (a fragment is cut again
/// correctly) and MF set on all but the last, which keeps the frame's MF.
/// The first fragment has every option; the others only those whose copy
/// flag (the type's top bit) is set, padded with zeros to 4n bytes.
/// The DF flag is not looked at.
pub fn router_fragments(frame: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let mut l3 = 12;
    while matches!(
        u16::from_be_bytes([frame[l3], frame[l3 + 1]]),
        0x8100 | 0x88a8
    ) {
        l3 += 4;
    }
    l3 += 2;
    let (l2, ip) = frame.split_at(l3);
    let (h, rest) = Ipv4Header::from_slice(ip).expect("IPv4");
    if usize::from(h.total_len) <= mtu {
        return vec![frame[..l3 + usize::from(h.total_len)].to_vec()];
    }
    let payload = &rest[..h.payload_len().expect("payload length") as usize];
    let mut later = h.clone();
    later.options = copied_options(&h.options[..])[..]
        .try_into()
        .expect("4n bytes");
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < payload.len() {
        let mut f = if pos == 0 { h.clone() } else { later.clone() };
        let room = (mtu - f.header_len()) / 8 * 8;
        let piece = &payload[pos..payload.len().min(pos + room)];
        f.more_fragments = h.more_fragments || pos + piece.len() < payload.len();
        let offset = h.fragment_offset.value() + (pos / 8) as u16;
        f.fragment_offset = IpFragOffset::try_new(offset).expect("offset below 8192");
        f.set_payload_len(piece.len()).unwrap();
        let mut v = l2.to_vec();
        f.write(&mut v).unwrap();
        v.extend_from_slice(piece);
        out.push(v);
        pos += piece.len();
    }
    out
}

/// The options of `options` whose copy flag is set, in order, padded with
/// zeros to a multiple of 4 bytes.
fn copied_options(options: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < options.len() {
        let len = match options[i] {
            0 => break,
            1 => 1,
            _ => usize::from(options[i + 1]),
        };
        if options[i] & 0x80 != 0 {
            out.extend_from_slice(&options[i..i + len]);
        }
        i += len;
    }
    out.resize(out.len().div_ceil(4) * 4, 0);
    out
}

impl Frame {
    /// The built frame's datagram in fragments (see [`fragments`]).
    pub fn fragments(&self, chunk: usize, id: u32) -> Vec<Vec<u8>> {
        fragments(&self.build(), chunk, id)
    }
}
