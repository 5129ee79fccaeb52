//! What a rule means once parsed: a [`Match`] (a normalized conjunction of
//! constraints) and an output number. The text form is read by `parse.rs`
//! and written back by `Display`.

use std::fmt;
use std::net::IpAddr;

use crate::wire::ETHERTYPE_ARP;
use crate::wire::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};

/// Largest output number a rule may name.
pub const MAX_OUTPUT: usize = 255;

/// A rule that failed to parse: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {pos}: {message}")]
pub struct RuleError {
    /// Byte offset in the rule string of the offending term (the string's
    /// length when something is missing at the end).
    pub pos: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

impl RuleError {
    pub(super) fn new(pos: usize, message: impl Into<String>) -> RuleError {
        RuleError {
            pos,
            message: message.into(),
        }
    }
}

/// A parsed rule: which packets, and the output they go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The packets the rule selects.
    pub pattern: Match,
    /// The output they go to.
    pub output: usize,
}

/// The network layer a match requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum L3 {
    /// No requirement.
    Any,
    /// IPv4 or IPv6.
    Ip,
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// A non-IP Ethernet type (IP types are always normalized to `Ipv4`/`Ipv6`).
    Ether(u16),
}

/// The VLAN tagging a match requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Vlan {
    /// No requirement.
    Any,
    /// At least one tag.
    Tagged,
    /// No tag.
    Untagged,
    /// The outer tag has this id.
    Id(u16),
}

/// The IP protocol a match requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Proto {
    /// No requirement.
    Any,
    /// TCP or UDP (a port term without a protocol term).
    TcpOrUdp,
    /// Exactly this protocol number.
    Is(u8),
}

/// The fragments a match requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Frag {
    /// No requirement.
    Any,
    /// Any IP fragment (`frag`).
    Fragment,
    /// A first fragment (`first-frag`).
    First,
}

/// The packets one rule selects: a conjunction of constraints, normalized so
/// that equal meanings compare equal (`ip4 and tcp` == `tcp and ip4`).
///
/// Build one with [`super::parse_match`] (or [`super::parse_rule`]); compile a list of them
/// into a [`super::RuleSet`]. `Display` writes it back in canonical form,
/// which parses to the same `Match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub(super) l3: L3,
    pub(super) vlan: Vlan,
    /// Source prefix (host bits clear); its family agrees with `l3`.
    pub(super) src: Option<(IpAddr, u8)>,
    /// Destination prefix (host bits clear); its family agrees with `l3`.
    pub(super) dst: Option<(IpAddr, u8)>,
    pub(super) proto: Proto,
    /// Inclusive source port range; implies a TCP or UDP header.
    pub(super) src_port: Option<(u16, u16)>,
    /// Inclusive destination port range; implies a TCP or UDP header.
    pub(super) dst_port: Option<(u16, u16)>,
    /// TCP flag bits that must be set or clear: (which bits, their values).
    pub(super) tcp_flags: (u8, u8),
    /// ICMP or ICMPv6 type (the protocol says which); implies a complete ICMP header.
    pub(super) icmp_type: Option<u8>,
    /// Fragments only (implies IP).
    pub(super) frag: Frag,
}

impl Match {
    /// The match that selects every well-formed packet (`any`).
    pub const ANY: Match = Match {
        l3: L3::Any,
        vlan: Vlan::Any,
        src: None,
        dst: None,
        proto: Proto::Any,
        src_port: None,
        dst_port: None,
        tcp_flags: (0, 0),
        icmp_type: None,
        frag: Frag::Any,
    };

    /// True for `any`: the match has no constraint.
    pub fn is_any(&self) -> bool {
        *self == Match::ANY
    }
}

