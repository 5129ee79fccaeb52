//! Taps and traces on a graph replica.

use std::sync::{mpsc, Arc};

use super::*;
use crate::config::{configure_element, parse_edge};
use crate::element::Registry;
use crate::elements::classify::Filter;
use crate::packet::{Packet, Pool};
use testkit::frame::{Frame, Ip};

/// in -> acl; acl[0] (udp) -> a, acl[1] (the rest) -> b; acl drops
/// ICMP (`no-match` when `default` is left out).
fn graph(rules: &str) -> Graph {
    let ports: Vec<String> = ["in", "a", "b"].map(String::from).to_vec();
    let configured = configure_element(&Registry::builtin(), &ports, "Classify", rules)
        .expect("classify configures");
    let class = Registry::builtin().get("Classify").expect("built in").info;
    let spec = GraphSpec {
        nodes: vec![NodeSpec {
            name: "acl".into(),
            class,
            configured,
            outputs: vec![Target::Port(1), Target::Port(2)],
        }],
        ports,
        sources: vec![Some(Target::Element { node: 0, input: 0 }), None, None],
    };
    Graph::new(&spec, 0)
}

const RULES: &str = "rules = [\"udp -> 0\", \"tcp -> 1\"]";

fn frame(proto: &str, n: u8) -> Packet {
    let ip = Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]);
    let f = match proto {
        "udp" => Frame::udp(ip, 1000 + n as u16, 53),
        "tcp" => Frame::tcp(ip, 2000 + n as u16, 80, 0),
        _ => Frame::echo(ip, 1, n as u16),
    };
    let v = f.payload(&[n; 8]).build();
    Packet::from_bytes(&v)
}

fn batch(protos: &[&str]) -> Batch {
    protos
        .iter()
        .enumerate()
        .map(|(i, p)| frame(p, i as u8))
        .collect()
}

/// The last payload byte of each copy (the frame's number in its batch).
fn drain(tap: &TapShared) -> Vec<u8> {
    std::iter::from_fn(|| tap.pop())
        .map(|c| *c.data.last().unwrap())
        .collect()
}

fn tap_on(
    g: &mut Graph,
    edge: &str,
    cap: usize,
    limit: Option<u64>,
    f: Option<&str>,
) -> Arc<TapShared> {
    let id = g.resolve(&parse_edge(edge).unwrap()).unwrap();
    let filter = f.map(|f| Filter::parse(f).unwrap());
    let tap = Arc::new(TapShared::new(cap, limit, filter));
    g.add_tap(1, id, tap.clone());
    tap
}

#[test]
fn a_tap_copies_exactly_the_packets_of_its_edge() {
    let mut pool = Pool::new(64);
    let mut cx = Context::new(&mut pool, 0, 0);
    let mut g = graph(RULES);
    let udp = tap_on(&mut g, "acl[0] -> a", 64, None, None);
    let b_tx = Arc::new(TapShared::new(64, None, None));
    g.add_tap(2, EdgeId::Tx(2), b_tx.clone());
    let rx = Arc::new(TapShared::new(64, None, None));
    g.add_tap(3, EdgeId::Rx(0), rx.clone());
    g.push_from_port(&mut cx, 0, &mut batch(&["udp", "tcp", "udp", "tcp", "tcp"]));
    assert_eq!(drain(&udp), [0, 2]);
    assert_eq!(drain(&b_tx), [1, 3, 4]);
    assert_eq!(drain(&rx), [0, 1, 2, 3, 4]);
    assert_eq!((g.tx_batch(1).len(), g.tx_batch(2).len()), (2, 3));
    // The copy is the frame as it crossed, with a wall-clock time.
    g.push_from_port(&mut cx, 0, &mut batch(&["udp"]));
    let c = udp.pop().unwrap();
    assert_eq!(c.data, frame("udp", 0).data());
    assert!(c.time_ns > 1_700_000_000_000_000_000, "{}", c.time_ns);
    assert_eq!(drain(&rx), [0]);
    // Removed: no copies, and the graph is back on its plain path.
    for id in 1..=3 {
        g.remove_tap(id);
    }
    assert!(!g.watching);
    g.push_from_port(&mut cx, 0, &mut batch(&["udp", "tcp"]));
    assert_eq!(
        (drain(&udp), drain(&b_tx), drain(&rx)),
        (vec![], vec![], vec![])
    );
}

