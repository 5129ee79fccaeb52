//! `SynGuard`: rate-limits TCP SYNs per source address.

use std::hash::BuildHasher;

use hpio_nf::prelude::*;
use hpio_nf::wire::tcp_flags::{ACK, SYN};
use hpio_nf::wire::{Ipv4Packet, Ipv6Packet, TcpPacket, IPPROTO_TCP};

use crate::table::{Table, Verdict};

// The class's drop reasons and counters, each bound by name to a constant.
hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// A SYN from a source over its rate.
        SYN_FLOOD = "syn-flood",
    ]
}

hpio_nf::counters! {
    COUNTERS = [
        SYNS = "syns": "TCP SYNs seen (SYN set, ACK clear)",
        SYNS_PASSED = "syns-passed": "SYNs within their source's rate, passed",
        SOURCES = "sources": "Sources in the table (per worker, summed)",
        EVICTIONS = "evictions": "Sources forgotten to make room for new ones",
    ]
}

/// The `SynGuard` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "SynGuard",
        summary: "Rate-limits TCP SYNs per source address (a SYN-flood guard)",
        description: "\
Passes every packet to output 0, except TCP SYNs (SYN set, ACK clear) from a
source that has sent more than its share: each source address (or each
source prefix, see `ipv4_prefix` and `ipv6_prefix`) has a token bucket that
holds up to `burst` SYNs and refills at `rate` SYNs per second. A SYN that
finds the bucket empty is dropped as `syn-flood`. Everything else (SYN-ACKs,
established traffic, UDP, non-IP, malformed frames) passes untouched: the
guard limits connection attempts, not traffic.

The buckets live in a fixed-size table of `table` entries per worker,
allocated when the run starts (4-way set-associative, keyed by a hash seeded
at random per run, so an attacker cannot aim at one set). When a set is full,
the source idle the longest is forgotten; it starts again with a full bucket
the next time it sends a SYN. A flood from more distinct sources than the
table holds therefore degrades to letting some extra SYNs through, never to
blocking legitimate clients. No allocation, lock or system call happens per
packet.

Time: the bucket refills by the runtime's clock (`[runtime] clock`), read
once per burst, so replays with `clock = \"packet\"` are deterministic.

Notes: each worker has its own table; with receive-side scaling a source's
packets reach the same worker, otherwise a source may get up to `workers`
times its rate. The element is built only on hpio-nf's public element API and
ships as a plugin crate (nfs/syn-guard), linked statically or loaded with
`plugins = [\"libhpio_nf_syn_guard.so\"]`.",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Fixed(1),
        params: &[
            ParamSpec {
                name: "rate",
                ty: ParamType::Float,
                need: Need::Default("10"),
                doc: "SYNs per second each source may send, sustained (0.001 to 10000000)",
            },
            ParamSpec {
                name: "burst",
                ty: ParamType::Int {
                    min: 1,
                    max: 1_000_000,
                },
                need: Need::Default("20"),
                doc: "SYNs a source may send at once after being quiet (the bucket's depth)",
            },
            ParamSpec {
                name: "table",
                ty: ParamType::Int {
                    min: 4,
                    max: 1 << 24,
                },
                need: Need::Default("65536"),
                doc: "Sources tracked per worker (rounded up to a power of two; 48 bytes each)",
            },
            ParamSpec {
                name: "ipv4_prefix",
                ty: ParamType::Int { min: 0, max: 32 },
                need: Need::Default("32"),
                doc: "IPv4 sources in the same prefix of this length share one bucket",
            },
            ParamSpec {
                name: "ipv6_prefix",
                ty: ParamType::Int { min: 0, max: 128 },
                need: Need::Default("64"),
                doc: "IPv6 sources in the same prefix of this length share one bucket",
            },
        ],
        drop_reasons: DROP_REASONS,
        counters: COUNTERS,
        handlers: HANDLERS,
        example: "\
[elements.guard]
class = \"SynGuard\"
rate = 5
burst = 10
table = 16384",
        see_also: &["Classify", "Counter"],
    },
    configure,
};

/// What `hpio-nf ctl read|write GUARD ...` can ask (docs/plugins.md).
const HANDLERS: &[HandlerSpec] = &[
    HandlerSpec {
        name: "limits",
        kind: HandlerKind::Read,
        combine: Combine::Same,
        arg: "",
        doc: "The limits in force: `rate` (SYNs per second) and `burst`",
    },
    HandlerSpec {
        name: "limits",
        kind: HandlerKind::Write,
        combine: Combine::Same,
        arg: "RATE [BURST]",
        doc: "Sets new limits at once (sources keep their credit, capped at the new burst)",
    },
    HandlerSpec {
        name: "forget",
        kind: HandlerKind::Write,
        combine: Combine::Sum,
        arg: "",
        doc: "Forgets every source (each starts again with a full bucket); answers `forgotten`",
    },
];

