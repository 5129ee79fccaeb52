//! The compiled form of a rule list.
//!
//! A packet is parsed once ([`Headers`]) and reduced to a [`FlowKey`]: 64
//! bytes holding every field a rule can test, at fixed positions. Each rule
//! compiles to a mask and a value over those bytes (plus, for port ranges that
//! do not cover whole blocks of 256 ports, an exact range test). Instead of
//! testing rules one by one, the rule set keeps one lookup table per key byte
//! that any rule looks at: entry `b` of the table for byte `i` is the bitset
//! of rules that accept `b` in that byte, so a packet's candidate rules are
//! the AND of one table entry per constrained byte, and the first set bit is
//! the first matching rule. The class and protocol bytes go first and pick
//! a group of candidates, which says which other bytes are worth a lookup;
//! the lookups stop as soon as no candidate is left. Lists longer than 64
//! rules take one such pass per 64 rules, stopping at the first pass with a
//! match.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use super::key::{at, class, FlowKey, Needs, KEY_LEN};
use super::rule::{Frag, Match, Proto, Vlan, L3};
use crate::wire::Headers;

/// An inclusive port range that is never a constraint.
const ALL_PORTS: (u16, u16) = (0, u16::MAX);

/// One rule compiled against the key layout.
struct Pattern {
    mask: [u8; KEY_LEN],
    value: [u8; KEY_LEN],
    /// Allowed high bytes of the source and destination ports (for ranges).
    port_hi: [(u8, u8); 2],
    /// Port ranges whose low bytes the tables cannot check: src, dst.
    exact: [(u16, u16); 2],
    /// True when `exact` must be tested after the tables.
    ranged: bool,
}

impl Pattern {
    fn new(m: &Match) -> Pattern {
        let mut p = Pattern {
            mask: [0; KEY_LEN],
            value: [0; KEY_LEN],
            port_hi: [(0, u8::MAX); 2],
            exact: [ALL_PORTS; 2],
            ranged: false,
        };
        match m.l3 {
            L3::Any => {}
            L3::Ip => p.class(class::IP, true),
            L3::Ipv4 => {
                p.class(class::IP, true);
                p.class(class::V6, false);
            }
            L3::Ipv6 => p.class(class::IP | class::V6, true),
            L3::Ether(t) => p.set(at::ETHERTYPE, &t.to_be_bytes(), &[0xff, 0xff]),
        }
        match m.vlan {
            Vlan::Any => {}
            Vlan::Tagged => p.class(class::TAGGED, true),
            Vlan::Untagged => p.class(class::TAGGED, false),
            Vlan::Id(id) => {
                p.class(class::TAGGED, true);
                p.set(at::VLAN, &id.to_be_bytes(), &0x0fffu16.to_be_bytes());
            }
        }
        match m.proto {
            Proto::Any => {}
            Proto::TcpOrUdp => p.class(class::PORTS, true),
            Proto::Is(n) => p.set(at::PROTO, &[n], &[0xff]),
        }
        if m.src_port.is_some() || m.dst_port.is_some() || m.tcp_flags.0 != 0 {
            p.class(class::PORTS, true);
        }
        if m.icmp_type.is_some() {
            p.class(class::L4, true);
        }
        match m.frag {
            Frag::Any => {}
            Frag::Fragment => p.class(class::FRAG, true),
            Frag::First => p.class(class::FRAG | class::FIRST_FRAG, true),
        }
        for (pos, prefix) in [(at::SRC_ADDR, m.src), (at::DST_ADDR, m.dst)] {
            if let Some((addr, len)) = prefix {
                p.set_prefix(pos, addr, len);
            }
        }
        for (i, (pos, range)) in [(at::SRC_PORT, m.src_port), (at::DST_PORT, m.dst_port)]
            .into_iter()
            .enumerate()
        {
            let Some((lo, hi)) = range else { continue };
            if lo == hi {
                p.set(pos, &lo.to_be_bytes(), &[0xff, 0xff]);
            } else if (lo, hi) != ALL_PORTS {
                // The high byte goes through the tables; the low bytes need
                // an exact test unless the range covers whole blocks of 256.
                p.port_hi[i] = ((lo >> 8) as u8, (hi >> 8) as u8);
                if lo & 0xff != 0 || hi & 0xff != 0xff {
                    p.exact[i] = (lo, hi);
                    p.ranged = true;
                }
            }
        }
        let (mask, value) = m.tcp_flags;
        p.set(at::TCP_FLAGS, &[value], &[mask]);
        if let Some(t) = m.icmp_type {
            p.set(at::ICMP_TYPE, &[t], &[0xff]);
        }
        p
    }

    /// Requires the class bits `bits` to be set (or clear).
    fn class(&mut self, bits: u8, set: bool) {
        self.mask[at::CLASS] |= bits;
        if set {
            self.value[at::CLASS] |= bits;
        }
    }

    fn set(&mut self, pos: usize, value: &[u8], mask: &[u8]) {
        for (i, (&v, &m)) in value.iter().zip(mask).enumerate() {
            self.mask[pos + i] |= m;
            self.value[pos + i] |= v & m;
        }
    }

