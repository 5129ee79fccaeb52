//! Generator tests: frames checked with etherparse, flow order, queues, parameters.

use super::*;
use crate::element::Value;
use crate::packet::{Batch, Packet, Pool};
use crate::port::Recv;
use etherparse::{LinkHeader, NetHeaders, PacketHeaders, TransportHeader};

/// Parameters as the config loader gives them: `set` plus every
/// declared default (parsed from its TOML literal, which this checks).
fn params(set: &[(&'static str, Value)]) -> Params {
    let mut p = Params::new();
    for spec in PARAMS {
        if let Need::Default(lit) = spec.need {
            let v = match spec.ty {
                ParamType::Int { .. } => Value::Int(lit.parse().unwrap()),
                ty => {
                    let s = lit.strip_prefix('"').and_then(|l| l.strip_suffix('"'));
                    ty.parse_str(s.expect("a quoted string default")).unwrap()
                }
            };
            p.set(spec.name, v);
        }
    }
    for (k, v) in set {
        p.set(k, v.clone());
    }
    p
}

fn gen(set: &[(&'static str, Value)]) -> GenSpec {
    GenSpec::from_params(&params(set)).unwrap()
}

fn err(set: &[(&'static str, Value)]) -> ParamError {
    (CLASS.configure)(&params(set)).unwrap_err()
}

fn ip(s: &str) -> Value {
    Value::Ip(s.parse().unwrap())
}

/// Receives `n` packets from queue 0 of `spec`, in bursts of 32.
fn take(spec: &GenSpec, n: usize) -> Vec<Packet> {
    let mut port = spec.open("gen", 1, true, false).unwrap();
    let mut pool = Pool::new(n + 64);
    let mut batch = Batch::new();
    while batch.len() < n {
        let want = (n - batch.len()).min(32);
        match port.rx[0].recv(&mut pool, &mut batch, want).unwrap() {
            Recv::Got(k) => assert!(k > 0),
            Recv::Ended => break,
        }
    }
    batch.into_vec()
}

/// The fields of one frame, read and checked by etherparse.
#[derive(Debug, PartialEq)]
struct Seen {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: IpAddr,
    dst_ip: IpAddr,
    src_port: u16,
    dst_port: u16,
}

/// Parses `frame` with etherparse, checks every header against `spec`
/// and every checksum against etherparse's own computation.
fn check(spec: &FrameSpec, frame: &[u8]) -> Seen {
    assert_eq!(frame.len(), spec.size);
    let h = PacketHeaders::from_ethernet_slice(frame).unwrap();
    let Some(LinkHeader::Ethernet2(eth)) = h.link else {
        panic!("no Ethernet header")
    };
    let l4_off = spec.l4_off();
    let l4_len = spec.size - l4_off;
    let (src_ip, dst_ip) = match h.net.as_ref().unwrap() {
        NetHeaders::Ipv4(ip, _) => {
            assert!(!spec.ipv6);
            assert_eq!(ip.total_len as usize, spec.size - 14);
            assert_eq!(ip.time_to_live, 64);
            assert_eq!(ip.header_checksum, ip.calc_header_checksum());
            (IpAddr::from(ip.source), IpAddr::from(ip.destination))
        }
        NetHeaders::Ipv6(ip, _) => {
            assert!(spec.ipv6);
            assert_eq!(ip.payload_length as usize, l4_len);
            assert_eq!(ip.hop_limit, 64);
            (IpAddr::from(ip.source), IpAddr::from(ip.destination))
        }
        other => panic!("unexpected {other:?}"),
    };
    let net = h.net.as_ref().unwrap();
    let (src_port, dst_port, hlen) = match h.transport.as_ref().unwrap() {
        TransportHeader::Udp(u) => {
            assert_eq!(spec.proto, Proto::Udp);
            assert_eq!(u.length as usize, l4_len);
            let payload = &frame[l4_off + 8..];
            let want = match net {
                NetHeaders::Ipv4(ip, _) => u.calc_checksum_ipv4(ip, payload).unwrap(),
                NetHeaders::Ipv6(ip, _) => u.calc_checksum_ipv6(ip, payload).unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(u.checksum, want, "UDP checksum");
            assert_ne!(u.checksum, 0);
            (u.source_port, u.destination_port, 8)
        }
        TransportHeader::Tcp(t) => {
            assert_eq!(spec.proto, Proto::Tcp);
            assert_eq!(t.header_len(), 20);
            assert!(t.ack && !t.syn && !t.fin && !t.rst && !t.psh);
            assert_eq!(t.acknowledgment_number, 1);
            let payload = &frame[l4_off + 20..];
            let want = match net {
                NetHeaders::Ipv4(ip, _) => t.calc_checksum_ipv4(ip, payload).unwrap(),
                NetHeaders::Ipv6(ip, _) => t.calc_checksum_ipv6(ip, payload).unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(t.checksum, want, "TCP checksum");
            (t.source_port, t.destination_port, 20)
        }
        other => panic!("unexpected {other:?}"),
    };
    assert!(
        frame[l4_off + hlen..].iter().all(|&b| b == 0),
        "zero payload"
    );
    Seen {
        src_mac: eth.source,
        dst_mac: eth.destination,
        src_ip,
        dst_ip,
        src_port,
        dst_port,
    }
}

/// MAC address `i` after `base`, computed byte by byte with carries.
fn mac_plus(base: [u8; 6], i: u64) -> [u8; 6] {
    let mut m = base;
    for _ in 0..i {
        for b in m.iter_mut().rev() {
            *b = b.wrapping_add(1);
            if *b != 0 {
                break;
            }
        }
    }
    m
}

/// The flows in the documented order, computed with plain nested loops.
fn expected_flows(spec: &FrameSpec) -> Vec<Seen> {
    let addr = |base: u128, i: u64| -> IpAddr {
        let a = base + u128::from(i);
        if spec.ipv6 {
            IpAddr::from(std::net::Ipv6Addr::from(a))
        } else {
            IpAddr::from(std::net::Ipv4Addr::from(a as u32))
        }
    };
    let mut v = vec![];
    for dm in 0..spec.dst_mac_count {
        for sm in 0..spec.src_mac_count {
            for di in 0..spec.dst_ip_count {
                for si in 0..spec.src_ip_count {
                    for dp in 0..spec.dst_port_count {
                        for sp in 0..spec.src_port_count {
                            v.push(Seen {
                                src_mac: mac_plus(spec.src_mac, sm),
                                dst_mac: mac_plus(spec.dst_mac, dm),
                                src_ip: addr(spec.src_ip, si),
                                dst_ip: addr(spec.dst_ip, di),
                                src_port: (u32::from(spec.src_port) + sp) as u16,
                                dst_port: (u32::from(spec.dst_port) + dp) as u16,
                            });
                        }
                    }
                }
            }
        }
    }
    v
}

#[test]
fn defaults_give_64_byte_udp_ipv4() {
    let g = gen(&[]);
    assert_eq!(g.frame.size, 64);
    assert!(g.endless());
    assert_eq!(g.rx_queues(), 1);
    assert!(g.describe().contains("64-byte UDP/IPv4 frames, 1 flow(s)"));
    let pkts = take(&g, 3);
    assert_eq!(pkts.len(), 3);
    for p in &pkts {
        let seen = check(&g.frame, p.data());
        assert_eq!(seen.src_ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(seen.dst_ip, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!((seen.src_port, seen.dst_port), (1024, 9));
        assert_eq!(seen.src_mac, [2, 0, 0, 0, 0, 1]);
        assert_eq!(seen.dst_mac, [2, 0, 0, 0, 0, 2]);
        assert_eq!(p.wire_len(), 64);
        assert_eq!(p.in_port(), None);
        // Our own parser agrees too.
        let mut p2 = Packet::from_bytes(p.data());
        assert_eq!(p2.headers().status, crate::wire::ParseStatus::Ok);
    }
}

#[test]
fn every_family_and_protocol_with_varied_flows() {
    for proto in ["udp", "tcp"] {
        for (src, dst) in [
            ("192.168.1.250", "10.9.8.7"),
            ("2001:db8::fffe", "fd00::1:0"),
        ] {
            for size in [None, Some(100), Some(2048)] {
                let mut set = vec![
                    ("proto", Value::Str(proto.into())),
                    ("src_ip", ip(src)),
                    ("dst_ip", ip(dst)),
                    ("src_ip_count", Value::Int(3)),
                    ("dst_ip_count", Value::Int(2)),
                    ("src_port", Value::Int(65533)),
                    ("src_port_count", Value::Int(3)),
                    ("dst_port", Value::Int(0)),
                    ("dst_port_count", Value::Int(2)),
                ];
                if let Some(s) = size {
                    set.push(("size", Value::Int(s)));
                }
                let mut g = gen(&set);
                let flows = expected_flows(&g.frame);
                assert_eq!(flows.len(), 36);
                // Both strategies: a table of frames, and patching per packet.
                for table_bytes in [TABLE_BYTES, 0] {
                    g.table_bytes = table_bytes;
                    assert_eq!(g.use_table(), table_bytes > 0);
                    let pkts = take(&g, 2 * flows.len() + 5);
                    for (i, p) in pkts.iter().enumerate() {
                        let seen = check(&g.frame, p.data());
                        assert_eq!(seen, flows[i % flows.len()], "packet {i} of {g:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn mac_ranges_cycle_slowest_in_both_strategies() {
    for (proto, src) in [("udp", "10.0.0.1"), ("tcp", "2001:db8::1")] {
        let mut g = gen(&[
            ("proto", Value::Str(proto.into())),
            ("src_ip", ip(src)),
            // Crosses a byte boundary: ..:00:fe, ..:00:ff, ..:01:00.
            ("src_mac", Value::Mac([0x02, 0, 0, 0, 0, 0xfe])),
            ("src_mac_count", Value::Int(3)),
            ("dst_mac", Value::Mac([0x02, 0xaa, 0, 0, 0, 0x10])),
            ("dst_mac_count", Value::Int(4)),
            ("src_ip_count", Value::Int(2)),
            ("src_port_count", Value::Int(2)),
        ]);
        let flows = expected_flows(&g.frame);
        assert_eq!(flows.len(), 48);
        assert_eq!(g.frame.flows(), 48);
        assert_eq!(flows[4].src_mac, [0x02, 0, 0, 0, 0, 0xff]);
        assert_eq!(flows[8].src_mac, [0x02, 0, 0, 0, 1, 0]);
        assert_eq!(flows[12].dst_mac, [0x02, 0xaa, 0, 0, 0, 0x11]);
        for table_bytes in [TABLE_BYTES, 0] {
            g.table_bytes = table_bytes;
            assert_eq!(g.use_table(), table_bytes > 0);
            let pkts = take(&g, 2 * flows.len() + 7);
            for (i, p) in pkts.iter().enumerate() {
                let seen = check(&g.frame, p.data());
                assert_eq!(seen, flows[i % flows.len()], "packet {i} of {g:?}");
            }
        }
    }
}

#[test]
fn mac_ranges_alone_vary_the_ethernet_header_only() {
    // 16 x 16 MACs, everything else fixed: 256 flows, each MAC pair once.
    let mut g = gen(&[
        ("src_mac_count", Value::Int(16)),
        ("dst_mac", Value::Mac([0x02, 0, 0, 0, 1, 0])),
        ("dst_mac_count", Value::Int(16)),
        ("queues", Value::Int(3)),
    ]);
    assert_eq!(g.frame.flows(), 256);
    assert!(g.describe().contains("256 flow(s)"));
    for table_bytes in [TABLE_BYTES, 0] {
        g.table_bytes = table_bytes;
        let mut port = g.open("gen", 1, true, false).unwrap();
        let mut pool = Pool::new(1024);
        // Each queue cycles through its own share of the flows, in flow
        // order: 85, 85 and 86 of them; together every pair once.
        let mut all = std::collections::HashSet::new();
        for (q, rx) in port.rx.iter_mut().enumerate() {
            let (first, end) = (256 * q as u128 / 3, 256 * (q as u128 + 1) / 3);
            let span = end - first;
            let mut batch = Batch::new();
            while batch.len() < 300 {
                rx.recv(&mut pool, &mut batch, 32).unwrap();
            }
            let mut pairs = std::collections::HashSet::new();
            for (i, p) in batch.iter().enumerate() {
                let seen = check(&g.frame, p.data());
                let f = g.frame.flow(first + i as u128 % span);
                assert_eq!((seen.src_mac, seen.dst_mac), (f.src_mac, f.dst_mac));
                assert_eq!(seen.src_ip, "10.0.0.1".parse::<IpAddr>().unwrap());
                assert_eq!((seen.src_port, seen.dst_port), (1024, 9));
                pairs.insert((seen.src_mac, seen.dst_mac));
            }
            assert_eq!(pairs.len() as u128, span, "queue {q} covers its share");
            assert!(
                pairs.iter().all(|p| all.insert(*p)),
                "queue {q} shares no flow"
            );
            pool.free_batch(&mut batch);
        }
        assert_eq!(all.len(), 256);
    }
}

#[test]
fn default_size_grows_to_the_headers() {
    let g = gen(&[("proto", Value::Str("tcp".into())), ("src_ip", ip("::1"))]);
    assert_eq!(g.frame.size, 74);
    assert_eq!(
        IpAddr::from(g.frame.dst_ip.to_be_bytes()),
        "fd00::2".parse::<IpAddr>().unwrap()
    );
    check(&g.frame, take(&g, 1)[0].data());
    let g = gen(&[("dst_ip", ip("2001:db8::9"))]);
    assert_eq!(g.frame.size, 64);
    assert_eq!(
        IpAddr::from(g.frame.src_ip.to_be_bytes()),
        "fd00::1".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn fragments_carry_their_flags_and_offset_and_new_keys() {
    for (which, offset) in [("first", 0), ("later", frame::LATER_OFFSET)] {
        let g = gen(&[
            ("fragment", Value::Str(which.into())),
            ("src_ip_count", Value::Int(1 << 20)),
        ]);
        let frames = take(&g, 3);
        for (i, p) in frames.iter().enumerate() {
            let h = etherparse::Ipv4HeaderSlice::from_slice(&p.data()[14..]).unwrap();
            assert!(h.more_fragments() && !h.dont_fragment(), "{which}");
            assert_eq!(h.fragments_offset().value(), offset, "{which}");
            assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
            assert_eq!(
                h.source(),
                [10, 0, 0, 1 + i as u8],
                "{which}: a new key each"
            );
        }
    }
    let e = err(&[
        ("fragment", Value::Str("later".into())),
        ("dst_ip", ip("fd00::2")),
    ]);
    assert!(e.to_string().contains("IPv4 only"), "{e}");
}

#[test]
fn tcp_flags_are_written() {
    let g = gen(&[
        ("proto", Value::Str("tcp".into())),
        ("tcp_flags", Value::Str("syn".into())),
    ]);
    let p = &take(&g, 1)[0];
    let h = PacketHeaders::from_ethernet_slice(p.data()).unwrap();
    let Some(TransportHeader::Tcp(t)) = h.transport else {
        panic!()
    };
    assert!(t.syn && !t.ack);
    assert_eq!(t.acknowledgment_number, 0);
}

#[test]
fn udp_checksum_never_zero_over_all_source_ports() {
    // Some port makes the sum 0xffff: it must go out as 0xffff, not 0.
    let mut g = gen(&[
        ("src_port", Value::Int(0)),
        ("src_port_count", Value::Int(65536)),
    ]);
    assert!(!g.use_table());
    let check_all = |g: &GenSpec| {
        let pkts = take(g, 65536);
        let mut saw_ffff = false;
        for (i, p) in pkts.iter().enumerate() {
            let seen = check(&g.frame, p.data());
            assert_eq!(seen.src_port, i as u16);
            saw_ffff |= p.data()[40..42] == [0xff, 0xff];
        }
        assert!(saw_ffff, "the 0xffff case was not exercised");
    };
    check_all(&g);
    g.table_bytes = usize::MAX;
    check_all(&g);
}

#[test]
fn count_is_split_over_queues_then_ended() {
    let g = gen(&[
        ("count", Value::Int(10)),
        ("queues", Value::Int(3)),
        ("src_port_count", Value::Int(6)),
    ]);
    assert!(!g.endless());
    assert_eq!(g.rx_queues(), 3);
    let mut port = g.open("gen", 2, true, false).unwrap();
    assert_eq!(port.rx.len(), 3);
    assert!(port.tx.is_empty());
    let mut pool = Pool::new(64);
    let mut total = 0;
    let mut firsts = vec![];
    for (q, rx) in port.rx.iter_mut().enumerate() {
        let mut batch = Batch::new();
        assert_eq!(rx.recv(&mut pool, &mut batch, 3).unwrap(), Recv::Got(3));
        let more = match rx.recv(&mut pool, &mut batch, 32).unwrap() {
            Recv::Got(n) => n,
            Recv::Ended => 0,
        };
        assert_eq!(3 + more, [4, 3, 3][q]);
        assert_eq!(rx.recv(&mut pool, &mut batch, 32).unwrap(), Recv::Ended);
        assert_eq!(rx.recv(&mut pool, &mut batch, 32).unwrap(), Recv::Ended);
        assert_eq!(rx.stats().packets, batch.len() as u64);
        assert_eq!(rx.stats().bytes, 64 * batch.len() as u64);
        total += batch.len();
        firsts.push(check(&g.frame, batch[0].data()).src_port);
        pool.free_batch(&mut batch);
    }
    assert_eq!(total, 10);
    // Queues start at different flows: 6 flows over 3 queues.
    assert_eq!(firsts, [1024, 1026, 1028]);
}

#[test]
fn endless_never_ends_and_count_zero_ends_at_once() {
    let g = gen(&[]);
    let mut port = g.open("gen", 1, true, false).unwrap();
    let mut pool = Pool::new(64);
    let mut batch = Batch::new();
    for _ in 0..1000 {
        assert_eq!(
            port.rx[0].recv(&mut pool, &mut batch, 32).unwrap(),
            Recv::Got(32)
        );
        pool.free_batch(&mut batch);
    }
    let g = gen(&[("count", Value::Int(0))]);
    let mut port = g.open("gen", 1, true, false).unwrap();
    assert_eq!(
        port.rx[0].recv(&mut pool, &mut batch, 32).unwrap(),
        Recv::Ended
    );
}

#[test]
fn empty_pool_stops_the_burst_and_loses_nothing() {
    for table_bytes in [TABLE_BYTES, 0] {
        let mut g = gen(&[("count", Value::Int(7)), ("src_port_count", Value::Int(7))]);
        g.table_bytes = table_bytes;
        let mut port = g.open("gen", 1, true, false).unwrap();
        let rx = &mut port.rx[0];
        let mut pool = Pool::new(5);
        let mut batch = Batch::new();
        assert_eq!(rx.recv(&mut pool, &mut batch, 32).unwrap(), Recv::Got(5));
        assert_eq!(rx.recv(&mut pool, &mut batch, 32).unwrap(), Recv::Got(0));
        let ports: Vec<u16> = batch
            .iter()
            .map(|p| check(&g.frame, p.data()).src_port)
            .collect();
        pool.free_batch(&mut batch);
        assert_eq!(rx.recv(&mut pool, &mut batch, 32).unwrap(), Recv::Got(2));
        let rest: Vec<u16> = batch
            .iter()
            .map(|p| check(&g.frame, p.data()).src_port)
            .collect();
        assert_eq!([ports, rest].concat(), (1024..1031).collect::<Vec<u16>>());
        assert_eq!(rx.recv(&mut pool, &mut batch, 32).unwrap(), Recv::Ended);
        assert_eq!(rx.stats().packets, 7);
    }
}

#[test]
fn one_timestamp_per_burst_from_the_wall_clock() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let pkts = take(&gen(&[]), 32);
    assert!(pkts.iter().all(|p| p.timestamp() == pkts[0].timestamp()));
    assert!(pkts[0].timestamp() >= before);
}

#[test]
fn transmit_side_counts_and_frees() {
    let g = gen(&[]);
    let mut port = g.open("gen", 2, false, true).unwrap();
    assert!(port.rx.is_empty());
    assert_eq!(port.tx.len(), 2);
    let mut pool = Pool::new(4);
    let mut batch: Batch = (0..3).map(|_| pool.alloc().unwrap()).collect();
    for p in batch.iter_mut() {
        p.set_frame(&[0; 60]);
    }
    port.tx[1].send(&mut pool, &mut batch).unwrap();
    assert!(batch.is_empty());
    assert_eq!(pool.available(), 4);
    assert_eq!(port.tx[1].stats().packets, 3);
    assert_eq!(port.tx[1].stats().bytes, 180);
}

#[test]
fn bad_parameters_are_explained() {
    let e = err(&[("src_ip", ip("10.0.0.1")), ("dst_ip", ip("::1"))]);
    assert_eq!(e.param, "dst_ip");
    assert!(e.message.contains("different families"), "{e}");

    for (proto, src, size, min) in [
        ("udp", "10.0.0.1", 41, 42),
        ("tcp", "10.0.0.1", 53, 54),
        ("udp", "::1", 61, 62),
        ("tcp", "::1", 73, 74),
    ] {
        let e = err(&[
            ("proto", Value::Str(proto.into())),
            ("src_ip", ip(src)),
            ("size", Value::Int(size)),
        ]);
        assert_eq!(e.param, "size");
        assert!(
            e.message.contains(&format!("takes {min}..=65535 bytes")),
            "{e}"
        );
        assert!(e.message.contains(&format!("got {size}")), "{e}");
    }
    let e = err(&[("size", Value::Int(65536))]);
    assert_eq!(e.param, "size");

    let e = err(&[
        ("src_port", Value::Int(65000)),
        ("src_port_count", Value::Int(537)),
    ]);
    assert_eq!(e.param, "src_port_count");
    assert!(e.message.contains("run past port 65535"), "{e}");
    // Exactly up to 65535 is fine.
    gen(&[
        ("src_port", Value::Int(65000)),
        ("src_port_count", Value::Int(536)),
    ]);

    let e = err(&[
        ("dst_ip", ip("255.255.255.250")),
        ("dst_ip_count", Value::Int(7)),
    ]);
    assert_eq!(e.param, "dst_ip_count");
    assert!(
        e.message.contains("past the end of the IPv4 address space"),
        "{e}"
    );
    gen(&[
        ("dst_ip", ip("255.255.255.250")),
        ("dst_ip_count", Value::Int(6)),
    ]);

    let e = err(&[
        ("proto", Value::Str("tcp".into())),
        ("tcp_flags", Value::Str("syn,fyn".into())),
    ]);
    assert_eq!(e.param, "tcp_flags");
    assert!(e.message.contains("unknown TCP flag `fyn`"), "{e}");

    let e = err(&[
        ("src_mac", Value::Mac([0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])),
        ("src_mac_count", Value::Int(3)),
    ]);
    assert_eq!(e.param, "src_mac_count");
    assert!(
        e.message
            .contains("3 MAC addresses from ff:ff:ff:ff:ff:fe run past ff:ff:ff:ff:ff:ff"),
        "{e}"
    );
    gen(&[
        ("src_mac", Value::Mac([0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])),
        ("src_mac_count", Value::Int(2)),
    ]);
    let e = err(&[("dst_mac_count", Value::Int(0))]);
    assert_eq!(e.param, "dst_mac_count");
    // 2^96 port and address combinations times 2^64 MAC pairs: too many flows.
    let e = err(&[
        ("src_ip", ip("::")),
        ("dst_ip", ip("::")),
        ("src_ip_count", Value::Int(u32::MAX as i64)),
        ("dst_ip_count", Value::Int(u32::MAX as i64)),
        ("src_port", Value::Int(0)),
        ("dst_port", Value::Int(0)),
        ("src_port_count", Value::Int(65536)),
        ("dst_port_count", Value::Int(65536)),
        ("src_mac_count", Value::Int(u32::MAX as i64)),
        ("dst_mac_count", Value::Int(u32::MAX as i64)),
    ]);
    assert_eq!(e.param, "dst_mac_count");
    assert!(e.message.contains("exceed 2^128 flows"), "{e}");

    let e = err(&[("queues", Value::Int(0))]);
    assert_eq!(e.param, "queues");
    let e = err(&[("count", Value::Int(-1))]);
    assert_eq!(e.param, "count");
}

#[test]
fn large_flow_counts_stay_exact() {
    // 2^32 x 2^32 x 2^16 x 2^16 flows: far beyond any table; the
    // patched frames still follow the documented order.
    let g = gen(&[
        ("src_ip", ip("0.0.0.0")),
        ("dst_ip", ip("0.0.0.0")),
        ("src_ip_count", Value::Int(u32::MAX as i64)),
        ("dst_ip_count", Value::Int(u32::MAX as i64)),
        ("src_port", Value::Int(0)),
        ("dst_port", Value::Int(0)),
        ("src_port_count", Value::Int(65536)),
        ("dst_port_count", Value::Int(2)),
        ("queues", Value::Int(4)),
    ]);
    assert!(!g.use_table());
    let mut port = g.open("gen", 1, true, false).unwrap();
    let mut pool = Pool::new(256);
    let mut batch = Batch::new();
    // Queue 1 starts at flow F/4: src_ip 0x40000000 - ish; check it
    // against the spec's own flow numbering and etherparse.
    let first = g.frame.flows() / 4;
    port.rx[1].recv(&mut pool, &mut batch, 64).unwrap();
    for (i, p) in batch.iter().enumerate() {
        let f = g.frame.flow(first + i as u128);
        let seen = check(&g.frame, p.data());
        assert_eq!(seen.src_port, f.src_port);
        assert_eq!(seen.dst_port, f.dst_port);
        assert_eq!((seen.src_mac, seen.dst_mac), (f.src_mac, f.dst_mac));
        assert_eq!(
            seen.src_ip,
            IpAddr::from(std::net::Ipv4Addr::from(f.src_ip as u32))
        );
        assert_eq!(
            seen.dst_ip,
            IpAddr::from(std::net::Ipv4Addr::from(f.dst_ip as u32))
        );
    }
}

#[test]
fn config_loader_defaults_and_a_run_into_a_pcap_file() {
    use crate::config::Config;

    use crate::runtime::{run, RunOptions};

    let out = std::env::temp_dir().join(format!("hpio-nf-gen-run-{}.pcap", std::process::id()));
    let text = format!(
        "connections = [\"gen -> out\"]\n\
         [ports.gen]\ndriver = \"generator\"\ncount = 12\nqueues = 2\nproto = \"tcp\"\n\
         src_ip = \"2001:db8::1\"\nsrc_port_count = 4\n\
         [ports.out]\ndriver = \"pcap\"\noutput = \"{}\"\n",
        out.display()
    );
    let cfg = Config::parse_builtin(&text, "t.toml").unwrap();
    let desc = cfg.ports[0].spec.describe();
    assert!(desc.contains("74-byte TCP/IPv6 frames, 4 flow(s), 2 queue(s), 12 packets"));
    let opened = cfg
        .ports
        .iter()
        .map(|p| p.spec.open(&p.name, 2, p.rx_used, p.tx_used).unwrap())
        .collect();
    let opts = RunOptions {
        workers: 2,
        ..RunOptions::default()
    };
    let report = run(&cfg.graph, opened, &opts, |_| {}).unwrap();
    assert_eq!(report.ports[0].rx.packets, 12);
    assert_eq!(report.ports[1].tx.packets, 12);
    let got = crate::port::pcap::tests::read_all(&out.display().to_string()).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(got.len(), 12);
    // The loader filled the defaults: dst_ip fd00::2, ports 1024.. -> 9, ack.
    let g = gen(&[
        ("proto", Value::Str("tcp".into())),
        ("src_ip", ip("2001:db8::1")),
        ("src_port_count", Value::Int(4)),
    ]);
    let mut ports: Vec<u16> = got
        .iter()
        .map(|p| {
            let seen = check(&g.frame, p.data());
            assert_eq!(seen.dst_ip, "fd00::2".parse::<IpAddr>().unwrap());
            assert_eq!(seen.dst_port, 9);
            seen.src_port
        })
        .collect();
    ports.sort_unstable();
    // Queue 0 sends flows 0,1,2,3,0,1 and queue 1 (starting 2 flows on)
    // 2,3,0,1,2,3: each port three times.
    assert_eq!(
        ports,
        [1024, 1024, 1024, 1025, 1025, 1025, 1026, 1026, 1026, 1027, 1027, 1027]
    );
}

/// A jumbo-sized generator asks for slots that hold its frames, fills them
/// whole and checksummed, and counts a burst into too-small slots as
/// `oversize` instead of cutting it (both queue kinds: table and patch).
#[test]
fn jumbo_frames_fit_their_slots_or_count_as_oversize() {
    for flows in [1i64, 5000] {
        let g = gen(&[
            ("size", Value::Int(9000)),
            ("count", Value::Int(40)),
            ("src_port_count", Value::Int(flows)),
        ]);
        let mut port = g.open("gen", 1, true, false).unwrap();
        assert_eq!(port.max_frame, 9024, "whole 64-byte copy blocks");
        let mut pool = Pool::with_max_frame(64, port.max_frame);
        let mut batch = Batch::new();
        assert_eq!(
            port.rx[0].recv(&mut pool, &mut batch, 8).unwrap(),
            Recv::Got(8)
        );
        for p in &batch {
            check(&g.frame, p.data());
        }
        pool.free_batch(&mut batch);
        // Slots of the default size: the burst is dropped and counted.
        let mut small = Pool::new(64);
        assert_eq!(
            port.rx[0].recv(&mut small, &mut batch, 8).unwrap(),
            Recv::Got(0)
        );
        assert!(batch.is_empty());
        let s = port.rx[0].stats();
        assert_eq!((s.packets, s.drops, s.oversize), (8, 8, 8), "flows {flows}");
        assert_eq!(small.available(), 64);
    }
}

/// Each worker writes its own queues every burst: no two queues (receive,
/// table or patched, and transmit) may share a cache line.
#[test]
fn queues_do_not_share_cache_lines() {
    for flows in [1, 60_000] {
        let g = gen(&[
            ("queues", Value::Int(4)),
            ("src_port", Value::Int(1)),
            ("src_port_count", Value::Int(flows)),
            ("dst_port_count", Value::Int(1 + flows / 1000)),
        ]);
        let port = g.open("gen", 4, true, true).unwrap();
        // The cache lines each queue's state lies on: [first, last].
        let span = |p: *const u8, size: usize| (p as usize / 64, (p as usize + size - 1) / 64);
        let mut spans: Vec<(usize, usize)> = port
            .rx
            .iter()
            .map(|q| span(&**q as *const dyn RxQueue as *const u8, size_of_val(&**q)))
            .chain(
                port.tx
                    .iter()
                    .map(|q| span(&**q as *const dyn TxQueue as *const u8, size_of_val(&**q))),
            )
            .collect();
        spans.sort();
        for w in spans.windows(2) {
            assert!(
                w[0].1 < w[1].0,
                "{flows} flows: queues share a line: {spans:?}"
            );
        }
    }
}

#[test]
fn queues_split_scattered_destinations_and_restart_their_share_mid_burst() {
    // Step 3 over 7 addresses (0, 3, 6, 2, 5, 1, 4), two queues: queue 0
    // sends flows 0..3 (0, 3, 6) and queue 1 flows 3..7 (2, 5, 1, 4),
    // each over and over; bursts of 5 end nowhere near a share's end.
    let mut g = gen(&[
        ("dst_ip", ip("10.9.0.0")),
        ("dst_ip_count", Value::Int(7)),
        ("dst_ip_step", Value::Int(3)),
        ("queues", Value::Int(2)),
    ]);
    let want: [&[u8]; 2] = [&[0, 3, 6], &[2, 5, 1, 4]];
    for table_bytes in [TABLE_BYTES, 0] {
        g.table_bytes = table_bytes;
        let mut port = g.open("gen", 2, true, false).unwrap();
        let mut pool = Pool::new(64);
        for (q, rx) in port.rx.iter_mut().enumerate() {
            let mut batch = Batch::new();
            for _ in 0..4 {
                assert_eq!(rx.recv(&mut pool, &mut batch, 5).unwrap(), Recv::Got(5));
            }
            for (i, p) in batch.iter().enumerate() {
                let seen = check(&g.frame, p.data());
                let k = want[q][i % want[q].len()];
                assert_eq!(
                    seen.dst_ip,
                    IpAddr::from([10, 9, 0, k]),
                    "queue {q} packet {i}"
                );
            }
            pool.free_batch(&mut batch);
        }
    }
}

#[test]
fn flow_shares_cover_every_flow_once() {
    for (flows, queues) in [(6u128, 3usize), (7, 2), (1, 2), (3, 4), (u128::MAX, 3)] {
        let shares: Vec<_> = (0..queues).map(|q| flow_share(flows, q, queues)).collect();
        for (q, s) in shares.iter().enumerate() {
            assert!(
                s.start < s.end && s.end <= flows,
                "{flows} over {queues}: {q} {s:?}"
            );
        }
        if flows >= queues as u128 {
            assert_eq!(shares[0].start, 0);
            assert_eq!(shares[queues - 1].end, flows);
            for w in shares.windows(2) {
                assert_eq!(w[0].end, w[1].start, "{flows} over {queues}");
            }
        } else {
            // Fewer flows than queues: each queue sends one flow.
            for (q, s) in shares.iter().enumerate() {
                assert_eq!(s.end - s.start, 1);
                assert_eq!(s.start, flows * q as u128 / queues as u128);
            }
        }
    }
}

#[test]
fn scattered_destinations_visit_every_address_in_both_strategies() {
    // IPv4, step 3 over 7 addresses: indices 0, 3, 6, 2, 5, 1, 4.
    let mut g = gen(&[
        ("dst_ip", ip("10.9.0.0")),
        ("dst_ip_count", Value::Int(7)),
        ("dst_ip_step", Value::Int(3)),
    ]);
    let want: Vec<IpAddr> = [0u8, 3, 6, 2, 5, 1, 4]
        .iter()
        .map(|&k| IpAddr::from([10, 9, 0, k]))
        .collect();
    // IPv6, index at bit 64: one address in each of 5 /64 networks.
    let mut g6 = gen(&[
        ("src_ip", ip("2001:db8::1")),
        ("dst_ip", ip("2001:db8::")),
        ("dst_ip_count", Value::Int(5)),
        ("dst_ip_step", Value::Int(2)),
        ("dst_ip_shift", Value::Int(64)),
    ]);
    let want6: Vec<IpAddr> = [0u16, 2, 4, 1, 3]
        .iter()
        .map(|&k| IpAddr::from([0x2001, 0xdb8, 0, k, 0, 0, 0, 0]))
        .collect();
    for (g, want) in [(&mut g, want), (&mut g6, want6)] {
        for table_bytes in [TABLE_BYTES, 0] {
            g.table_bytes = table_bytes;
            let pkts = take(g, 2 * want.len() + 1);
            for (i, p) in pkts.iter().enumerate() {
                let seen = check(&g.frame, p.data());
                assert_eq!(seen.dst_ip, want[i % want.len()], "packet {i} of {g:?}");
            }
        }
    }
    let e = err(&[
        ("dst_ip_count", Value::Int(6)),
        ("dst_ip_step", Value::Int(4)),
    ]);
    assert_eq!(e.param, "dst_ip_step");
    assert!(e.message.contains("shares a factor"), "{e}");
    let e = err(&[
        ("dst_ip_count", Value::Int(8)),
        ("dst_ip_shift", Value::Int(30)),
    ]);
    assert_eq!(e.param, "dst_ip_shift");
    let e = err(&[
        ("dst_ip", ip("255.0.0.0")),
        ("dst_ip_count", Value::Int(2)),
        ("dst_ip_shift", Value::Int(24)),
    ]);
    assert!(e.message.contains("past the end"), "{e}");
}

/// Only the destination changes per packet (the route lookup benchmark's
/// traffic): the patching queues take a loop of their own that writes the
/// destination and both checksums into each frame. Its frames must be those
/// of the table strategy byte for byte, for every queue (each starting at
/// its own flow), across the wrap of the destinations into the next MAC
/// addresses, for UDP and TCP.
#[test]
fn destination_only_patching_matches_the_table_byte_for_byte() {
    for proto in ["udp", "tcp"] {
        let mut g = gen(&[
            ("proto", Value::Str(proto.into())),
            ("dst_ip", ip("192.0.2.0")),
            ("dst_ip_count", Value::Int(11)),
            ("dst_ip_step", Value::Int(7)),
            ("dst_ip_shift", Value::Int(4)),
            ("src_mac_count", Value::Int(3)),
            ("dst_mac_count", Value::Int(2)),
            ("queues", Value::Int(3)),
        ]);
        let n = 3 * 66 + 5;
        let frames = |g: &GenSpec| -> Vec<Vec<Vec<u8>>> {
            let mut port = g.open("gen", 3, true, false).unwrap();
            let mut pool = Pool::new(3 * n + 64);
            (0..3)
                .map(|q| {
                    let mut batch = Batch::new();
                    while batch.len() < n {
                        let want = (n - batch.len()).min(32);
                        match port.rx[q].recv(&mut pool, &mut batch, want).unwrap() {
                            Recv::Got(k) => assert!(k > 0),
                            Recv::Ended => break,
                        }
                    }
                    batch.iter().map(|p| p.data().to_vec()).collect()
                })
                .collect()
        };
        g.table_bytes = TABLE_BYTES;
        assert!(g.use_table());
        let table = frames(&g);
        g.table_bytes = 0;
        let patched = frames(&g);
        assert_eq!(patched[0].len(), n);
        for (q, (t, p)) in table.iter().zip(&patched).enumerate() {
            for (i, (t, p)) in t.iter().zip(p).enumerate() {
                assert_eq!(p, t, "{proto}, queue {q}, packet {i}");
                check(&g.frame, p);
            }
        }
    }
}