#[test]
fn a_filter_selects_and_a_count_ends_the_tap() {
    let mut pool = Pool::new(64);
    let mut cx = Context::new(&mut pool, 0, 0);
    let mut g = graph(RULES);
    let tcp = tap_on(&mut g, "in", 64, Some(3), Some("tcp and dst port 80"));
    g.push_from_port(&mut cx, 0, &mut batch(&["udp", "tcp", "udp", "tcp"]));
    assert_eq!(drain(&tcp), [1, 3]);
    g.push_from_port(&mut cx, 0, &mut batch(&["tcp", "tcp", "tcp"]));
    assert_eq!(drain(&tcp), [0], "three copies in all");
    assert!(tcp.done() && !g.watching, "a tap that is done is removed");
}

#[test]
fn a_full_queue_loses_copies_and_counts_them_never_packets() {
    let mut pool = Pool::new(128);
    let mut cx = Context::new(&mut pool, 0, 0);
    let mut g = graph(RULES);
    let tap = tap_on(&mut g, "-> a", 2, None, None);
    for _ in 0..5 {
        g.push_from_port(&mut cx, 0, &mut batch(&["udp"; 10]));
        let sent = g.tx_batch(1).len();
        assert_eq!(sent, 10, "every packet goes on");
        cx.pool.free_batch(g.tx_batch(1));
    }
    assert_eq!((tap.queued(), tap.lost()), (2, 48));
    // Read copies make room again, and their buffers are reused.
    let c = tap.pop().unwrap();
    tap.recycle(c);
    g.push_from_port(&mut cx, 0, &mut batch(&["udp"]));
    assert_eq!((tap.queued(), tap.lost()), (3, 48));
}

#[test]
fn a_trace_records_each_hop_the_rule_and_the_drop_reason() {
    let mut pool = Pool::new(64);
    let mut cx = Context::new(&mut pool, 0, 0);
    let mut g = graph(RULES);
    let (tx, rx) = mpsc::channel();
    let trace = Arc::new(TraceShared::new(3, Some(Filter::parse("ip4").unwrap())));
    g.arm_trace(7, trace.clone(), tx.clone()).unwrap();
    assert!(
        g.arm_trace(8, trace.clone(), tx.clone()).is_err(),
        "one at a time"
    );
    g.push_from_port(&mut cx, 0, &mut batch(&["tcp", "udp", "icmp", "udp"]));
    let r: Vec<TraceRecord> = rx.try_iter().collect();
    assert_eq!(r.len(), 3);
    assert!(trace.done() && !g.watching, "disarmed once done");
    let hop = |r: &TraceRecord| r.hops.clone();
    let out = |o: usize, to: &str| {
        vec![HopOutput {
            output: o,
            to: to.into(),
        }]
    };
    let acl = |notes: &str, outputs, dropped: &[&str]| Hop::Element {
        element: "acl".into(),
        class: "Classify".into(),
        input: 0,
        notes: vec![notes.into()],
        outputs,
        dropped: dropped.iter().map(|d| d.to_string()).collect(),
        held: false,
        consumed: false,
    };
    let sent = |p: &str| Hop::Sent { port: p.into() };
    assert_eq!((r[0].packet, r[0].port.as_str()), (1, "in"));
    assert!(r[0].summary.contains("TCP"), "{}", r[0].summary);
    assert_eq!(
        hop(&r[0]),
        [acl("rule 1: tcp -> 1", out(1, "b"), &[]), sent("b")]
    );
    assert_eq!(
        hop(&r[1]),
        [acl("rule 0: udp -> 0", out(0, "a"), &[]), sent("a")]
    );
    assert_eq!(hop(&r[2]), [acl("default", vec![], &["no-match"])]);
    let text = r[2].to_string();
    assert!(
        text.contains("  [0]acl (Classify)\n      default\n    -> dropped: no-match"),
        "{text}"
    );
    // The traced packets went where the others went, in order.
    assert_eq!((g.tx_batch(1).len(), g.tx_batch(2).len()), (2, 1));
    let firsts: Vec<u8> = g
        .tx_batch(1)
        .iter()
        .map(|p| *p.data().last().unwrap())
        .collect();
    assert_eq!(firsts, [1, 3]);
}

