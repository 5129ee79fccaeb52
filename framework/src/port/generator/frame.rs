//! The generator's frames: layout, full construction, and the incremental
//! checksum pieces used to patch a template per packet.

use crate::wire::checksum::{fold, sum};
use crate::wire::tcp_flags;
/// The TCP flag names `tcp_flags` accepts, with their bits.
use crate::wire::tcp_flags::NAMES as TCP_FLAGS;
use crate::wire::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_HLEN, IPPROTO_TCP, IPPROTO_UDP};

/// Length of an IPv4 header without options.
const IPV4_HLEN: usize = 20;
/// Length of an IPv6 header.
const IPV6_HLEN: usize = 40;
/// Length of a UDP header.
const UDP_HLEN: usize = 8;
/// Length of a TCP header without options.
const TCP_HLEN: usize = 20;
/// Hop limit / TTL of generated packets.
const TTL: u8 = 64;

hpio_nf::choice! {
    /// Transport protocol of the generated frames (`proto`).
    pub(super) enum Proto {
        Udp = "udp",
        Tcp = "tcp",
    }
}

/// Parses `"syn,ack"` (names joined by `,`, `|`, `+` or spaces; `""` or
/// `"none"` for no flag) into TCP flag bits.
pub(super) fn parse_tcp_flags(s: &str) -> Result<u8, String> {
    let mut bits = 0;
    for name in s
        .split([',', '|', '+', ' '])
        .filter(|n| !n.is_empty() && *n != "none")
    {
        let lower = name.to_ascii_lowercase();
        match TCP_FLAGS.iter().find(|(n, _)| *n == lower) {
            Some((_, b)) => bits |= b,
            None => {
                let names: Vec<&str> = TCP_FLAGS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown TCP flag `{name}`; expected names among {} joined by `,`",
                    names.join(", ")
                ));
            }
        }
    }
    Ok(bits)
}

/// Everything about the frames that does not vary from flow to flow, and
/// the ranges of what does. Addresses are numbers (IPv4 in the low 32 bits).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FrameSpec {
    /// Frame length, without FCS.
    pub size: usize,
    pub proto: Proto,
    pub ipv6: bool,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: u128,
    pub dst_ip: u128,
    pub src_ip_count: u64,
    pub dst_ip_count: u64,
    /// Destination `k` is `dst_ip + ((k * dst_ip_step) % dst_ip_count) << dst_ip_shift`.
    pub dst_ip_step: u64,
    pub dst_ip_shift: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub src_port_count: u32,
    pub dst_port_count: u32,
    pub src_mac_count: u64,
    pub dst_mac_count: u64,
    pub tcp_flags: u8,
}

/// The varying fields of one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Flow {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: u128,
    pub dst_ip: u128,
    pub src_port: u16,
    pub dst_port: u16,
}

/// Smallest frame holding the headers of `proto` over IPv4 or IPv6.
pub(super) fn min_size(proto: Proto, ipv6: bool) -> usize {
    ETH_HLEN
        + if ipv6 { IPV6_HLEN } else { IPV4_HLEN }
        + match proto {
            Proto::Udp => UDP_HLEN,
            Proto::Tcp => TCP_HLEN,
        }
}

impl FrameSpec {
    /// Offset of the transport header.
    pub fn l4_off(&self) -> usize {
        ETH_HLEN + if self.ipv6 { IPV6_HLEN } else { IPV4_HLEN }
    }

    /// Offset of the transport checksum.
    pub fn l4_csum_off(&self) -> usize {
        self.l4_off()
            + match self.proto {
                Proto::Udp => 6,
                Proto::Tcp => 16,
            }
    }

    /// Byte ranges of the source and destination addresses.
    pub fn addr_offs(&self) -> (usize, usize, usize) {
        if self.ipv6 {
            (ETH_HLEN + 8, ETH_HLEN + 24, 16)
        } else {
            (ETH_HLEN + 12, ETH_HLEN + 16, 4)
        }
    }

    /// Number of distinct flows (the product of the six counts), or `None`
    /// when it does not fit in a `u128`.
    pub fn checked_flows(&self) -> Option<u128> {
        u128::from(self.src_port_count)
            .checked_mul(u128::from(self.dst_port_count))?
            .checked_mul(u128::from(self.src_ip_count))?
            .checked_mul(u128::from(self.dst_ip_count))?
            .checked_mul(u128::from(self.src_mac_count))?
            .checked_mul(u128::from(self.dst_mac_count))
    }

    /// Number of distinct flows (the product of the six counts; the
    /// configuration checks that it fits).
    pub fn flows(&self) -> u128 {
        self.checked_flows().unwrap_or(u128::MAX)
    }

