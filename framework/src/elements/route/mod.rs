//! IP routing: the route syntax, the next-hop annotation and the lookup
//! tables behind `IpLookup`.
//!
//! # The next-hop annotation
//!
//! `IpLookup` writes the next hop of a routed packet into annotation words
//! [`NEXT_HOP_ANNO`] and following, where the neighbour resolvers
//! (`ArpQuerier`, `NdQuerier`) and `IcmpError` read it:
//!
//! - IPv4: word 2 holds the next hop's address (host byte order), 0 when the
//!   route has no `via` (the destination is on the link: resolve it).
//! - IPv6: words 2 and 3 hold the 64-bit interface identifier of a
//!   link-local next hop `fe80::/64` (word 2 the high half), both 0 when the
//!   route has no `via`. IPv6 routers name neighbouring routers by their
//!   link-local addresses (RFC 4861 section 8), so `via` must be one; the
//!   64 bits fit two words and need no table shared between elements.
//!
//! Word 0 is Paint's colour, word 1 the Policer's.

mod gen;
pub mod log;
pub mod lpm4;
pub mod lpm6;
mod lpm6_table;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::packet::Packet;
use crate::params::parse_prefix;

pub use gen::{generate_v4, generate_v6};

/// First annotation word of the next hop (see the module documentation).
pub const NEXT_HOP_ANNO: usize = crate::packet::anno::NEXT_HOP;

/// The link-local prefix `fe80::/64` of IPv6 next hops.
const LINK_LOCAL: u128 = 0xfe80 << 112;

/// The IPv4 address to resolve for `pkt` going to `dst`: its next-hop
/// annotation, or `dst` when the annotation is 0 (on-link).
#[inline]
pub fn next_hop_v4(pkt: &Packet, dst: Ipv4Addr) -> Ipv4Addr {
    match pkt.anno()[NEXT_HOP_ANNO] {
        0 => dst,
        a => Ipv4Addr::from(a),
    }
}

/// The IPv6 address to resolve for `pkt` going to `dst`: `fe80::` plus the
/// interface identifier in its annotation, or `dst` when that is 0.
#[inline]
pub fn next_hop_v6(pkt: &Packet, dst: Ipv6Addr) -> Ipv6Addr {
    let a = pkt.anno();
    let iid = (u64::from(a[NEXT_HOP_ANNO]) << 32) | u64::from(a[NEXT_HOP_ANNO + 1]);
    if iid == 0 {
        dst
    } else {
        Ipv6Addr::from(LINK_LOCAL | u128::from(iid))
    }
}

/// The annotation words (`NEXT_HOP_ANNO`, `NEXT_HOP_ANNO + 1`) for next hop `via`.
pub fn next_hop_words(via: Option<IpAddr>) -> [u32; 2] {
    match via {
        None => [0, 0],
        Some(IpAddr::V4(a)) => [u32::from(a), 0],
        Some(IpAddr::V6(a)) => {
            let iid = u128::from(a) as u64;
            [(iid >> 32) as u32, iid as u32]
        }
    }
}

/// One route: `PREFIX -> OUTPUT [via ADDRESS]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// The prefix (host bits cleared).
    pub prefix: IpAddr,
    /// Its length.
    pub len: u8,
    /// The output packets to it leave by.
    pub output: u16,
    /// The next hop, when not on-link.
    pub via: Option<IpAddr>,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} -> {}", self.prefix, self.len, self.output)?;
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        Ok(())
    }
}

/// Parses a prefix (`"10.0.0.0/8"`, a bare address being a host route) with
/// a message saying what was wrong.
pub fn parse_route_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    parse_prefix(s.trim()).ok_or_else(|| {
        format!("expected a prefix such as \"10.0.0.0/8\" or \"2001:db8::/32\", found {s:?}")
    })
}