#[test]
fn edges_that_do_not_exist_are_named() {
    let g = graph(RULES);
    let err = |s: &str| g.resolve(&parse_edge(s).unwrap()).unwrap_err();
    assert_eq!(
        err("acx[0]"),
        "no element or port `acx` (did you mean `acl`?)"
    );
    assert_eq!(
        err("acl[5]"),
        "element `acl` has no output 5 (it has 2: 0..=1)"
    );
    assert!(err("acl").contains("has 2 outputs: name one, `acl[0]` to `acl[1]`"));
    assert_eq!(err("acl[0] -> b"), "`acl[0]` goes to `a`, not to `b`");
    assert!(err("a").contains("port `a` receives nothing into the graph"));
    assert!(err("-> acl").contains("is an element's input"));
    assert_eq!(
        g.edge_name(g.resolve(&parse_edge("acl[1]").unwrap()).unwrap()),
        "acl[1] -> b"
    );
    assert_eq!(
        g.edge_name(g.resolve(&parse_edge("in -> acl").unwrap()).unwrap()),
        "in rx"
    );
}

/// The cost of a tap: ns per packet through `in -> acl -> a` with no tap,
/// then with a tap on `acl[0]` that copies every packet (drained by the
/// same thread after each batch, as a reader that keeps up would).
/// `cargo test --release -p hpio-nf --lib tap_cost -- --ignored --nocapture`
#[test]
#[ignore]
fn tap_cost() {
    const BATCHES: usize = 60_000;
    let mut pool = Pool::new(256);
    let mut g = graph(RULES);
    let template = frame("udp", 1);
    let mut run = |g: &mut Graph, tap: Option<&TapShared>| {
        let mut cx = Context::new(&mut pool, 0, 0);
        let start = std::time::Instant::now();
        for _ in 0..BATCHES {
            let mut b: Batch = (0..32)
                .map(|_| {
                    let mut p = cx.alloc().unwrap();
                    p.set_frame(template.data());
                    p
                })
                .collect();
            g.push_from_port(&mut cx, 0, &mut b);
            cx.pool.free_batch(g.tx_batch(1));
            if let Some(t) = tap {
                while let Some(c) = t.pop() {
                    t.recycle(c);
                }
            }
        }
        start.elapsed().as_nanos() as f64 / (BATCHES * 32) as f64
    };
    // TAP_COST=off or on: one run of that kind only (for callgrind).
    let only = std::env::var("TAP_COST").ok();
    let runs = if only.is_some() { 1 } else { 5 };
    let best = |f: &mut dyn FnMut() -> f64| (0..runs).map(|_| f()).fold(f64::MAX, f64::min);
    if only.as_deref() != Some("on") {
        let off = best(&mut || run(&mut g, None));
        println!("ns per packet, no tap: {off:.1}");
    }
    if only.as_deref() != Some("off") {
        let tap = tap_on(&mut g, "acl[0]", 4096, None, None);
        let on = best(&mut || run(&mut g, Some(&tap)));
        assert_eq!(tap.lost(), 0);
        println!("ns per packet, a tap on acl[0] copying every packet: {on:.1}");
    }
}

/// lan -> arpq (ArpQuerier for 192.0.2.2) -> wan.
fn querier_graph() -> Graph {
    let ports: Vec<String> = ["lan", "wan"].map(String::from).to_vec();
    let toml = "ipv4 = \"192.0.2.2\"\nmac = \"02:00:00:00:02:01\"";
    let configured = configure_element(&Registry::builtin(), &ports, "ArpQuerier", toml)
        .expect("the querier configures");
    let spec = GraphSpec {
        nodes: vec![NodeSpec {
            name: "arpq".into(),
            class: Registry::builtin()
                .get("ArpQuerier")
                .expect("built in")
                .info,
            configured,
            outputs: vec![Target::Port(1)],
        }],
        ports,
        sources: vec![Some(Target::Element { node: 0, input: 0 }), None],
    };
    Graph::new(&spec, 0)
}