    /// The destination address of index `di` (below `dst_ip_count`).
    #[inline]
    pub fn dst_addr(&self, di: u64) -> u128 {
        let k = if self.dst_ip_step == 1 {
            di
        } else {
            // Both below 2^32: the product fits.
            di * (self.dst_ip_step % self.dst_ip_count) % self.dst_ip_count
        };
        self.dst_ip + (u128::from(k) << self.dst_ip_shift)
    }

    /// Flow number `k` (taken modulo [`FrameSpec::flows`]): the source port
    /// varies fastest, then the destination port, the source address, the
    /// destination address, the source MAC and the destination MAC.
    pub fn flow(&self, k: u128) -> Flow {
        let mut k = k % self.flows();
        let mut digit = |n: u128| {
            let d = k % n;
            k /= n;
            d
        };
        let sp = digit(self.src_port_count.into());
        let dp = digit(self.dst_port_count.into());
        let si = digit(self.src_ip_count.into());
        let di = digit(self.dst_ip_count.into());
        let sm = digit(self.src_mac_count.into());
        let dm = digit(self.dst_mac_count.into());
        Flow {
            src_mac: mac_add(self.src_mac, sm as u64),
            dst_mac: mac_add(self.dst_mac, dm as u64),
            src_ip: self.src_ip + si,
            dst_ip: self.dst_addr(di as u64),
            src_port: (u32::from(self.src_port) + sp as u32) as u16,
            dst_port: (u32::from(self.dst_port) + dp as u32) as u16,
        }
    }