    fn set_prefix(&mut self, pos: usize, addr: IpAddr, len: u8) {
        let (bytes, full): ([u8; 16], usize) = match addr {
            IpAddr::V4(a) => {
                let mut b = [0; 16];
                b[..4].copy_from_slice(&a.octets());
                (b, 4)
            }
            IpAddr::V6(a) => (a.octets(), 16),
        };
        let mut mask = [0u8; 16];
        let mut left = len as usize;
        for m in mask.iter_mut().take(full) {
            let bits = left.min(8);
            *m = if bits == 0 { 0 } else { 0xff << (8 - bits) };
            left -= bits;
        }
        self.set(pos, &bytes, &mask);
    }

    /// Whether this rule accepts byte `b` at key position `pos`.
    fn accepts(&self, pos: usize, b: u8) -> bool {
        if (b ^ self.value[pos]) & self.mask[pos] != 0 {
            return false;
        }
        let hi = match pos {
            at::SRC_PORT => self.port_hi[0],
            at::DST_PORT => self.port_hi[1],
            _ => return true,
        };
        (hi.0..=hi.1).contains(&b)
    }

    /// The key parts this rule tests.
    fn needs(&self) -> Needs {
        let any = |r: std::ops::Range<usize>| r.into_iter().any(|pos| self.looks_at(pos));
        Needs {
            addrs: any(at::SRC_ADDR..at::DST_ADDR + 16),
            l4: any(at::PROTO..at::SRC_ADDR)
                || self.mask[at::CLASS] & (class::L4 | class::PORTS) != 0
                || self.ranged,
        }
    }

    /// Whether the tables need a lookup at `pos` for this rule.
    fn looks_at(&self, pos: usize) -> bool {
        self.mask[pos] != 0
            || (pos == at::SRC_PORT && self.port_hi[0] != (0, u8::MAX))
            || (pos == at::DST_PORT && self.port_hi[1] != (0, u8::MAX))
    }
}

/// The candidate rules of one (class byte, protocol byte) combination, and
/// the key bytes that can still tell them apart.
#[derive(Clone)]
struct Group {
    /// Rules that accept the class and protocol bytes.
    hits: u64,
    /// (key position, its table) of each byte some candidate constrains,
    /// the most constrained first. Tables are shared between groups.
    lookups: Box<[(usize, Arc<Table>)]>,
}

/// Up to 64 rules compiled into per-byte tables.
///
/// The class and protocol bytes, which every rule set of note constrains and
/// which split rules best (TCP rules from UDP rules, IPv4 from IPv6), select
/// a [`Group`]; only the bytes that the group's candidates constrain are then
/// looked up.
#[derive(Clone)]
struct Chunk {
    /// Class byte value -> index of its row's first group in `groups`.
    class_row: [u16; 256],
    /// Protocol byte value -> column of `groups`.
    proto_id: [u8; 256],
    /// Rows by class, columns by protocol.
    groups: Vec<Group>,
    /// Rules that need the exact port range test.
    ranged: u64,
    /// Per rule: source range, destination range (all ports when unconstrained).
    ranges: Vec<[(u16, u16); 2]>,
}

/// For each value of one key byte, the rules that accept it.
type Table = [u64; 256];

/// The table of key position `pos`.
fn table(patterns: &[Pattern], pos: usize) -> Table {
    let mut t = [0u64; 256];
    for (b, entry) in t.iter_mut().enumerate() {
        for (r, p) in patterns.iter().enumerate() {
            if p.accepts(pos, b as u8) {
                *entry |= 1 << r;
            }
        }
    }
    t
}

/// Numbers the distinct entries of `t`: (entry -> id, the entries by id).
fn distinct(t: &Table) -> ([u8; 256], Vec<u64>) {
    let mut ids = [0u8; 256];
    let mut rows: Vec<u64> = Vec::new();
    for (id, &e) in ids.iter_mut().zip(t) {
        let i = match rows.iter().position(|&r| r == e) {
            Some(i) => i,
            None => {
                rows.push(e);
                rows.len() - 1
            }
        };
        // At most 256 distinct entries in 256 slots, so ids fit in a byte.
        *id = i as u8;
    }
    (ids, rows)
}