/// Reads `RATE [BURST]` as the `rate` and `burst` parameters are checked.
fn parse_limits(arg: &str, burst_now: u64) -> Result<(u64, u64), String> {
    let mut words = arg.split_whitespace();
    let rate: f64 = match words.next().map(str::parse) {
        Some(Ok(r)) if (0.001..=10_000_000.0).contains(&r) => r,
        _ => {
            return Err(format!(
                "`{arg}`: expected RATE (0.001 to 10000000 SYNs per second) [BURST]"
            ))
        }
    };
    let burst = match words.next().map(str::parse::<u64>) {
        None => burst_now,
        Some(Ok(b)) if (1..=1_000_000).contains(&b) => b,
        Some(_) => {
            return Err(format!(
                "`{arg}`: BURST must be an integer from 1 to 1000000"
            ))
        }
    };
    if words.next().is_some() {
        return Err(format!("`{arg}`: expected RATE [BURST] and nothing more"));
    }
    Ok(((rate * 1000.0).round() as u64, burst))
}

/// Settings checked at config time, shared by every worker's replica.
#[derive(Debug, Clone, Copy)]
struct Settings {
    rate_milli: u64,
    burst: u64,
    table: usize,
    v4_mask: u32,
    v6_mask: u128,
    seed: u64,
}

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let rate = p.float("rate")?;
    if !(0.001..=10_000_000.0).contains(&rate) {
        return Err(ParamError::new(
            "rate",
            format!("{rate} is out of range: expected 0.001 to 10000000 SYNs per second"),
        ));
    }
    let prefix = |name: &str| p.int(name).map(|n| n as u32);
    let (v4, v6) = (prefix("ipv4_prefix")?, prefix("ipv6_prefix")?);
    let s = Settings {
        rate_milli: (rate * 1000.0).round() as u64,
        burst: p.int("burst")? as u64,
        table: p.usize("table")?,
        v4_mask: u32::MAX.checked_shl(32 - v4).unwrap_or(0),
        v6_mask: u128::MAX.checked_shl(128 - v6).unwrap_or(0),
        seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
    };
    log::debug!(
        "SynGuard: {rate} SYN/s, burst {}, {} entries per worker",
        s.burst,
        s.table
    );
    // Each worker allocates its own table when the run starts.
    Ok(Configured::new(Inputs::Fixed(1), 1, move |_worker| {
        Box::new(SynGuard::new(s))
    }))
}

/// The element: one replica per worker, each with its own table.
#[derive(Debug)]
pub struct SynGuard {
    table: Table,
    v4_mask: u32,
    v6_mask: u128,
    syns: u64,
    passed: u64,
}

impl SynGuard {
    fn new(s: Settings) -> SynGuard {
        SynGuard {
            table: Table::new(s.table, s.rate_milli, s.burst, s.seed),
            v4_mask: s.v4_mask,
            v6_mask: s.v6_mask,
            syns: 0,
            passed: 0,
        }
    }

    /// The bucket key of a SYN's source, or `None` when `pkt` is no SYN.
    #[inline]
    fn syn_source(&self, pkt: &mut Packet) -> Option<u128> {
        let h = pkt.headers();
        if h.status != ParseStatus::Ok || !h.has_l4 || h.l4_proto != IPPROTO_TCP {
            return None;
        }
        let d = pkt.data();
        // A complete TCP header lies at l4_off (has_l4 says so).
        let tcp = TcpPacket::at(d, h.l4_off as usize)?;
        if tcp.flags() & (SYN | ACK) != SYN {
            return None;
        }
        let l3 = h.l3_off as usize;
        Some(match h.l3 {
            L3Kind::Ipv4 => {
                let src = u32::from(Ipv4Packet::at(d, l3)?.src_addr());
                // IPv4-mapped, so that v4 and v6 keys never meet.
                (0xffff_u128 << 32) | (src & self.v4_mask) as u128
            }
            L3Kind::Ipv6 => u128::from(Ipv6Packet::at(d, l3)?.src_addr()) & self.v6_mask,
            L3Kind::Other => return None,
        })
    }
}