    /// Writes the whole frame of `flow` into `out[..size]`, checksums
    /// computed over the bytes.
    pub fn build(&self, flow: &Flow, out: &mut [u8]) {
        let out = &mut out[..self.size];
        out.fill(0);
        out[0..6].copy_from_slice(&flow.dst_mac);
        out[6..12].copy_from_slice(&flow.src_mac);
        let ethertype = if self.ipv6 {
            ETHERTYPE_IPV6
        } else {
            ETHERTYPE_IPV4
        };
        out[12..14].copy_from_slice(&ethertype.to_be_bytes());
        let (src_at, dst_at, alen) = self.addr_offs();
        let l3 = ETH_HLEN;
        let l4 = self.l4_off();
        let l4_len = self.size - l4;
        let proto = match self.proto {
            Proto::Udp => IPPROTO_UDP,
            Proto::Tcp => IPPROTO_TCP,
        };
        if self.ipv6 {
            out[l3] = 0x60;
            out[l3 + 4..l3 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            out[l3 + 6] = proto;
            out[l3 + 7] = TTL;
        } else {
            out[l3] = 0x45;
            out[l3 + 2..l3 + 4].copy_from_slice(&((self.size - l3) as u16).to_be_bytes());
            out[l3 + 8] = TTL;
            out[l3 + 9] = proto;
        }
        out[src_at..src_at + alen].copy_from_slice(&addr_bytes(flow.src_ip, self.ipv6));
        out[dst_at..dst_at + alen].copy_from_slice(&addr_bytes(flow.dst_ip, self.ipv6));
        if !self.ipv6 {
            let c = !(sum(&out[l3..l3 + IPV4_HLEN], 0) as u16);
            out[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        out[l4..l4 + 2].copy_from_slice(&flow.src_port.to_be_bytes());
        out[l4 + 2..l4 + 4].copy_from_slice(&flow.dst_port.to_be_bytes());
        match self.proto {
            Proto::Udp => out[l4 + 4..l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes()),
            Proto::Tcp => {
                let ack = self.tcp_flags & tcp_flags::ACK != 0;
                out[l4 + 4..l4 + 8].copy_from_slice(&1u32.to_be_bytes());
                out[l4 + 8..l4 + 12].copy_from_slice(&u32::from(ack).to_be_bytes());
                out[l4 + 12] = ((TCP_HLEN / 4) as u8) << 4;
                out[l4 + 13] = self.tcp_flags;
                out[l4 + 14..l4 + 16].copy_from_slice(&u16::MAX.to_be_bytes());
            }
        }
        // Pseudo-header: addresses, protocol, transport length.
        let mut acc = sum(&out[src_at..src_at + alen], 0);
        acc = sum(&out[dst_at..dst_at + alen], acc);
        acc = sum(&[0, proto], acc);
        acc = sum(&(l4_len as u32).to_be_bytes(), acc);
        acc = sum(&out[l4..], acc);
        let c = l4_checksum(self.proto, acc);
        let at = self.l4_csum_off();
        out[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }

    /// The parts of the checksums that no flow changes: (IPv4 header sum
    /// without addresses and checksum, transport sum without addresses,
    /// ports and checksum). Adding the varying words gives each packet's sums.
    pub fn constant_sums(&self) -> (u32, u32) {
        let zero = Flow {
            src_mac: [0; 6],
            dst_mac: [0; 6],
            src_ip: 0,
            dst_ip: 0,
            src_port: 0,
            dst_port: 0,
        };
        let mut f = vec![0u8; self.size];
        self.build(&zero, &mut f);
        let l3 = ETH_HLEN;
        let mut ip = 0;
        if !self.ipv6 {
            f[l3 + 10..l3 + 12].fill(0);
            ip = sum(&f[l3..l3 + IPV4_HLEN], 0);
        }
        let at = self.l4_csum_off();
        f[at..at + 2].fill(0);
        let l4 = self.l4_off();
        let proto = match self.proto {
            Proto::Udp => IPPROTO_UDP,
            Proto::Tcp => IPPROTO_TCP,
        };
        let mut acc = sum(&[0, proto], 0);
        acc = sum(&((self.size - l4) as u32).to_be_bytes(), acc);
        (ip, sum(&f[l4..], acc))
    }
}

/// A MAC address as a 48-bit number.
pub(super) fn mac_num(mac: [u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&mac);
    u64::from_be_bytes(b)
}

/// The MAC address `i` after `base` (the configuration checks that the
/// range stays below ff:ff:ff:ff:ff:ff; past it the sum wraps).
pub(super) fn mac_add(base: [u8; 6], i: u64) -> [u8; 6] {
    let n = mac_num(base).wrapping_add(i) & 0xffff_ffff_ffff;
    let b = n.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// The address as its 4 or 16 bytes on the wire.
fn addr_bytes(a: u128, ipv6: bool) -> Vec<u8> {
    let b = a.to_be_bytes();
    if ipv6 {
        b.to_vec()
    } else {
        b[12..].to_vec()
    }
}

/// One's-complement sum of the 16-bit words of an address (the words are
/// the same whether it is read as 4 or 16 bytes, since zeros add nothing).
#[inline]
pub(super) fn addr_sum(a: u128) -> u32 {
    let mut acc = 0u64;
    let mut x = a;
    for _ in 0..8 {
        acc += (x & 0xffff) as u64;
        x >>= 16;
    }
    fold(acc)
}

/// The transport checksum field for the folded sum `acc`: UDP sends a
/// computed zero as 0xffff (zero means "no checksum").
#[inline]
pub(super) fn l4_checksum(proto: Proto, acc: u32) -> u16 {
    let c = !(acc as u16);
    if proto == Proto::Udp && c == 0 {
        0xffff
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_flag_names() {
        assert_eq!(parse_tcp_flags("ack"), Ok(0x10));
        assert_eq!(parse_tcp_flags("SYN,ack"), Ok(0x12));
        assert_eq!(parse_tcp_flags("psh|ack"), Ok(0x18));
        assert_eq!(parse_tcp_flags(""), Ok(0));
        assert_eq!(parse_tcp_flags("none"), Ok(0));
        let e = parse_tcp_flags("syn,akc").unwrap_err();
        assert!(e.contains("unknown TCP flag `akc`"), "{e}");
    }

    #[test]
    fn minimum_sizes() {
        assert_eq!(min_size(Proto::Udp, false), 42);
        assert_eq!(min_size(Proto::Tcp, false), 54);
        assert_eq!(min_size(Proto::Udp, true), 62);
        assert_eq!(min_size(Proto::Tcp, true), 74);
    }

    #[test]
    fn mac_arithmetic_carries_across_bytes() {
        assert_eq!(mac_num([0, 0, 0, 0, 1, 2]), 0x0102);
        assert_eq!(mac_add([2, 0, 0, 0, 0, 0xff], 1), [2, 0, 0, 0, 1, 0]);
        assert_eq!(
            mac_add([2, 0xff, 0xff, 0xff, 0xff, 0xff], 1),
            [3, 0, 0, 0, 0, 0]
        );
        assert_eq!(mac_add([2, 0, 0, 0, 0, 1], 0), [2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn addr_sum_matches_byte_sum() {
        let a: u128 = 0x2001_0db8_ffff_0000_1234_5678_9abc_def0;
        assert_eq!(addr_sum(a), sum(&addr_bytes(a, true), 0));
        let v4: u128 = 0xc0a8_ff01;
        assert_eq!(addr_sum(v4), sum(&addr_bytes(v4, false), 0));
    }
}