impl Chunk {
    fn new(patterns: &[Pattern]) -> Chunk {
        debug_assert!(!patterns.is_empty() && patterns.len() <= 64);
        let all = u64::MAX >> (64 - patterns.len());
        let (class_id, class_rows) = distinct(&table(patterns, at::CLASS));
        let (proto_id, proto_rows) = distinct(&table(patterns, at::PROTO));
        let tables: Vec<(usize, Arc<Table>)> = (0..KEY_LEN)
            .filter(|&pos| pos != at::CLASS && pos != at::PROTO)
            .filter(|&pos| patterns.iter().any(|p| p.looks_at(pos)))
            .map(|pos| (pos, Arc::new(table(patterns, pos))))
            .collect();
        // Per key position, the rules that constrain it.
        let mut lookers = [0u64; KEY_LEN];
        for (pos, l) in lookers.iter_mut().enumerate() {
            for (r, p) in patterns.iter().enumerate() {
                if p.looks_at(pos) {
                    *l |= 1 << r;
                }
            }
        }
        let mut groups = Vec::with_capacity(class_rows.len() * proto_rows.len());
        for c in &class_rows {
            for p in &proto_rows {
                let hits = c & p & all;
                let users = |pos: usize| (hits & lookers[pos]).count_ones();
                let mut lookups: Vec<(u32, (usize, Arc<Table>))> = tables
                    .iter()
                    .map(|(pos, t)| (users(*pos), (*pos, t.clone())))
                    .filter(|&(n, _)| n > 0)
                    .collect();
                lookups.sort_by_key(|&(n, (pos, _))| (std::cmp::Reverse(n), pos));
                groups.push(Group {
                    hits,
                    lookups: lookups.into_iter().map(|(_, l)| l).collect(),
                });
            }
        }
        let mut ranged = 0;
        for (r, p) in patterns.iter().enumerate() {
            if p.ranged {
                ranged |= 1 << r;
            }
        }
        let mut class_row = [0u16; 256];
        for (row, id) in class_row.iter_mut().zip(class_id) {
            // At most 128 class rows (7 class bits) of at most 65 protocol
            // columns (64 rules' protocols and "none of them"): below 2^16.
            *row = (id as usize * proto_rows.len()) as u16;
        }
        Chunk {
            class_row,
            proto_id,
            groups,
            ranged,
            ranges: patterns.iter().map(|p| p.exact).collect(),
        }
    }

    /// The first rule of the chunk that matches `key`.
    #[inline]
    fn first_match(&self, key: &FlowKey) -> Option<usize> {
        let row = self.class_row[key.0[at::CLASS] as usize] as usize;
        let col = self.proto_id[key.0[at::PROTO] as usize] as usize;
        let group = self.groups.get(row + col)?;
        let mut hits = group.hits;
        for (pos, table) in group.lookups.iter() {
            if hits == 0 {
                return None;
            }
            hits &= table[key.0[pos % KEY_LEN] as usize];
        }
        while hits != 0 {
            let r = hits.trailing_zeros() as usize;
            if self.ranged >> r & 1 == 0 || self.in_range(r, key) {
                return Some(r);
            }
            hits &= hits - 1;
        }
        None
    }

    #[inline]
    fn in_range(&self, r: usize, key: &FlowKey) -> bool {
        let Some([src, dst]) = self.ranges.get(r) else {
            return false;
        };
        let (sp, dp) = (key.port(at::SRC_PORT), key.port(at::DST_PORT));
        (src.0..=src.1).contains(&sp) && (dst.0..=dst.1).contains(&dp)
    }

    /// The most table loads one packet costs in this chunk.
    fn lookups(&self) -> usize {
        2 + self
            .groups
            .iter()
            .map(|g| g.lookups.len())
            .max()
            .unwrap_or(0)
    }
}

/// A compiled, ordered list of [`Match`]es: finds the first one a packet satisfies.
///
/// Compile once at configuration; clones (one per worker) share the
/// read-only byte tables (2 KiB per key byte that a rule constrains, per 64
/// rules). A lookup costs two loads to pick the candidates by class and
/// protocol, then one load per key byte that those candidates constrain
/// (typically 2 to 10), whatever the number of rules up to 64; it stops early
/// once no candidate is left, and allocates nothing.
#[derive(Clone)]
pub struct RuleSet {
    chunks: Vec<Chunk>,
    len: usize,
    needs: Needs,
    /// When no rule tests more than the EtherType, VLAN, class and
    /// protocol: the first match of every common frame
    /// ([`Headers::common_proto`]) over UDP (`[0]`) and over TCP (`[1]`),
    /// decided once at compile time.
    common: Option<[Option<usize>; 2]>,
}

/// Key positions whose bytes are the same for every common frame of one
/// protocol (see [`Headers::common_proto`]).
const SHALLOW: [usize; 6] = [
    at::ETHERTYPE,
    at::ETHERTYPE + 1,
    at::CLASS,
    at::VLAN,
    at::VLAN + 1,
    at::PROTO,
];

/// A common frame ([`Headers::common_proto`]) over IP protocol `proto`
/// (TCP or UDP): untagged IPv4, 20-byte header, 20 bytes of transport header.
fn common_frame(proto: u8) -> [u8; 54] {
    let mut f = [0u8; 54];
    f[12..14].copy_from_slice(&crate::wire::ETHERTYPE_IPV4.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&40u16.to_be_bytes());
    f[23] = proto;
    f[46] = 0x50; // TCP data offset: 5 words
    f
}