impl Element for SynGuard {
    fn push(&mut self, cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        let now = cx.now();
        for mut pkt in batch.drain(..) {
            let Some(key) = self.syn_source(&mut pkt) else {
                out.push(0, pkt);
                continue;
            };
            self.syns += 1;
            match self.table.charge(key, now) {
                Verdict::Pass => {
                    self.passed += 1;
                    out.push(0, pkt);
                }
                Verdict::Limit => out.drop(pkt, SYN_FLOOD),
            }
        }
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        report(SYNS, self.syns);
        report(SYNS_PASSED, self.passed);
        report(SOURCES, self.table.used);
        report(EVICTIONS, self.table.evictions);
    }

    fn read(&self, name: &str, _cx: &HandlerCx) -> HandlerResult {
        match name {
            "limits" => {
                let (rate, burst) = self.table.limits();
                Ok(json!({ "rate": rate as f64 / 1000.0, "burst": burst }))
            }
            _ => Err(no_such_handler(name)),
        }
    }

    fn write(&mut self, name: &str, arg: &str, cx: &HandlerCx) -> HandlerResult {
        match name {
            "limits" => {
                let (rate, burst) = parse_limits(arg, self.table.limits().1)?;
                self.table.set_limits(rate, burst);
                self.read("limits", cx)
            }
            "forget" => {
                let n = self.table.used;
                self.table.clear();
                Ok(json!({ "forgotten": n }))
            }
            _ => Err(no_such_handler(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use hpio_nf::config::configure_element;
    use testkit::frame::{Frame, Ip, TCP_ACK, TCP_SYN};

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
    const SEC: u64 = 1_000_000_000;

    fn tcp4(src: [u8; 4], syn: bool, ack: bool) -> Vec<u8> {
        let flags = match (syn, ack) {
            (true, true) => TCP_SYN | TCP_ACK,
            (true, false) => TCP_SYN,
            (false, _) => TCP_ACK,
        };
        Frame::tcp(Ip::v4(src, [192, 0, 2, 1]), 40000, 80, flags)
            .macs(A, B)
            .seq(1, 1, 64240)
            .build()
    }

    fn syn6(src: [u8; 16]) -> Vec<u8> {
        Frame::tcp(Ip::v6(src, [0x20; 16]), 40000, 443, TCP_SYN)
            .macs(A, B)
            .seq(1, 0, 64240)
            .build()
    }

    fn udp4(src: [u8; 4]) -> Vec<u8> {
        Frame::udp(Ip::v4(src, [192, 0, 2, 1]), 5000, 53)
            .macs(A, B)
            .payload(b"q")
            .build()
    }

    /// A replica configured from `params` (TOML lines).
    fn guard(params: &str) -> Box<dyn Element> {
        let mut r = Registry::builtin();
        crate::register(&mut r);
        let c = configure_element(&r, &[], "SynGuard", params).expect("valid params");
        assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(1), 1));
        c.instantiate(0)
    }

    /// Pushes `frames` at time `now`; returns the frames passed and the SYNs dropped.
    fn push(g: &mut dyn Element, now: u64, frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, u64) {
        let mut pool = Pool::new(0);
        let mut cx = Context::new(&mut pool, now, 0);
        let mut out = Output::new(1, CLASS.info.drop_reasons.len());
        let mut b: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
        g.push(&mut cx, 0, &mut b, &mut out);
        assert!(b.is_empty());
        assert_eq!(out.panicked(), None);
        let passed = out.batch(0).iter().map(|p| p.data().to_vec()).collect();
        (passed, out.drops(SYN_FLOOD))
    }

    fn stats(g: &dyn Element) -> Vec<(String, u64)> {
        let mut v = Vec::new();
        g.stats(&mut |k, n| v.push((k.to_string(), n)));
        v
    }

    #[test]
    fn handlers_read_and_change_the_limits_and_forget_sources() {
        let mut g = guard("rate = 1\nburst = 2");
        let cx = HandlerCx::new(0, 0);
        assert_eq!(g.read("limits", &cx), Ok(json!({"rate": 1.0, "burst": 2})));
        let syn = tcp4([198, 51, 100, 1], true, false);
        let three = [syn.clone(), syn.clone(), syn.clone()];
        assert_eq!(
            push(&mut *g, SEC, &three).1,
            1,
            "burst 2: the third is dropped"
        );
        // A deeper bucket applies at once to new credit; forget refills.
        let set = g.write("limits", "0.5 5", &cx);
        assert_eq!(set, Ok(json!({"rate": 0.5, "burst": 5})));
        assert_eq!(g.write("forget", "", &cx), Ok(json!({"forgotten": 1})));
        assert_eq!(push(&mut *g, SEC, &three).1, 0, "a full bucket of 5");
        // Bad arguments say what is expected.
        for bad in ["", "fast", "0", "1 0", "1 2 3"] {
            let e = g.write("limits", bad, &cx).unwrap_err();
            assert!(e.contains("expected") || e.contains("BURST"), "{bad}: {e}");
        }
        assert_eq!(g.read("limits", &cx), Ok(json!({"rate": 0.5, "burst": 5})));
        assert!(g.read("forget", &cx).is_err());
    }

    #[test]
    fn only_syns_are_limited() {
        let mut g = guard("rate = 1\nburst = 1");
        let src = [10, 0, 0, 1];
        let mut truncated = tcp4(src, true, false);
        truncated.truncate(14 + 20 + 8);
        let others = vec![
            tcp4(src, false, true),
            tcp4(src, true, true),
            udp4(src),
            truncated,
            vec![0xff; 60],
        ];
        for _ in 0..3 {
            let (passed, dropped) = push(&mut *g, 0, &others);
            assert_eq!((passed, dropped), (others.clone(), 0));
        }
        let syns = vec![tcp4(src, true, false); 3];
        let (passed, dropped) = push(&mut *g, 0, &syns);
        assert_eq!((passed.len(), dropped), (1, 2));
        assert_eq!(
            stats(&*g),
            [
                ("syns".to_string(), 3),
                ("syns-passed".to_string(), 1),
                ("sources".to_string(), 1),
                ("evictions".to_string(), 0)
            ]
        );
    }

    #[test]
    fn each_source_has_its_bucket_refilled_at_the_rate() {
        let mut g = guard("rate = 2\nburst = 2");
        let a = tcp4([10, 0, 0, 1], true, false);
        let b = tcp4([10, 0, 0, 2], true, false);
        let burst = vec![a.clone(), a.clone(), a.clone(), b.clone(), b.clone()];
        let (passed, dropped) = push(&mut *g, 5 * SEC, &burst);
        assert_eq!(passed, vec![a.clone(), a.clone(), b.clone(), b.clone()]);
        assert_eq!(dropped, 1);
        // 0.5 s at 2 SYN/s: one more each.
        let (passed, dropped) = push(&mut *g, 5 * SEC + SEC / 2, &burst);
        assert_eq!((passed, dropped), (vec![a, b], 3));
    }

    #[test]
    fn prefixes_share_a_bucket() {
        let mut g = guard("rate = 1\nburst = 1\nipv4_prefix = 24");
        let frames = vec![
            tcp4([10, 0, 0, 1], true, false),
            tcp4([10, 0, 0, 99], true, false),
        ];
        assert_eq!(push(&mut *g, 0, &frames).1, 1, "one bucket for 10.0.0.0/24");
        // IPv6: /64 by default.
        let mut x = [0x20; 16];
        let mut y = x;
        x[15] = 1;
        y[15] = 2;
        let (passed, dropped) = push(&mut *g, 0, &[syn6(x), syn6(y)]);
        assert_eq!((passed, dropped), (vec![syn6(x)], 1));
        y[7] ^= 1; // another /64
        assert_eq!(push(&mut *g, 0, &[syn6(y)]).1, 0);
    }

    #[test]
    fn the_table_never_grows() {
        let mut g = guard("rate = 1\nburst = 1\ntable = 4");
        let frames: Vec<Vec<u8>> = (1..=50).map(|i| tcp4([10, 1, 0, i], true, false)).collect();
        let (passed, dropped) = push(&mut *g, 0, &frames);
        assert_eq!((passed.len(), dropped), (50, 0), "new sources start full");
        let s = stats(&*g);
        assert_eq!(s[2], ("sources".to_string(), 4));
        assert_eq!(s[3], ("evictions".to_string(), 46));
    }

    #[test]
    fn parameters_are_checked() {
        let mut r = Registry::builtin();
        crate::register(&mut r);
        configure_element(&r, &[], "SynGuard", CLASS.info.example).expect("the example is valid");
        let e = configure_element(&r, &[], "SynGuard", "rate = 0").unwrap_err();
        assert!(e.to_string().contains("expected 0.001 to 10000000"), "{e}");
        let e = configure_element(&r, &[], "SynGuard", "ipv4_prefix = 33").unwrap_err();
        assert!(e.to_string().contains("ipv4_prefix"), "{e}");
        let e = configure_element(&r, &[], "SynGuard", "tabel = 5").unwrap_err();
        assert!(e.to_string().contains("did you mean `table`"), "{e}");
    }
}
