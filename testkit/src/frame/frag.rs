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

/// The datagram payload etherparse reassembles from `frags` (any order).
fn reassemble(frags: &[Vec<u8>]) -> Vec<u8> {
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

impl Frame {
    /// The built frame's datagram in fragments (see [`fragments`]).
    pub fn fragments(&self, chunk: usize, id: u32) -> Vec<Vec<u8>> {
        fragments(&self.build(), chunk, id)
    }
}
