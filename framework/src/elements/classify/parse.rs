//! The rule language's parser: `"<match> -> <output>"` in, a [`Rule`] out.
//!
//! Parsing happens once, at configuration; every error carries the byte
//! position in the rule string of the term that caused it, and names the
//! earlier term a contradiction is with.

use std::net::IpAddr;

use super::rule::{Frag, Match, Proto, Rule, RuleError, Vlan, L3, MAX_OUTPUT, TCP_FLAGS};
use crate::element::parse_prefix;
use crate::wire::{ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN};
use crate::wire::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};

/// Largest VLAN id.
const MAX_VLAN_ID: u64 = 4095;

/// Parses `"<match> -> <output>"`.
///
/// ```
/// use hpio_nf::elements::classify::parse_rule;
/// let r = parse_rule("tcp and dst port 80 -> 1").unwrap();
/// assert_eq!(r.output, 1);
/// assert_eq!(r.pattern.to_string(), "tcp and dst port 80");
/// let e = parse_rule("tcp and dst prot 80 -> 1").unwrap_err();
/// assert_eq!(e.pos, 12); // the byte where `prot` starts
/// ```
pub fn parse_rule(rule: &str) -> Result<Rule, RuleError> {
    let Some(arrow) = rule.find("->") else {
        return Err(RuleError::new(
            rule.len(),
            "expected `-> <output>` after the match",
        ));
    };
    let pattern = parse_at(rule, 0, arrow)?;
    let out_start = arrow + 2;
    let toks = tokens(rule, out_start, rule.len());
    let output = match toks.as_slice() {
        [] => {
            return Err(RuleError::new(
                rule.len(),
                "expected an output number after `->`",
            ))
        }
        [(pos, t)] => match t.parse::<usize>() {
            Ok(n) if n <= MAX_OUTPUT => n,
            Ok(_) => {
                return Err(RuleError::new(
                    *pos,
                    format!("output {t} is too large (at most {MAX_OUTPUT})"),
                ))
            }
            Err(_) => {
                return Err(RuleError::new(
                    *pos,
                    format!("expected an output number after `->`, found `{t}`"),
                ))
            }
        },
        [_, (pos, t), ..] => {
            return Err(RuleError::new(
                *pos,
                format!("unexpected `{t}` after the output number"),
            ))
        }
    };
    Ok(Rule { pattern, output })
}

/// Parses a match alone (the part of a rule before `->`), for elements that
/// attach their own actions to matches. Positions in errors are byte offsets
/// in `text`.
pub fn parse_match(text: &str) -> Result<Match, RuleError> {
    if let Some(pos) = text.find("->") {
        return Err(RuleError::new(pos, "unexpected `->` in a match"));
    }
    parse_at(text, 0, text.len())
}

/// A word of the rule and its byte offset in the whole rule string.
type Token<'a> = (usize, &'a str);

fn tokens(s: &str, start: usize, end: usize) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut word: Option<usize> = None;
    for (i, c) in s[start..end].char_indices() {
        let at = start + i;
        match (c.is_whitespace(), word) {
            (true, Some(w)) => {
                out.push((w, &s[w..at]));
                word = None;
            }
            (false, None) => word = Some(at),
            _ => {}
        }
    }
    if let Some(w) = word {
        out.push((w, &s[w..end]));
    }
    out
}

/// Where the term that set a constraint sits in the rule string.
type Span = (usize, usize);

/// Parser state: the match so far, and which term set each of its constraints.
struct Parser<'a> {
    text: &'a str,
    toks: Vec<Token<'a>>,
    next: usize,
    m: Match,
    l3_by: Span,
    vlan_by: Span,
    src_by: Span,
    dst_by: Span,
    proto_by: Span,
    src_port_by: Span,
    dst_port_by: Span,
    flags_by: Span,
    icmp_by: Span,
}

const TERMS: &str = "any, ip4, ip6, arp, ether type N, vlan, vlan N, novlan, \
    src/dst net P, src/dst host A, tcp, udp, icmp, icmp6, proto N, src/dst port N[-M], \
    tcp flags F,!F, icmp type T, icmp6 type T, frag, first-frag";