/// Parses `"PREFIX -> OUTPUT [via ADDRESS]"`; `outputs` is the number of
/// outputs the route may name.
pub fn parse_route(s: &str, outputs: usize) -> Result<Route, String> {
    let (prefix, rest) = s
        .split_once("->")
        .ok_or_else(|| format!("expected \"PREFIX -> OUTPUT [via ADDRESS]\", found {s:?}"))?;
    let (prefix, len) = parse_route_prefix(prefix)?;
    let mut words = rest.split_whitespace();
    let output = words.next().unwrap_or("");
    let output: u16 = output
        .parse()
        .ok()
        .filter(|&o: &u16| usize::from(o) < outputs)
        .ok_or_else(|| {
            format!(
                "expected an output number below {outputs} after `->`, found {output:?} in {s:?}"
            )
        })?;
    let via = match (words.next(), words.next(), words.next()) {
        (None, ..) => None,
        (Some("via"), Some(a), None) => Some(parse_via(a, prefix, s)?),
        _ => return Err(format!("expected `via ADDRESS` after the output in {s:?}")),
    };
    Ok(Route {
        prefix,
        len,
        output,
        via,
    })
}

/// A next hop of the prefix's family (a link-local one for IPv6).
fn parse_via(a: &str, prefix: IpAddr, route: &str) -> Result<IpAddr, String> {
    let via: IpAddr = a
        .parse()
        .map_err(|_| format!("expected an address after `via`, found {a:?} in {route:?}"))?;
    match (prefix, via) {
        (IpAddr::V4(_), IpAddr::V4(v)) if u32::from(v) != 0 => Ok(via),
        (IpAddr::V6(_), IpAddr::V6(v)) if u128::from(v) >> 64 == LINK_LOCAL >> 64 => {
            if u128::from(v) as u64 == 0 {
                Err(format!(
                    "the next hop {v} has no interface identifier in {route:?}"
                ))
            } else {
                Ok(via)
            }
        }
        (IpAddr::V6(_), IpAddr::V6(v)) => Err(format!(
            "an IPv6 next hop must be a link-local address (fe80::/64), found {v} in {route:?}"
        )),
        _ => Err(format!(
            "the next hop {via} is not of the prefix's address family (or is 0.0.0.0) in {route:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_print_back() {
        for s in [
            "10.0.0.0/8 -> 1",
            "0.0.0.0/0 -> 0 via 192.0.2.1",
            "2001:db8::/32 -> 2 via fe80::1",
            "192.0.2.7/32 -> 0",
        ] {
            assert_eq!(parse_route(s, 3).unwrap().to_string(), s);
        }
        let r = parse_route("10.1.2.3/8->1", 2).unwrap();
        assert_eq!(r.to_string(), "10.0.0.0/8 -> 1", "host bits are cleared");
        assert_eq!(parse_route("192.0.2.7 -> 0", 1).unwrap().len, 32);
    }

    #[test]
    fn bad_routes_say_what_is_wrong() {
        let e = |s| parse_route(s, 2).unwrap_err();
        assert!(e("10.0.0.0/8").contains("PREFIX -> OUTPUT"));
        assert!(e("10.0.0.0/33 -> 1").contains("expected a prefix"));
        assert!(e("10.0.0.0/8 -> 2").contains("below 2"));
        assert!(e("10.0.0.0/8 -> 1 via").contains("via ADDRESS"));
        assert!(e("10.0.0.0/8 -> 1 via x").contains("expected an address"));
        assert!(e("10.0.0.0/8 -> 1 via fe80::1").contains("family"));
        assert!(e("2001:db8::/32 -> 1 via 2001:db8::1").contains("link-local"));
        assert!(e("::/0 -> 1 via fe80::").contains("interface identifier"));
    }

    #[test]
    fn next_hops_round_trip_through_the_annotation() {
        let mut p = Packet::from_bytes(&[0; 60]);
        let dst4 = Ipv4Addr::new(198, 51, 100, 9);
        let dst6: Ipv6Addr = "2001:db8::9".parse().unwrap();
        assert_eq!(next_hop_v4(&p, dst4), dst4);
        assert_eq!(next_hop_v6(&p, dst6), dst6);
        let w = next_hop_words(Some("192.0.2.1".parse().unwrap()));
        p.anno_mut()[NEXT_HOP_ANNO..].copy_from_slice(&w);
        assert_eq!(next_hop_v4(&p, dst4), Ipv4Addr::new(192, 0, 2, 1));
        let via: Ipv6Addr = "fe80::1234:5678:9abc:def0".parse().unwrap();
        let w = next_hop_words(Some(via.into()));
        p.anno_mut()[NEXT_HOP_ANNO..].copy_from_slice(&w);
        assert_eq!(next_hop_v6(&p, dst6), via);
    }
}