#[test]
fn what_a_timer_sends_is_counted_tapped_and_traced_like_a_push() {
    use testkit::frame::ARP_REQUEST;
    let mut pool = Pool::new(64);
    let mut g = querier_graph();
    g.run_timers(&mut Context::new(&mut pool, 0, 0));
    // A datagram for an unknown neighbour: held; the push asks once.
    let mut cx = Context::new(&mut pool, 0, 0);
    let udp = Frame::udp(Ip::v4([192, 0, 2, 7], [192, 0, 2, 9]), 1, 2).build();
    let mut b: Batch = [Packet::from_bytes(&udp)].into_iter().collect();
    g.push_from_port(&mut cx, 0, &mut b);
    let request = Frame::arp(
        ARP_REQUEST,
        ([2, 0, 0, 0, 2, 1], [192, 0, 2, 2]),
        ([0; 6], [192, 0, 2, 9]),
    )
    .pad(60)
    .build();
    assert_eq!(g.tx_batch(1).len(), 1, "the first request, from push");
    assert_eq!(g.tx_batch(1)[0].data(), &request[..]);
    cx.pool.free_batch(g.tx_batch(1));

    // Now watched: the retry, sent by the timer, is seen on its edge.
    let tap = tap_on(&mut g, "arpq -> wan", 8, None, None);
    let (tx, rx) = mpsc::channel();
    let trace = Arc::new(TraceShared::new(1, Some(Filter::parse("arp").unwrap())));
    g.arm_trace(1, trace, tx).unwrap();
    let due = g.timer_deadline();
    assert!(due > 0 && due != u64::MAX, "the retry is due at {due}");
    g.run_timers(&mut Context::new(&mut pool, due, 0));
    assert_eq!(g.tx_batch(1).len(), 1, "the retry, from the timer");
    assert_eq!(g.tx_batch(1)[0].data(), &request[..]);
    let copies: Vec<Vec<u8>> = std::iter::from_fn(|| tap.pop()).map(|c| c.data).collect();
    assert_eq!(copies, vec![request.clone()], "the tap saw the retry");
    let r = rx.try_recv().expect("the trace took the retry");
    assert_eq!(r.port, "");
    assert_eq!(
        r.hops,
        vec![
            Hop::Timer {
                element: "arpq".into(),
                class: "ArpQuerier".into(),
                outputs: vec![HopOutput {
                    output: 0,
                    to: "wan".into()
                }],
            },
            Hop::Sent { port: "wan".into() },
        ]
    );
    assert!(r
        .to_string()
        .starts_with("packet 1: sent by the timer of arpq"));
    assert!(g.is_watched(), "the tap stays installed");
    assert_eq!(g.counters()[0].packets_out, 2, "both requests counted");
}

/// in -> h (holds every packet; at the end lets the first out) -> out.
fn holder_graph() -> Graph {
    const HOLDER: crate::element::ClassInfo = crate::element::ClassInfo {
        drop_reasons: &["mine"],
        ..crate::element::ClassInfo::bare("Holder")
    };
    let spec = GraphSpec {
        nodes: vec![NodeSpec {
            name: "h".into(),
            class: HOLDER,
            configured: crate::element::Configured::new(
                crate::element::Inputs::Fixed(1),
                1,
                |_| Box::new(super::tests::Holder::default()),
            ),
            outputs: vec![Target::Port(1)],
        }],
        ports: ["in", "out"].map(String::from).to_vec(),
        sources: vec![Some(Target::Element { node: 0, input: 0 }), None],
    };
    Graph::new(&spec, 0)
}

#[test]
fn what_an_element_lets_out_as_it_finishes_is_tapped_and_traced() {
    let mut pool = Pool::new(64);
    let mut cx = Context::new(&mut pool, 0, 0);
    let mut g = holder_graph();
    g.push_from_port(&mut cx, 0, &mut batch(&["udp", "tcp", "udp"]));
    assert!(g.tx_batch(1).is_empty(), "held");
    // Watched from now on: the packet h lets out at the end is seen.
    let tap = tap_on(&mut g, "h -> out", 8, None, None);
    let (tx, rx) = mpsc::channel();
    let trace = Arc::new(TraceShared::new(1, Some(Filter::parse("udp").unwrap())));
    g.arm_trace(1, trace, tx).unwrap();
    g.finish(&mut cx);
    assert_eq!(g.tx_batch(1).len(), 1, "the first held packet goes out");
    assert_eq!(drain(&tap), [0], "the tap saw it on its edge");
    let r = rx.try_recv().expect("the trace took the packet h let out");
    assert_eq!(r.port, "");
    assert_eq!(
        r.hops,
        vec![
            Hop::Finish {
                element: "h".into(),
                class: "Holder".into(),
                outputs: vec![HopOutput {
                    output: 0,
                    to: "out".into()
                }],
            },
            Hop::Sent { port: "out".into() },
        ]
    );
    assert!(r
        .to_string()
        .starts_with("packet 1: let out by h as it finished"));
    assert_eq!(g.counters()[0].drops, vec![("mine".to_string(), 2)]);
}