/// TCP flag names and bits, in bit order.
pub(super) use crate::wire::tcp_flags::NAMES as TCP_FLAGS;

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_any() {
            return f.write_str("any");
        }
        let mut terms: Vec<String> = Vec::new();
        match self.l3 {
            L3::Any | L3::Ip => {}
            L3::Ipv4 => terms.push("ip4".into()),
            L3::Ipv6 => terms.push("ip6".into()),
            L3::Ether(ETHERTYPE_ARP) => terms.push("arp".into()),
            L3::Ether(t) => terms.push(format!("ether type {t:#06x}")),
        }
        match self.vlan {
            Vlan::Any => {}
            Vlan::Tagged => terms.push("vlan".into()),
            Vlan::Untagged => terms.push("novlan".into()),
            Vlan::Id(id) => terms.push(format!("vlan {id}")),
        }
        for (dir, p) in [("src", self.src), ("dst", self.dst)] {
            match p {
                Some((a, len)) if len == if a.is_ipv4() { 32 } else { 128 } => {
                    terms.push(format!("{dir} host {a}"))
                }
                Some((a, len)) => terms.push(format!("{dir} net {a}/{len}")),
                None => {}
            }
        }
        match self.frag {
            Frag::Any => {}
            Frag::Fragment => terms.push("frag".into()),
            Frag::First => terms.push("first-frag".into()),
        }
        match (self.proto, self.l3) {
            (Proto::Is(IPPROTO_TCP), _) => terms.push("tcp".into()),
            (Proto::Is(IPPROTO_UDP), _) => terms.push("udp".into()),
            (Proto::Is(IPPROTO_ICMP), L3::Ipv4) => terms.push("icmp".into()),
            (Proto::Is(IPPROTO_ICMPV6), L3::Ipv6) => terms.push("icmp6".into()),
            (Proto::Is(p), _) => terms.push(format!("proto {p}")),
            (Proto::Any | Proto::TcpOrUdp, _) => {}
        }
        for (dir, r) in [("src", self.src_port), ("dst", self.dst_port)] {
            match r {
                Some((lo, hi)) if lo == hi => terms.push(format!("{dir} port {lo}")),
                Some((lo, hi)) => terms.push(format!("{dir} port {lo}-{hi}")),
                None => {}
            }
        }
        let (mask, value) = self.tcp_flags;
        if mask != 0 {
            let list: Vec<String> = TCP_FLAGS
                .iter()
                .filter(|(_, b)| mask & b != 0)
                .map(|(n, b)| format!("{}{n}", if value & b != 0 { "" } else { "!" }))
                .collect();
            terms.push(format!("tcp flags {}", list.join(",")));
        }
        if let Some(t) = self.icmp_type {
            let v6 = self.proto == Proto::Is(IPPROTO_ICMPV6);
            terms.push(format!("{} type {t}", if v6 { "icmp6" } else { "icmp" }));
        }
        f.write_str(&terms.join(" and "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse_match;
    use super::*;

    fn m(text: &str) -> Match {
        parse_match(text).unwrap_or_else(|e| panic!("`{text}`: {e}"))
    }

    #[test]
    fn terms_commute_and_display_round_trips() {
        assert_eq!(m("tcp and ip4"), m("ip4 and tcp"));
        assert_eq!(m("dst port 80 and tcp"), m("tcp and dst port 80"));
        for text in [
            "any",
            "ip4",
            "ip6 and vlan 100 and tcp",
            "arp and novlan",
            "ether type 0x88cc and vlan",
            "src net 10.0.0.0/8 and dst host 192.168.1.1 and udp and dst port 53",
            "dst net 2001:db8::/32 and src host ::1 and tcp flags syn,!ack",
            "proto 47",
            "proto 1",
            "ip6 and proto 1",
            "src port 1000-2000",
            "icmp type 3",
            "icmp6 type 135",
            "tcp and src port 22 and dst port 1024-65535",
            "frag",
            "ip6 and first-frag and udp",
            "udp and frag and dst port 53",
        ] {
            let x = m(text);
            let shown = x.to_string();
            assert_eq!(m(&shown), x, "`{text}` shown as `{shown}`");
        }
        assert_eq!(m("tcp and dst port 80").to_string(), "tcp and dst port 80");
        assert_eq!(m("first-frag and frag"), m("first-frag"));
        assert_eq!(m("frag and first-frag").to_string(), "first-frag");
    }
}