impl RuleSet {
    /// Compiles `matches`, in priority order (the first has the highest).
    pub fn new<'a>(matches: impl IntoIterator<Item = &'a Match>) -> RuleSet {
        let patterns: Vec<Pattern> = matches.into_iter().map(Pattern::new).collect();
        let needs = patterns.iter().map(Pattern::needs).fold(
            Needs {
                addrs: false,
                l4: false,
            },
            |a, b| Needs {
                addrs: a.addrs || b.addrs,
                l4: a.l4 || b.l4,
            },
        );
        let shallow = patterns.iter().all(|p| {
            !p.ranged && (0..KEY_LEN).all(|pos| SHALLOW.contains(&pos) || !p.looks_at(pos))
        });
        let mut set = RuleSet {
            chunks: patterns.chunks(64).map(Chunk::new).collect(),
            len: patterns.len(),
            needs,
            common: None,
        };
        if shallow {
            let decide = |proto: u8| {
                let f = common_frame(proto);
                debug_assert_eq!(Headers::common_proto(&f), Some(proto));
                set.classify(&Headers::parse(&f), &f)
            };
            set.common = Some([
                decide(crate::wire::IPPROTO_UDP),
                decide(crate::wire::IPPROTO_TCP),
            ]);
        }
        set
    }

    /// For a rule set that tests nothing beyond the EtherType, VLAN, class
    /// and protocol ("IPv4 or not", "tcp or udp"): the first match of the
    /// common frames over UDP (`[0]`) and TCP (`[1]`). A caller that sees
    /// [`Headers::common_proto`] give `Some` can take the answer from here
    /// without parsing the frame or building its key. `None` for rule sets
    /// that test addresses, ports, flags or types.
    pub fn common_answers(&self) -> Option<[Option<usize>; 2]> {
        self.common
    }

    /// The parts of a packet's key that some rule tests.
    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no rules (nothing ever matches).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index of the first rule that `key` satisfies.
    #[inline]
    pub fn first_match(&self, key: &FlowKey) -> Option<usize> {
        for (i, c) in self.chunks.iter().enumerate() {
            if let Some(r) = c.first_match(key) {
                return Some(i * 64 + r);
            }
        }
        None
    }

    /// Index of the first rule that the frame with parse `h` satisfies
    /// (extracts the key, then [`RuleSet::first_match`]).
    #[inline]
    pub fn classify(&self, h: &Headers, frame: &[u8]) -> Option<usize> {
        let mut key = FlowKey([0; KEY_LEN]);
        key.fill(h, frame, self.needs);
        self.first_match(&key)
    }

    /// Table loads per packet in the worst case (a packet that no rule
    /// matches, of the protocol whose rules constrain the most key bytes).
    pub fn lookups(&self) -> usize {
        self.chunks.iter().map(Chunk::lookups).sum()
    }
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.len)
            .field("lookups", &self.lookups())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse_match;
    use super::super::testutil::{facts, frame, kit, reference, Net, Spec, Tp};
    use super::*;

    fn matches(rule: &str, f: &[u8]) -> bool {
        let m = parse_match(rule).unwrap_or_else(|e| panic!("`{rule}`: {e}"));
        let set = RuleSet::new([&m]);
        let h = Headers::parse(f);
        assert_eq!(h.status, crate::wire::ParseStatus::Ok);
        let got = set.classify(&h, f) == Some(0);
        assert_eq!(got, reference(&m, &facts(f)), "`{rule}` on {:?}", facts(f));
        got
    }

    fn tcp4(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, flags: u8) -> Vec<u8> {
        frame(&Spec {
            vlan: vec![],
            net: Net::V4(src, dst),
            tp: Tp::Tcp(sp, dp, flags),
        })
    }

    #[test]
    fn l2_terms() {
        let plain = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80, 0x02);
        let tagged = |ids: Vec<u16>, net| {
            frame(&Spec {
                vlan: ids,
                net,
                tp: Tp::Udp(1, 2),
            })
        };
        let v100 = tagged(vec![100], Net::V4([1; 4], [2; 4]));
        let qinq = tagged(vec![7, 100], Net::V6([1; 16], [2; 16]));
        assert!(matches("novlan", &plain));
        assert!(!matches("vlan", &plain));
        assert!(matches("vlan", &v100) && matches("vlan 100", &v100));
        assert!(!matches("vlan 101", &v100) && !matches("novlan", &v100));
        assert!(matches("vlan 7", &qinq), "the outer tag counts");
        assert!(!matches("vlan 100", &qinq));
        assert!(matches("vlan 7 and ip6 and udp", &qinq));
        let arp = frame(&Spec {
            vlan: vec![],
            net: Net::Arp,
            tp: Tp::None,
        });
        let arp_tagged = frame(&Spec {
            vlan: vec![5],
            net: Net::Arp,
            tp: Tp::None,
        });
        let lldp = frame(&Spec {
            vlan: vec![],
            net: Net::Raw(0x88cc),
            tp: Tp::None,
        });
        assert!(matches("arp", &arp) && matches("arp and vlan 5", &arp_tagged));
        assert!(!matches("arp", &plain) && !matches("arp", &lldp));
        assert!(matches("ether type 0x88cc", &lldp) && matches("ether type 35020", &lldp));
        assert!(!matches("ether type 0x88cc", &arp));
        assert!(
            matches("ether type 0x0806", &arp_tagged),
            "the type after the tags"
        );
        assert!(!matches("ip4", &arp) && !matches("ip6", &lldp));
        assert!(matches("any", &arp) && matches("any", &plain));
    }

    #[test]
    fn l3_terms() {
        let v4 = tcp4([10, 1, 2, 3], [192, 168, 0, 9], 1000, 80, 0x10);
        let src6: [u8; 16] = "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        let dst6: [u8; 16] = "fe80::9".parse::<std::net::Ipv6Addr>().unwrap().octets();
        let v6 = frame(&Spec {
            vlan: vec![],
            net: Net::V6(src6, dst6),
            tp: Tp::Udp(53, 53),
        });
        assert!(matches("ip", &v4) && matches("ip4", &v4) && matches("ipv4", &v4));
        assert!(!matches("ip6", &v4) && matches("ip6", &v6) && !matches("ip4", &v6));
        assert!(matches("src net 10.0.0.0/8", &v4));
        assert!(matches("src net 10.1.2.0/23", &v4));
        assert!(!matches("src net 10.1.4.0/23", &v4));
        assert!(matches("src host 10.1.2.3 and dst host 192.168.0.9", &v4));
        assert!(!matches("src host 10.1.2.4", &v4));
        assert!(!matches("dst net 10.0.0.0/8", &v4));
        assert!(matches("src net 0.0.0.0/0", &v4) && !matches("src net 0.0.0.0/0", &v6));
        assert!(matches("src net 2001:db8::/32", &v6));
        assert!(matches("src host 2001:db8::1 and dst net fe80::/10", &v6));
        assert!(!matches("src net 2001:db9::/32", &v6) && !matches("src host 2001:db8::2", &v6));
        assert!(matches("src net ::/0", &v6) && !matches("src net ::/0", &v4));
        // An IPv4 prefix never matches IPv6 whose first bytes look the same.
        let mapped: [u8; 16] = [10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let v6ten = frame(&Spec {
            vlan: vec![],
            net: Net::V6(mapped, dst6),
            tp: Tp::Udp(1, 2),
        });
        assert!(!matches("src net 10.0.0.0/8", &v6ten) && matches("src net a01::/16", &v6ten));
    }

    #[test]
    fn l4_terms() {
        let syn = tcp4([1; 4], [2; 4], 40000, 80, 0x02);
        let synack = tcp4([1; 4], [2; 4], 80, 40000, 0x12);
        let udp = frame(&Spec {
            vlan: vec![],
            net: Net::V4([1; 4], [2; 4]),
            tp: Tp::Udp(5353, 53),
        });
        let gre = frame(&Spec {
            vlan: vec![],
            net: Net::V4([1; 4], [2; 4]),
            tp: Tp::Proto(47),
        });
        let echo = frame(&Spec {
            vlan: vec![],
            net: Net::V4([1; 4], [2; 4]),
            tp: Tp::Icmp4(8),
        });
        let echo6 = frame(&Spec {
            vlan: vec![],
            net: Net::V6([1; 16], [2; 16]),
            tp: Tp::Icmp6(128),
        });
        let ns6 = frame(&Spec {
            vlan: vec![],
            net: Net::V6([1; 16], [2; 16]),
            tp: Tp::Icmp6(135),
        });
        assert!(matches("tcp", &syn) && !matches("udp", &syn) && matches("udp", &udp));
        assert!(matches("proto 6", &syn) && matches("proto 47", &gre) && !matches("tcp", &gre));
        assert!(matches("icmp", &echo) && !matches("icmp", &echo6) && matches("icmp6", &echo6));
        assert!(matches("proto 1", &echo) && matches("proto 58", &echo6));
        assert!(matches("dst port 80", &syn) && !matches("src port 80", &syn));
        assert!(matches("src port 80", &synack) && matches("dst port 53", &udp));
        assert!(matches("udp and src port 5353 and dst port 53", &udp));
        assert!(!matches("tcp and dst port 53", &udp));
        assert!(matches("src port 40000-40000", &syn));
        assert!(matches("src port 39999-40001", &syn) && !matches("src port 40001-50000", &syn));
        assert!(matches("src port 1024-65535", &syn) && !matches("src port 1024-65535", &synack));
        assert!(matches("src port 0-65535", &syn) && !matches("src port 0-65535", &gre));
        assert!(!matches("dst port 0-65535", &echo), "ICMP has no ports");
        assert!(!matches("src port 0", &echo) && !matches("dst port 8", &echo));
        assert!(matches("dst port 0-100", &syn) && !matches("dst port 81-100", &syn));
        assert!(matches("tcp flags syn", &syn) && matches("tcp flags syn,!ack", &syn));
        assert!(!matches("tcp flags syn,!ack", &synack) && matches("tcp flags syn,ack", &synack));
        assert!(matches("tcp flags !fin,!rst", &synack) && !matches("tcp flags fin", &syn));
        assert!(!matches("tcp flags !syn", &udp));
        assert!(matches("icmp type 8", &echo) && matches("icmp type echo-request", &echo));
        assert!(!matches("icmp type 0", &echo) && !matches("icmp type 8", &echo6));
        assert!(matches("icmp6 type 128", &echo6) && matches("icmp6 type echo-request", &echo6));
        assert!(matches("icmp6 type neighbor-solicitation", &ns6));
        assert!(!matches("icmp6 type 128", &ns6));
    }

    /// `frag` and `first-frag`, and what port terms mean on fragments:
    /// a first fragment has its ports, a later one none (so no port, flag or
    /// type term matches it), over IPv4 and IPv6.
    #[test]
    fn fragment_terms_and_ports_of_fragments() {
        let spec = Spec {
            vlan: vec![9],
            net: Net::V4([1; 4], [2; 4]),
            tp: Tp::Udp(5000, 53),
        };
        let udp = frame(&spec);
        let first = kit(&spec).fragment(0, true).build();
        let middle = kit(&spec).fragment(185, true).build();
        let last = kit(&spec).fragment(370, false).build();
        for f in [&first, &middle, &last] {
            assert!(matches("frag", f) && matches("ip4 and frag and udp", f));
            assert!(matches("vlan 9 and src host 1.1.1.1 and frag", f));
        }
        assert!(!matches("frag", &udp) && !matches("first-frag", &udp));
        assert!(matches("first-frag", &first) && matches("first-frag and dst port 53", &first));
        assert!(
            matches("udp and dst port 53", &first),
            "a first fragment has its ports"
        );
        for f in [&middle, &last] {
            assert!(!matches("first-frag", f));
            assert!(!matches("dst port 53", f) && !matches("udp and src port 0-65535", f));
            assert!(!matches("frag and dst port 53", f));
        }
        // MF with offset 0 and IPv6: through the parse alone (etherparse
        // builds no IPv6 Fragment header here).
        let hit = |rule: &str, f: &[u8]| {
            let h = Headers::parse(f);
            assert_eq!(h.status, crate::wire::ParseStatus::Ok);
            RuleSet::new([&parse_match(rule).unwrap()]).classify(&h, f) == Some(0)
        };
        let v6 = frame(&Spec {
            vlan: vec![],
            net: Net::V6([1; 16], [2; 16]),
            tp: Tp::Udp(5000, 53),
        });
        let v6_frag = |offset: u16, more: bool| {
            // Insert a Fragment header (next header UDP) after the fixed header.
            let mut f = v6[..54].to_vec();
            f[14 + 6] = 44;
            let plen = u16::from_be_bytes([f[18], f[19]]) + 8;
            f[18..20].copy_from_slice(&plen.to_be_bytes());
            f.extend_from_slice(&[17, 0]);
            f.extend_from_slice(&(offset | more as u16).to_be_bytes());
            f.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            f.extend_from_slice(&v6[54..]);
            f
        };
        let (first6, later6, atomic6) = (v6_frag(0, true), v6_frag(1448, false), v6_frag(0, false));
        assert!(hit("ip6 and first-frag and udp and dst port 53", &first6));
        assert!(hit("frag", &later6) && hit("udp and frag", &later6));
        assert!(!hit("first-frag", &later6) && !hit("dst port 53", &later6));
        assert!(
            !hit("frag", &atomic6),
            "an atomic fragment is a whole datagram"
        );
        assert!(hit("dst port 53", &atomic6));
        assert!(!hit("frag", &v6));
        assert!(!hit(
            "frag",
            &frame(&Spec {
                vlan: vec![],
                net: Net::Arp,
                tp: Tp::None
            })
        ));
    }

    #[test]
    fn non_first_fragment_has_a_protocol_but_no_ports() {
        let mut f = frame(&Spec {
            vlan: vec![],
            net: Net::V4([1; 4], [2; 4]),
            tp: Tp::Udp(0, 0),
        });
        f[14 + 7] = 0x10; // fragment offset 16 (x8 bytes); checksum not rechecked here
        let h = Headers::parse(&f);
        let hit =
            |rule: &str| RuleSet::new([&parse_match(rule).unwrap()]).classify(&h, &f) == Some(0);
        assert!(hit("udp") && hit("ip4"));
        assert!(!hit("dst port 0") && !hit("udp and src port 0-65535"));
    }

    #[test]
    fn first_match_wins_across_chunks() {
        let f = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 22, 0x02);
        let mut rules: Vec<Match> = (0..150)
            .map(|i| parse_match(&format!("tcp and dst port {}", 1000 + i)).unwrap())
            .collect();
        let h = Headers::parse(&f);
        assert_eq!(RuleSet::new(&rules).classify(&h, &f), None);
        rules[130] = parse_match("dst port 22").unwrap();
        assert_eq!(RuleSet::new(&rules).classify(&h, &f), Some(130));
        rules[140] = parse_match("any").unwrap();
        assert_eq!(RuleSet::new(&rules).classify(&h, &f), Some(130));
        rules[70] = parse_match("src net 10.0.0.0/8").unwrap();
        assert_eq!(RuleSet::new(&rules).classify(&h, &f), Some(70));
        rules[64] = parse_match("dst port 20-30").unwrap();
        assert_eq!(RuleSet::new(&rules).classify(&h, &f), Some(64));
        rules[3] = parse_match("any").unwrap();
        let set = RuleSet::new(&rules);
        assert_eq!(set.classify(&h, &f), Some(3));
        assert_eq!(set.len(), 150);
    }

    #[test]
    fn lookups_scale_with_constrained_bytes_not_rules() {
        let rules: Vec<Match> = (0..60)
            .map(|i| {
                parse_match(&format!("src net 10.{i}.0.0/16 and tcp and dst port {i}")).unwrap()
            })
            .collect();
        // class, proto, 2 dst port bytes, 2 src address bytes.
        assert_eq!(RuleSet::new(&rules).lookups(), 6);
    }

    /// A deterministic generator, so failures reproduce.
    use testkit::rng::Rng;

    const V4: [[u8; 4]; 4] = [[10, 0, 0, 1], [10, 1, 0, 1], [192, 168, 1, 7], [8, 8, 8, 8]];
    const PORTS: [u16; 6] = [22, 53, 80, 443, 1500, 40000];

    fn v6(i: u8) -> [u8; 16] {
        let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        a[5] = i;
        a[15] = i;
        a
    }

    fn random_spec(r: &mut Rng) -> Spec {
        let vlan = match r.next_u64() % 4 {
            0 => vec![r.pick(&[1, 100, 4095])],
            1 => vec![r.pick(&[1, 100]), 200],
            _ => vec![],
        };
        let net = match r.next_u64() % 10 {
            0 => Net::Arp,
            1 => Net::Raw(r.pick(&[0x88cc, 0x88b5])),
            2..=4 => Net::V6(v6(r.pick(&[0, 1, 2])), v6(r.pick(&[0, 1, 2]))),
            _ => Net::V4(r.pick(&V4), r.pick(&V4)),
        };
        let tp = match (&net, r.next_u64() % 6) {
            (Net::Arp | Net::Raw(_), _) => Tp::None,
            (_, 0 | 1) => Tp::Tcp(r.pick(&PORTS), r.pick(&PORTS), r.next_u64() as u8),
            (_, 2 | 3) => Tp::Udp(r.pick(&PORTS), r.pick(&PORTS)),
            (Net::V4(..), 4) => Tp::Icmp4(r.pick(&[0, 3, 8])),
            (_, 4) => Tp::Icmp6(r.pick(&[1, 128, 135])),
            _ => Tp::Proto(r.pick(&[47, 50, 132])),
        };
        Spec { vlan, net, tp }
    }

    fn random_term(r: &mut Rng) -> String {
        let a4 = |r: &mut Rng| std::net::Ipv4Addr::from(r.pick(&V4));
        let a6 = |r: &mut Rng| std::net::Ipv6Addr::from(v6(r.pick(&[0, 1, 2])));
        let dir = r.pick(&["src", "dst"]);
        match r.next_u64() % 16 {
            0 => r
                .pick(&["ip4", "ip6", "arp", "ether type 0x88cc"])
                .to_string(),
            1 => r
                .pick(&["vlan", "novlan", "vlan 100", "vlan 1", "vlan 200"])
                .to_string(),
            2 => {
                let len = r.pick(&[0, 8, 16, 24, 32]);
                let a = crate::element::mask_addr(IpAddr::V4(a4(r)), len);
                format!("{dir} net {a}/{len}")
            }
            3 => format!("{dir} host {}", a4(r)),
            4 => {
                let len = r.pick(&[0, 32, 40, 48, 128]);
                let a = crate::element::mask_addr(IpAddr::V6(a6(r)), len);
                format!("{dir} net {a}/{len}")
            }
            5 => r
                .pick(&["tcp", "udp", "icmp", "icmp6", "proto 47", "proto 132"])
                .to_string(),
            6 | 7 => format!("{dir} port {}", r.pick(&PORTS)),
            8 | 9 => {
                let lo = r.pick(&[0u16, 23, 53, 256, 1024, 1500]);
                let hi = r.pick(&[53u16, 80, 511, 1499, 1500, 65535]).max(lo);
                format!("{dir} port {lo}-{hi}")
            }
            10 | 11 => {
                let names = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"];
                let list: Vec<String> = (0..1 + r.next_u64() % 3)
                    .map(|_| format!("{}{}", r.pick(&["", "!"]), r.pick(&names)))
                    .collect();
                format!("tcp flags {}", list.join(","))
            }
            12 => format!("icmp type {}", r.pick(&[0, 3, 8])),
            13 => format!("icmp6 type {}", r.pick(&[1, 128, 135])),
            14 if r.next_u64() % 2 == 0 => r.pick(&["frag", "first-frag"]).to_string(),
            _ => "any".to_string(),
        }
    }

    #[test]
    fn a_rule_set_extracts_only_what_its_rules_test() {
        let needs = |rules: &[&str]| {
            let ms: Vec<Match> = rules.iter().map(|r| parse_match(r).unwrap()).collect();
            let n = RuleSet::new(&ms).needs();
            (n.addrs, n.l4)
        };
        assert_eq!(needs(&["ip4"]), (false, false));
        assert_eq!(
            needs(&["ip6", "vlan 10", "ether type 0x0806"]),
            (false, false)
        );
        assert_eq!(needs(&["tcp"]), (false, true));
        assert_eq!(needs(&["ip4 and dst port 53"]), (false, true));
        assert_eq!(needs(&["udp and src port 1000-1500"]), (false, true));
        assert_eq!(needs(&["icmp type 8"]), (false, true));
        assert_eq!(needs(&["src net 10.0.0.0/8"]), (true, false));
        assert_eq!(needs(&["ip4", "dst host fd00::1 and tcp"]), (true, true));
    }

    /// Small random rule sets (which test only some key parts) decide
    /// exactly as they would on the full key.
    #[test]
    fn a_partial_key_decides_as_the_full_key() {
        let mut r = Rng::new(0x2545f4914f6cdd1d);
        let mut partial = 0;
        for _ in 0..400 {
            let rules: Vec<Match> = (0..1 + r.next_u64() % 3)
                .filter_map(|_| parse_match(&random_term(&mut r)).ok())
                .collect();
            let set = RuleSet::new(&rules);
            if set.needs() != Needs::ALL {
                partial += 1;
            }
            for _ in 0..20 {
                let f = frame(&random_spec(&mut r));
                let h = Headers::parse(&f);
                assert_eq!(
                    set.classify(&h, &f),
                    set.first_match(&FlowKey::extract(&h, &f)),
                    "{rules:?} on {:?}",
                    facts(&f)
                );
            }
        }
        assert!(partial > 100, "only {partial} sets with a partial key");
    }

    /// Random rule lists over random frames: the compiled set must pick the
    /// same first rule as the reference semantics over etherparse's parse.
    #[test]
    fn agrees_with_reference_on_random_rules_and_frames() {
        let mut r = Rng::new(0x9e3779b97f4a7c15);
        let mut hits = 0;
        for round in 0..40 {
            let mut rules = Vec::new();
            let want = if round % 4 == 0 {
                150
            } else {
                1 + r.next_u64() as usize % 40
            };
            while rules.len() < want {
                let n = 1 + r.next_u64() % 3;
                let terms: Vec<String> = (0..n).map(|_| random_term(&mut r)).collect();
                let text = if terms.iter().any(|t| t == "any") {
                    "any".to_string()
                } else {
                    terms.join(" and ")
                };
                if let Ok(m) = parse_match(&text) {
                    // Rare `any` rules only, so later rules still get exercised.
                    if !m.is_any() || r.next_u64() % 8 == 0 {
                        rules.push(m);
                    }
                }
            }
            let set = RuleSet::new(&rules);
            for _ in 0..200 {
                let spec = random_spec(&mut r);
                let mut k = kit(&spec);
                if let Net::V4(..) = spec.net {
                    // Some IPv4 frames become first or later fragments.
                    match r.next_u64() % 6 {
                        0 => k = k.fragment(0, true),
                        1 => k = k.fragment(1 + r.next_u64() as u16 % 300, r.next_u64() % 2 == 0),
                        _ => {}
                    }
                }
                let f = k.build();
                let h = Headers::parse(&f);
                assert_eq!(h.status, crate::wire::ParseStatus::Ok);
                let x = facts(&f);
                let want = rules.iter().position(|m| reference(m, &x));
                let got = set.classify(&h, &f);
                assert_eq!(
                    got,
                    want,
                    "{x:?}: {:?}",
                    want.or(got).map(|i| rules[i].to_string())
                );
                hits += want.is_some() as usize;
            }
        }
        assert!(
            hits > 2000,
            "too few matches to be a meaningful test: {hits}"
        );
    }

    /// A term that tests only the EtherType, VLAN, class or protocol (so
    /// that sets of them have common answers), or now and then any term.
    fn shallow_term(r: &mut Rng) -> String {
        if r.next_u64() % 5 == 0 {
            return random_term(r);
        }
        r.pick(&[
            "ip4",
            "ip6",
            "ip",
            "arp",
            "ether type 0x88cc",
            "ether type 0x0800",
            "vlan",
            "novlan",
            "vlan 100",
            "tcp",
            "udp",
            "icmp",
            "icmp6",
            "proto 47",
            "frag",
            "any",
        ])
        .to_string()
    }

    /// The common answers, decided at compile time, are what the general
    /// matcher gives every common frame, over random rule sets and random
    /// (sometimes damaged) frames; sets that test more have none.
    #[test]
    fn common_answers_decide_as_the_general_matcher() {
        let mut r = Rng::new(0x5851f42d4c957f2d);
        let (mut sets, mut common) = (0, 0);
        for _ in 0..600 {
            let rules: Vec<Match> = (0..1 + r.next_u64() % 4)
                .filter_map(|_| {
                    let n = 1 + r.next_u64() % 2;
                    let terms: Vec<String> = (0..n).map(|_| shallow_term(&mut r)).collect();
                    parse_match(&terms.join(" and ")).ok()
                })
                .collect();
            let set = RuleSet::new(&rules);
            let deep = rules.iter().any(|m| {
                m.src.is_some()
                    || m.dst.is_some()
                    || m.src_port.is_some()
                    || m.dst_port.is_some()
                    || m.tcp_flags.0 != 0
                    || m.icmp_type.is_some()
            });
            let Some(answers) = set.common_answers() else {
                assert!(deep, "{rules:?} tests only shallow fields");
                continue;
            };
            sets += 1;
            for _ in 0..80 {
                let mut f = frame(&random_spec(&mut r));
                if r.next_u64() % 3 == 0 {
                    let i = r.next_u64() as usize % f.len().min(60);
                    f[i] = r.next_u64() as u8;
                }
                if r.next_u64() % 6 == 0 {
                    f.truncate(r.next_u64() as usize % (f.len() + 1));
                }
                let h = Headers::parse(&f);
                let Some(proto) = Headers::common_proto(&f) else {
                    continue;
                };
                common += 1;
                assert_eq!(h.status, crate::wire::ParseStatus::Ok);
                let fast = answers[usize::from(proto == crate::wire::IPPROTO_TCP)];
                assert_eq!(fast, set.classify(&h, &f), "{rules:?} on {f:02x?}");
            }
        }
        assert!(sets > 200, "only {sets} sets with common answers");
        assert!(common > 1500, "only {common} common frames");
    }
}
