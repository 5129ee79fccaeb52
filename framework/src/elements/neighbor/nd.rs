//! IPv6 neighbour discovery messages (RFC 4861): solicitations and
//! advertisements over Ethernet, built and read.

use std::net::Ipv6Addr;

use crate::wire::checksum::{fold, sum};

/// ICMPv6 type of a neighbour solicitation.
pub const NS: u8 = 135;
/// ICMPv6 type of a neighbour advertisement.
pub const NA: u8 = 136;
/// Frame length of an NS or NA with one link-layer address option.
pub const ND_FRAME: usize = 14 + 40 + 24 + 8;

/// NA flag: the sender is a router.
pub const FLAG_ROUTER: u8 = 0x80;
/// NA flag: an answer to a solicitation.
pub const FLAG_SOLICITED: u8 = 0x40;
/// NA flag: override a cached address.
pub const FLAG_OVERRIDE: u8 = 0x20;

/// A parsed NS or NA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdMsg {
    /// [`NS`] or [`NA`].
    pub ty: u8,
    /// Ethernet source of the frame.
    pub eth_src: [u8; 6],
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// The target address.
    pub target: Ipv6Addr,
    /// The link-layer address option (source for NS, target for NA).
    pub lladdr: Option<[u8; 6]>,
}

/// Reads an untagged NS or NA (hop limit 255, as RFC 4861 requires).
pub fn parse(f: &[u8]) -> Option<NdMsg> {
    if f.len() < 14 + 40 + 24 || f[12..14] != [0x86, 0xdd] || f[14 + 6] != 58 || f[14 + 7] != 255 {
        return None;
    }
    let ty = f[54];
    if ty != NS && ty != NA || f[55] != 0 {
        return None;
    }
    let addr = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&f[o..o + 16]).expect("16 bytes"));
    let want = if ty == NS { 1 } else { 2 };
    let mut lladdr = None;
    let mut o = 78;
    while o + 8 <= f.len() && f[o + 1] != 0 {
        let len = usize::from(f[o + 1]) * 8;
        if f[o] == want && len == 8 {
            lladdr = Some(<[u8; 6]>::try_from(&f[o + 2..o + 8]).expect("6 bytes"));
        }
        o += len;
    }
    Some(NdMsg {
        ty,
        eth_src: f[6..12].try_into().expect("6 bytes"),
        src: addr(22),
        target: addr(62),
        lladdr,
    })
}

/// The solicited-node multicast address of `a` (ff02::1:ffXX:XXXX).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet address of IPv6 multicast address `a` (33:33 + its last 4 bytes).
pub fn multicast_mac(a: Ipv6Addr) -> [u8; 6] {
    let o = a.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// Writes a whole NS or NA frame into `f[..ND_FRAME]`: `flags` is the NA's
/// flag byte (0 for an NS); the option carries `mac` (source link-layer
/// address in an NS, target in an NA).
#[allow(clippy::too_many_arguments)]
pub fn write(
    f: &mut [u8],
    eth_dst: [u8; 6],
    mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ty: u8,
    flags: u8,
    target: Ipv6Addr,
) {
    let f = &mut f[..ND_FRAME];
    f.fill(0);
    f[..6].copy_from_slice(&eth_dst);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    f[14..22].copy_from_slice(&[0x60, 0, 0, 0, 0, 32, 58, 255]);
    f[22..38].copy_from_slice(&src.octets());
    f[38..54].copy_from_slice(&dst.octets());
    f[54] = ty;
    f[58] = flags;
    f[62..78].copy_from_slice(&target.octets());
    f[78] = if ty == NS { 1 } else { 2 };
    f[79] = 1;
    f[80..86].copy_from_slice(&mac);
    let pseudo = sum(&f[22..54], 32 + 58);
    let c = !(fold(u64::from(sum(&f[54..], pseudo))) as u16);
    f[56..58].copy_from_slice(&c.to_be_bytes());
}