fn parse_at(text: &str, start: usize, end: usize) -> Result<Match, RuleError> {
    let mut p = Parser {
        text,
        toks: tokens(text, start, end),
        next: 0,
        m: Match::ANY,
        l3_by: (0, 0),
        vlan_by: (0, 0),
        src_by: (0, 0),
        dst_by: (0, 0),
        proto_by: (0, 0),
        src_port_by: (0, 0),
        dst_port_by: (0, 0),
        flags_by: (0, 0),
        icmp_by: (0, 0),
    };
    if p.toks.is_empty() {
        return Err(RuleError::new(
            end,
            "empty match (write `any` to match every packet)",
        ));
    }
    if p.toks.len() == 1 && p.toks[0].1.eq_ignore_ascii_case("any") {
        return Ok(Match::ANY);
    }
    loop {
        p.term()?;
        match p.take() {
            None => break,
            Some((_, t)) if t.eq_ignore_ascii_case("and") => {
                if p.peek().is_none() {
                    return Err(RuleError::new(end, "expected a term after `and`"));
                }
            }
            Some((pos, t)) => {
                return Err(RuleError::new(
                    pos,
                    format!("expected `and` or `->` before `{t}`"),
                ))
            }
        }
    }
    Ok(p.m)
}

/// Parses `0x88cc` or `35020`.
fn parse_num(t: &str) -> Option<u64> {
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

const ICMP4_TYPES: [(&str, u8); 12] = [
    ("echo-reply", 0),
    ("unreachable", 3),
    ("dest-unreachable", 3),
    ("source-quench", 4),
    ("redirect", 5),
    ("echo-request", 8),
    ("router-advertisement", 9),
    ("router-solicitation", 10),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
    ("timestamp", 13),
    ("timestamp-reply", 14),
];

const ICMP6_TYPES: [(&str, u8); 12] = [
    ("unreachable", 1),
    ("dest-unreachable", 1),
    ("packet-too-big", 2),
    ("time-exceeded", 3),
    ("parameter-problem", 4),
    ("echo-request", 128),
    ("echo-reply", 129),
    ("router-solicitation", 133),
    ("router-advertisement", 134),
    ("neighbor-solicitation", 135),
    ("neighbor-advertisement", 136),
    ("redirect", 137),
];

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.toks.get(self.next).copied()
    }

    fn take(&mut self) -> Option<Token<'a>> {
        let t = self.peek();
        self.next += t.is_some() as usize;
        t
    }

    /// The next token, which `what` needs; an error at `after`'s end if there is none.
    fn need(&mut self, after: Token<'a>, what: &str) -> Result<Token<'a>, RuleError> {
        self.take().ok_or_else(|| {
            RuleError::new(
                after.0 + after.1.len(),
                format!("expected {what} after `{}`", after.1),
            )
        })
    }

    fn span_text(&self, s: Span) -> &'a str {
        &self.text[s.0..s.1]
    }

    fn contradiction(&self, new: Span, old: Span) -> RuleError {
        RuleError::new(
            new.0,
            format!(
                "`{}` contradicts `{}` (byte {})",
                self.span_text(new),
                self.span_text(old),
                old.0
            ),
        )
    }

    /// Parses one term and merges it into the match.
    fn term(&mut self) -> Result<(), RuleError> {
        let first @ (start, word) = self.take().expect("caller checked for a term");
        let lower = word.to_ascii_lowercase();
        match lower.as_str() {
            "any" => Err(RuleError::new(
                start,
                "`any` stands alone; it cannot be combined with other terms",
            )),
            "ip" | "ip4" | "ipv4" => self.set_l3(L3::Ipv4, self.span(start)),
            "ip6" | "ipv6" => self.set_l3(L3::Ipv6, self.span(start)),
            "arp" => self.set_l3(L3::Ether(ETHERTYPE_ARP), self.span(start)),
            "ether" => self.ether_type(start, first),
            "vlan" => self.vlan(start),
            "novlan" => self.set_vlan(Vlan::Untagged, self.span(start)),
            "frag" | "first-frag" => self.frag(start, lower == "first-frag"),
            "tcp" => {
                if matches!(self.peek(), Some((_, t)) if t.eq_ignore_ascii_case("flags")) {
                    let flags = self.take().expect("peeked");
                    self.tcp_flags(start, flags)
                } else {
                    self.set_proto(Proto::Is(IPPROTO_TCP), None, self.span(start))
                }
            }
            "udp" => self.set_proto(Proto::Is(IPPROTO_UDP), None, self.span(start)),
            "icmp" | "icmp4" | "icmp6" | "icmpv6" => self.icmp(start, lower.ends_with('6')),
            "proto" => self.proto_number(start, first),
            "src" | "dst" => self.direction(start, first),
            "port" | "net" | "host" => Err(RuleError::new(
                start,
                format!("say `src {lower}` or `dst {lower}` (a rule is a conjunction; write two rules for either direction)"),
            )),
            "not" | "or" | "!" => Err(RuleError::new(
                start,
                format!("`{word}` is not supported: a match is terms joined by `and`; order rules instead (first match wins)"),
            )),
            _ => Err(RuleError::new(
                start,
                format!("unknown term `{word}`; expected one of: {TERMS}"),
            )),
        }
    }

    /// `ether type N`: the Ethernet type after any VLAN tags.
    fn ether_type(&mut self, start: usize, first: Token<'a>) -> Result<(), RuleError> {
        let ty = self.need(first, "`type`")?;
        if !ty.1.eq_ignore_ascii_case("type") {
            return Err(RuleError::new(
                ty.0,
                format!("expected `type`, found `{}`", ty.1),
            ));
        }
        let (pos, n) = self.need(ty, "an Ethernet type such as 0x88cc")?;
        let t = match parse_num(n) {
            Some(t) if t <= u16::MAX as u64 => t as u16,
            _ => {
                return Err(RuleError::new(
                    pos,
                    format!("expected an Ethernet type (0..=0xffff, e.g. 0x88cc), found `{n}`"),
                ))
            }
        };
        let l3 = match t {
            ETHERTYPE_IPV4 => L3::Ipv4,
            ETHERTYPE_IPV6 => L3::Ipv6,
            ETHERTYPE_VLAN | ETHERTYPE_QINQ => {
                return Err(RuleError::new(
                    pos,
                    "`ether type` is the type after the VLAN tags; use `vlan` to match tags",
                ))
            }
            t => L3::Ether(t),
        };
        self.set_l3(l3, self.span(start))
    }

    /// `vlan` (any tag) or `vlan ID`.
    fn vlan(&mut self, start: usize) -> Result<(), RuleError> {
        let vlan = match self.peek() {
            Some((pos, n)) if n.starts_with(|c: char| c.is_ascii_digit()) => {
                self.next += 1;
                match parse_num(n) {
                    Some(id) if id <= MAX_VLAN_ID => Vlan::Id(id as u16),
                    _ => {
                        return Err(RuleError::new(
                            pos,
                            format!("expected a VLAN id in 0..=4095, found `{n}`"),
                        ))
                    }
                }
            }
            _ => Vlan::Tagged,
        };
        self.set_vlan(vlan, self.span(start))
    }

    /// `frag` (any fragment) or `first-frag` (the first one only).
    fn frag(&mut self, start: usize, first_only: bool) -> Result<(), RuleError> {
        let by = self.span(start);
        self.set_l3(L3::Ip, by)?;
        if first_only || self.m.frag == Frag::Any {
            self.m.frag = if first_only {
                Frag::First
            } else {
                Frag::Fragment
            };
        }
        Ok(())
    }

    /// `icmp` / `icmp6`, optionally followed by `type T`.
    fn icmp(&mut self, start: usize, v6: bool) -> Result<(), RuleError> {
        let (proto, l3) = if v6 {
            (IPPROTO_ICMPV6, L3::Ipv6)
        } else {
            (IPPROTO_ICMP, L3::Ipv4)
        };
        if matches!(self.peek(), Some((_, t)) if t.eq_ignore_ascii_case("type")) {
            let ty = self.take().expect("peeked");
            self.icmp_type(start, ty, v6)?;
        }
        self.set_proto(Proto::Is(proto), Some(l3), self.span(start))
    }

    /// `proto N`: an IP protocol by number.
    fn proto_number(&mut self, start: usize, first: Token<'a>) -> Result<(), RuleError> {
        let (pos, n) = self.need(first, "an IP protocol number")?;
        match parse_num(n) {
            Some(p) if p <= u8::MAX as u64 => {
                self.set_proto(Proto::Is(p as u8), None, self.span(start))
            }
            _ => Err(RuleError::new(
                pos,
                format!("expected an IP protocol number in 0..=255, found `{n}`"),
            )),
        }
    }

    /// `src`/`dst` followed by `net`, `host` or `port`.
    fn direction(&mut self, start: usize, first: Token<'a>) -> Result<(), RuleError> {
        let src = first.1.eq_ignore_ascii_case("src");
        let kind = self.need(first, "`net`, `host` or `port`")?;
        match kind.1.to_ascii_lowercase().as_str() {
            "net" | "host" => self.address(start, src, kind),
            "port" => self.port(start, src, kind),
            _ => Err(RuleError::new(
                kind.0,
                format!(
                    "expected `net`, `host` or `port` after `{}`, found `{}`",
                    first.1, kind.1
                ),
            )),
        }
    }

    /// The span from `start` to the end of the last token taken.
    fn span(&self, start: usize) -> Span {
        let (pos, t) = self.toks[self.next - 1];
        (start, pos + t.len())
    }

    fn set_l3(&mut self, l3: L3, by: Span) -> Result<(), RuleError> {
        let merged = match (self.m.l3, l3) {
            (a, b) if a == b => return Ok(()),
            (L3::Any, b) | (L3::Ip, b @ (L3::Ipv4 | L3::Ipv6)) => b,
            (a @ (L3::Ipv4 | L3::Ipv6), L3::Ip) => a,
            _ => return Err(self.contradiction(by, self.l3_by)),
        };
        self.m.l3 = merged;
        self.l3_by = by;
        Ok(())
    }

    fn set_vlan(&mut self, vlan: Vlan, by: Span) -> Result<(), RuleError> {
        let merged = match (self.m.vlan, vlan) {
            (a, b) if a == b => return Ok(()),
            (Vlan::Any, b) | (Vlan::Tagged, b @ Vlan::Id(_)) => b,
            (a @ Vlan::Id(_), Vlan::Tagged) => a,
            _ => return Err(self.contradiction(by, self.vlan_by)),
        };
        self.m.vlan = merged;
        self.vlan_by = by;
        Ok(())
    }

    /// Requires protocol `proto` (which implies IP, or the family `l3`).
    fn set_proto(&mut self, proto: Proto, l3: Option<L3>, by: Span) -> Result<(), RuleError> {
        let merged = match (self.m.proto, proto) {
            (a, b) if a == b => None,
            (Proto::Any, b) => Some(b),
            (Proto::TcpOrUdp, b @ Proto::Is(IPPROTO_TCP | IPPROTO_UDP)) => Some(b),
            (Proto::Is(IPPROTO_TCP | IPPROTO_UDP), Proto::TcpOrUdp) => None,
            _ => return Err(self.contradiction(by, self.proto_by)),
        };
        self.set_l3(l3.unwrap_or(L3::Ip), by)?;
        if let Some(p) = merged {
            self.m.proto = p;
            self.proto_by = by;
        }
        Ok(())
    }

    /// The address or prefix after `host` or `net`, checked: no prefix
    /// length after `host`, no bits set past the prefix length.
    fn prefix_after(&mut self, kind: Token<'a>) -> Result<(IpAddr, u8), RuleError> {
        let host = kind.1.eq_ignore_ascii_case("host");
        let what = if host {
            "an IP address"
        } else {
            "an IP prefix such as 10.0.0.0/8"
        };
        let (pos, a) = self.need(kind, what)?;
        let bad = || RuleError::new(pos, format!("expected {what}, found `{a}`"));
        if host && a.contains('/') {
            return Err(RuleError::new(
                pos,
                format!("`host` takes an address without a prefix length; use `net` for `{a}`"),
            ));
        }
        let (prefix, len) = parse_prefix(a).ok_or_else(bad)?;
        let given: IpAddr = a
            .split('/')
            .next()
            .unwrap_or(a)
            .parse()
            .map_err(|_| bad())?;
        if given != prefix {
            return Err(RuleError::new(
                pos,
                format!("`{a}` has bits set past the prefix length; did you mean {prefix}/{len}?"),
            ));
        }
        Ok((prefix, len))
    }

    /// `src|dst host A` or `src|dst net P/L`: the address must agree with the
    /// family so far and overlap an earlier prefix of the same direction.
    fn address(&mut self, start: usize, src: bool, kind: Token<'a>) -> Result<(), RuleError> {
        let (prefix, len) = self.prefix_after(kind)?;
        let by = self.span(start);
        let l3 = if prefix.is_ipv4() { L3::Ipv4 } else { L3::Ipv6 };
        if self.m.l3 != l3 && !matches!(self.m.l3, L3::Any | L3::Ip) {
            let fam = if prefix.is_ipv4() { "IPv4" } else { "IPv6" };
            return Err(RuleError::new(
                by.0,
                format!(
                    "`{}` is an {fam} address, which contradicts `{}` (byte {})",
                    self.span_text(by),
                    self.span_text(self.l3_by),
                    self.l3_by.0
                ),
            ));
        }
        let (cur, cur_by) = if src {
            (self.m.src, self.src_by)
        } else {
            (self.m.dst, self.dst_by)
        };
        let merged = match cur {
            None => (prefix, len),
            Some((c, clen)) => {
                let inner = if len >= clen {
                    (prefix, len)
                } else {
                    (c, clen)
                };
                let outer_len = len.min(clen);
                if crate::element::mask_addr(inner.0, outer_len)
                    != crate::element::mask_addr(if len >= clen { c } else { prefix }, outer_len)
                {
                    return Err(RuleError::new(
                        by.0,
                        format!(
                            "`{}` never matches together with `{}` (byte {}): the prefixes do not overlap",
                            self.span_text(by),
                            self.span_text(cur_by),
                            cur_by.0
                        ),
                    ));
                }
                inner
            }
        };
        self.set_l3(l3, by)?;
        if src {
            self.m.src = Some(merged);
            self.src_by = by;
        } else {
            self.m.dst = Some(merged);
            self.dst_by = by;
        }
        Ok(())
    }

    fn port(&mut self, start: usize, src: bool, kind: Token<'a>) -> Result<(), RuleError> {
        let (pos, p) = self.need(kind, "a port or a range such as 1000-2000")?;
        let num = |s: &str, at: usize| -> Result<u16, RuleError> {
            match s.parse::<u64>() {
                Ok(n) if n <= u16::MAX as u64 => Ok(n as u16),
                _ => Err(RuleError::new(
                    at,
                    format!("expected a port number in 0..=65535, found `{s}`"),
                )),
            }
        };
        let range = match p.split_once('-') {
            Some((lo, hi)) => {
                let lo_n = num(lo, pos)?;
                let hi_n = num(hi, pos + lo.len() + 1)?;
                if lo_n > hi_n {
                    return Err(RuleError::new(
                        pos,
                        format!("port range `{p}` is empty (start > end)"),
                    ));
                }
                (lo_n, hi_n)
            }
            None => {
                let n = num(p, pos)?;
                (n, n)
            }
        };
        let by = self.span(start);
        let (cur, cur_by) = if src {
            (self.m.src_port, self.src_port_by)
        } else {
            (self.m.dst_port, self.dst_port_by)
        };
        let merged = match cur {
            None => range,
            Some((lo, hi)) => {
                let m = (lo.max(range.0), hi.min(range.1));
                if m.0 > m.1 {
                    return Err(RuleError::new(
                        by.0,
                        format!(
                            "`{}` never matches together with `{}` (byte {}): the ranges do not overlap",
                            self.span_text(by),
                            self.span_text(cur_by),
                            cur_by.0
                        ),
                    ));
                }
                m
            }
        };
        self.set_proto(Proto::TcpOrUdp, None, by)?;
        if src {
            self.m.src_port = Some(merged);
            self.src_port_by = by;
        } else {
            self.m.dst_port = Some(merged);
            self.dst_port_by = by;
        }
        Ok(())
    }

    /// `tcp flags syn,!ack` (a list may continue after a comma and a space).
    fn tcp_flags(&mut self, start: usize, flags: Token<'a>) -> Result<(), RuleError> {
        let mut list = vec![self.need(flags, "a list of TCP flags such as syn,!ack")?];
        while list.last().is_some_and(|(_, t)| t.ends_with(','))
            || matches!(self.peek(), Some((_, t)) if t.starts_with(','))
        {
            match self.take() {
                Some(t) => list.push(t),
                None => break,
            }
        }
        let (mut mask, mut value) = (0u8, 0u8);
        for (tpos, tok) in list {
            let mut off = 0;
            for item in tok.split(',') {
                let at = tpos + off;
                off += item.len() + 1;
                if item.is_empty() {
                    continue;
                }
                let (clear, name) = match item.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, item),
                };
                let Some(&(_, bit)) = TCP_FLAGS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))
                else {
                    return Err(RuleError::new(
                        at,
                        format!("unknown TCP flag `{name}`; expected fin, syn, rst, psh, ack, urg, ece or cwr, each optionally prefixed with `!`"),
                    ));
                };
                if mask & bit != 0 && (value & bit != 0) == clear {
                    return Err(RuleError::new(
                        at,
                        format!("TCP flag `{name}` is required both set and clear"),
                    ));
                }
                mask |= bit;
                if !clear {
                    value |= bit;
                }
            }
        }
        if mask == 0 {
            return Err(RuleError::new(
                flags.0 + flags.1.len(),
                "expected a list of TCP flags such as syn,!ack",
            ));
        }
        let by = self.span(start);
        let (cm, cv) = self.m.tcp_flags;
        if (cv ^ value) & cm & mask != 0 {
            return Err(self.contradiction(by, self.flags_by));
        }
        self.set_proto(Proto::Is(IPPROTO_TCP), None, by)?;
        self.m.tcp_flags = (cm | mask, cv | value);
        self.flags_by = by;
        Ok(())
    }

    /// `icmp type 8`, `icmp type echo-request`, `icmp6 type 128`.
    fn icmp_type(&mut self, start: usize, ty: Token<'a>, v6: bool) -> Result<(), RuleError> {
        let (pos, t) = self.need(ty, "an ICMP type number or name")?;
        let names: &[(&str, u8)] = if v6 { &ICMP6_TYPES } else { &ICMP4_TYPES };
        let n = match parse_num(t) {
            Some(n) if n <= u8::MAX as u64 => n as u8,
            Some(_) => {
                return Err(RuleError::new(
                    pos,
                    format!("ICMP type `{t}` is not in 0..=255"),
                ))
            }
            None => match names.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)) {
                Some(&(_, n)) => n,
                None => {
                    let known: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
                    return Err(RuleError::new(
                        pos,
                        format!(
                            "unknown {} type `{t}`; expected a number or one of: {}",
                            if v6 { "ICMPv6" } else { "ICMP" },
                            known.join(", ")
                        ),
                    ));
                }
            },
        };
        let by = self.span(start);
        match self.m.icmp_type {
            Some(cur) if cur != n => return Err(self.contradiction(by, self.icmp_by)),
            _ => {}
        }
        self.m.icmp_type = Some(n);
        self.icmp_by = by;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::rule::{Proto, Vlan, L3};
    use super::*;

    fn err(rule: &str) -> RuleError {
        match parse_rule(rule) {
            Ok(r) => panic!("`{rule}` parsed as {r:?}"),
            Err(e) => e,
        }
    }

    /// Asserts `rule` fails at the byte where `at` first occurs, with a message containing `msg`.
    #[track_caller]
    fn bad(rule: &str, at: &str, msg: &str) {
        let e = err(rule);
        let want = rule
            .find(at)
            .unwrap_or_else(|| panic!("`{at}` not in `{rule}`"));
        assert_eq!(e.pos, want, "`{rule}`: {e}");
        assert!(e.message.contains(msg), "`{rule}`: {e} lacks `{msg}`");
    }

    fn m(text: &str) -> Match {
        parse_match(text).unwrap_or_else(|e| panic!("`{text}`: {e}"))
    }

    #[test]
    fn parses_each_term() {
        let r = parse_rule("any -> 0").unwrap();
        assert!(r.pattern.is_any());
        assert_eq!(r.output, 0);
        assert_eq!(m("ip").l3, L3::Ipv4);
        assert_eq!(m("IPv4").l3, L3::Ipv4);
        assert_eq!(m("ip6").l3, L3::Ipv6);
        assert_eq!(m("arp").l3, L3::Ether(0x0806));
        assert_eq!(m("ether type 0x88cc").l3, L3::Ether(0x88cc));
        assert_eq!(m("ether type 35020").l3, L3::Ether(0x88cc));
        assert_eq!(m("ether type 0x0800"), m("ip4"));
        assert_eq!(m("ether type 0x86DD"), m("ip6"));
        assert_eq!(m("vlan").vlan, Vlan::Tagged);
        assert_eq!(m("vlan 100").vlan, Vlan::Id(100));
        assert_eq!(m("vlan and vlan 7").vlan, Vlan::Id(7));
        assert_eq!(m("novlan").vlan, Vlan::Untagged);
        let x = m("src net 10.0.0.0/8 and dst host 10.1.2.3");
        assert_eq!(x.src, Some(("10.0.0.0".parse().unwrap(), 8)));
        assert_eq!(x.dst, Some(("10.1.2.3".parse().unwrap(), 32)));
        assert_eq!(x.l3, L3::Ipv4);
        let x = m("dst net 2001:db8::/32 and src host ::1");
        assert_eq!(x.dst, Some(("2001:db8::".parse().unwrap(), 32)));
        assert_eq!(x.l3, L3::Ipv6);
        assert_eq!(
            m("src net 10.0.0.0/8 and src net 10.1.0.0/16")
                .src
                .unwrap()
                .1,
            16
        );
        assert_eq!((m("tcp").proto, m("tcp").l3), (Proto::Is(6), L3::Ip));
        assert_eq!(m("udp").proto, Proto::Is(17));
        assert_eq!((m("icmp").proto, m("icmp").l3), (Proto::Is(1), L3::Ipv4));
        assert_eq!((m("icmp6").proto, m("icmp6").l3), (Proto::Is(58), L3::Ipv6));
        assert_eq!(
            (m("proto 47").proto, m("proto 47").l3),
            (Proto::Is(47), L3::Ip)
        );
        let x = m("src port 53 and dst port 1000-2000");
        assert_eq!(
            (x.src_port, x.dst_port),
            (Some((53, 53)), Some((1000, 2000)))
        );
        assert_eq!(x.proto, Proto::TcpOrUdp);
        assert_eq!(m("udp and dst port 53").proto, Proto::Is(17));
        assert_eq!(m("dst port 53 and udp").proto, Proto::Is(17));
        assert_eq!(
            m("dst port 1-100 and dst port 50-200").dst_port,
            Some((50, 100))
        );
        let x = m("tcp flags syn,!ack");
        assert_eq!((x.tcp_flags, x.proto), ((0x12, 0x02), Proto::Is(6)));
        assert_eq!(m("tcp flags syn, !ack").tcp_flags, (0x12, 0x02));
        assert_eq!(
            m("tcp flags fin,syn,rst,psh,ack,urg,ece,cwr").tcp_flags,
            (0xff, 0xff)
        );
        assert_eq!(
            m("tcp flags syn and tcp flags !ack").tcp_flags,
            (0x12, 0x02)
        );
        let x = m("icmp type 8");
        assert_eq!(
            (x.icmp_type, x.proto, x.l3),
            (Some(8), Proto::Is(1), L3::Ipv4)
        );
        assert_eq!(m("icmp type echo-request"), x);
        let x = m("icmp6 type 128");
        assert_eq!(
            (x.icmp_type, x.proto, x.l3),
            (Some(128), Proto::Is(58), L3::Ipv6)
        );
        assert_eq!(m("icmp6 type echo-request"), x);
        assert_eq!(parse_rule("tcp->3").unwrap().output, 3);
        assert_eq!(
            parse_rule("  TCP   AND  dst port 80  ->  255 ")
                .unwrap()
                .output,
            255
        );
    }

    #[test]
    fn malformed_rules_say_where() {
        assert_eq!(err("tcp").pos, 3);
        assert!(err("tcp").message.contains("-> <output>"));
        assert_eq!(err("tcp ->").pos, 6);
        bad("tcp -> x", "x", "expected an output number");
        bad("tcp -> 256", "256", "too large");
        bad("tcp -> 1 2", "2", "unexpected");
        assert_eq!(err(" -> 1").pos, 1);
        assert!(err(" -> 1").message.contains("empty match"));
        bad("tcp udp -> 1", "udp", "expected `and`");
        assert_eq!(err("tcp and -> 1").pos, 8);
        bad("tcp and and udp -> 1", "and udp", "unknown term `and`");
        bad("tpc -> 1", "tpc", "unknown term `tpc`");
        bad("any and tcp -> 1", "any", "stands alone");
        bad("tcp and any -> 1", "any", "stands alone");
        bad("not tcp -> 1", "not", "not supported");
        bad("tcp or udp -> 1", "or", "expected `and`");
        bad("port 80 -> 1", "port", "src port");
    }

    #[test]
    fn bad_values_say_where() {
        bad("ether 0x88cc -> 1", "0x88cc", "expected `type`");
        bad("ether type -> 1", " ->", "Ethernet type");
        bad("ether type 0x10000 -> 1", "0x10000", "Ethernet type");
        bad("ether type 0x8100 -> 1", "0x8100", "use `vlan`");
        bad("vlan 4096 -> 1", "4096", "VLAN id");
        bad("src 10.0.0.1 -> 1", "10.0", "`net`, `host` or `port`");
        bad("src net 10.0.0.0/33 -> 1", "10.0", "IP prefix");
        bad("src net banana -> 1", "banana", "IP prefix");
        bad("src net 10.1.0.0/8 -> 1", "10.1", "did you mean 10.0.0.0/8");
        bad("dst host 10.0.0.0/8 -> 1", "10.0", "use `net`");
        bad("dst host 300.1.1.1 -> 1", "300", "IP address");
        bad("proto 256 -> 1", "256", "0..=255");
        bad("proto tcp -> 1", "tcp", "protocol number");
        bad("dst port 65536 -> 1", "65536", "0..=65535");
        bad("dst port 1-65536 -> 1", "65536", "0..=65535");
        bad("dst port 2000-1000 -> 1", "2000", "empty");
        bad("dst port http -> 1", "http", "port number");
        bad(
            "tcp flags syn,bogus -> 1",
            "bogus",
            "unknown TCP flag `bogus`",
        );
        bad("tcp flags -> 1", " ->", "TCP flags");
        bad("tcp flags syn,!syn -> 1", "!syn", "both set and clear");
        bad("icmp type 300 -> 1", "300", "0..=255");
        bad("icmp type ping -> 1", "ping", "unknown ICMP type");
        bad(
            "icmp6 type neighbour -> 1",
            "neighbour",
            "unknown ICMPv6 type",
        );
    }

    #[test]
    fn contradictions_name_both_terms() {
        bad("tcp and udp -> 1", "udp", "contradicts `tcp` (byte 0)");
        bad("ip4 and ip6 -> 1", "ip6", "contradicts `ip4`");
        bad("arp and tcp -> 1", "tcp", "contradicts `arp`");
        bad("tcp and arp -> 1", "arp", "contradicts `tcp`");
        bad(
            "ether type 0x88cc and ip4 -> 1",
            "ip4",
            "contradicts `ether type 0x88cc`",
        );
        bad("vlan 1 and vlan 2 -> 1", "vlan 2", "contradicts `vlan 1`");
        bad("novlan and vlan -> 1", "vlan ->", "contradicts `novlan`");
        bad(
            "ip4 and src net 2001::/16 -> 1",
            "src",
            "IPv6 address, which contradicts `ip4`",
        );
        bad(
            "src net 10.0.0.0/8 and dst host ::1 -> 1",
            "dst",
            "contradicts `src net 10.0.0.0/8`",
        );
        bad("ip6 and icmp -> 1", "icmp", "contradicts `ip6`");
        bad("icmp6 and ip4 -> 1", "ip4", "contradicts `icmp6`");
        bad(
            "icmp type 8 and ip6 -> 1",
            "ip6",
            "contradicts `icmp type 8`",
        );
        bad(
            "src net 10.0.0.0/8 and src net 11.0.0.0/8 -> 1",
            "src net 11",
            "do not overlap",
        );
        bad("icmp and src port 1 -> 1", "src port", "contradicts `icmp`");
        bad(
            "dst port 1 and proto 47 -> 1",
            "proto",
            "contradicts `dst port 1`",
        );
        bad("udp and tcp flags syn -> 1", "tcp", "contradicts `udp`");
        bad(
            "dst port 1-10 and dst port 20-30 -> 1",
            "dst port 20",
            "do not overlap",
        );
        bad(
            "tcp flags syn and tcp flags !syn -> 1",
            "tcp flags !syn",
            "contradicts `tcp flags syn`",
        );
        bad(
            "icmp type 8 and icmp type 0 -> 1",
            "icmp type 0",
            "contradicts",
        );
        bad("icmp type 8 and icmp6 -> 1", "icmp6", "contradicts");
    }

    #[test]
    fn parse_match_rejects_an_arrow() {
        assert_eq!(parse_match("tcp -> 1").unwrap_err().pos, 4);
        assert_eq!(
            parse_match("tcp and dst port 22").unwrap(),
            m("dst port 22 and tcp")
        );
    }
}
