use super::*;
use crate::config::configure_element;
use crate::element::Registry;
use crate::packet::{Packet, Pool};
use testkit::frame::{Frame, Ip};

fn element(toml: &str) -> (Box<dyn Element>, usize) {
    let c = configure_element(&Registry::builtin(), &[], "IpLookup", toml).unwrap();
    (c.instantiate(0), c.outputs)
}

fn v4(dst: [u8; 4]) -> Packet {
    Packet::from_bytes(&Frame::udp(Ip::v4([10, 0, 0, 1], dst), 1, 2).build())
}

fn v6(dst: &str) -> Packet {
    let d: std::net::Ipv6Addr = dst.parse().unwrap();
    let src = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    Packet::from_bytes(&Frame::udp(Ip::v6(src, d.octets()), 1, 2).build())
}

/// Pushes `pkts` one at a time; (output, annotation words 2 and 3) of each,
/// `None` for a drop.
fn route(
    e: &mut Box<dyn Element>,
    outputs: usize,
    pkts: Vec<Packet>,
) -> Vec<Option<(usize, [u32; 2])>> {
    let mut pool = Pool::new(0);
    let mut cx = Context::new(&mut pool, 0, 0);
    pkts.into_iter()
        .map(|p| {
            let mut out = Output::new(outputs, DROP_REASONS.len());
            let mut b: Batch = std::iter::once(p).collect();
            e.push(&mut cx, 0, &mut b, &mut out);
            (0..outputs).find_map(|o| {
                out.batch(o)
                    .first()
                    .map(|p| (o, [p.anno()[NEXT_HOP_ANNO], p.anno()[NEXT_HOP_ANNO + 1]]))
            })
        })
        .collect()
}

const CONFIG: &str = r#"
outputs = 3
no_route = 2
routes = [
  "192.168.1.0/24 -> 0",
  "0.0.0.0/0 -> 1 via 203.0.113.1",
  "10.0.0.0/8 -> 1 via 192.168.1.254",
  "10.1.2.3 -> 0",
  "fd00:1::/64 -> 0",
  "2001:db8::/32 -> 1 via fe80::1:2:3:4",
]
"#;

#[test]
fn routes_by_longest_prefix_with_the_next_hop_annotation() {
    let (mut e, n) = element(CONFIG);
    let got = route(
        &mut e,
        n,
        vec![
            v4([192, 168, 1, 7]),
            v4([8, 8, 8, 8]),
            v4([10, 9, 9, 9]),
            v4([10, 1, 2, 3]),
            v6("fd00:1::5"),
            v6("2001:db8:ff::1"),
            v6("2001:db9::1"),
        ],
    );
    assert_eq!(
        got,
        vec![
            Some((0, [0, 0])),
            Some((1, [u32::from_be_bytes([203, 0, 113, 1]), 0])),
            Some((1, [u32::from_be_bytes([192, 168, 1, 254]), 0])),
            Some((0, [0, 0])),
            Some((0, [0, 0])),
            Some((1, [0x0001_0002, 0x0003_0004])),
            Some((2, [0, 0])),
        ]
    );
}

#[test]
fn unrouted_and_non_ip_packets_are_counted_drops_without_no_route() {
    let (mut e, _) = element("outputs = 1\nroutes = [\"10.0.0.0/8 -> 0\"]");
    let mut pool = Pool::new(0);
    let mut cx = Context::new(&mut pool, 0, 0);
    let mut out = Output::new(1, DROP_REASONS.len());
    let mut arp = vec![0u8; 60];
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let mut b: Batch = vec![
        v4([11, 0, 0, 1]),
        v6("2001:db8::1"),
        Packet::from_bytes(&arp),
        v4([10, 0, 0, 1]),
    ]
    .into_iter()
    .collect();
    e.push(&mut cx, 0, &mut b, &mut out);
    assert_eq!(out.batch(0).len(), 1);
    assert_eq!(out.drops(NO_ROUTE), 2);
    assert_eq!(out.drops(NOT_IP), 1);
}

#[test]
fn handlers_add_and_remove_routes_at_run_time() {
    let (mut e, n) = element(CONFIG);
    let cx = HandlerCx::new(0, 0);
    assert_eq!(
        route(&mut e, n, vec![v4([172, 16, 0, 1])]),
        vec![Some((1, [0xcb00_7101, 0]))]
    );
    let a = e
        .write("add", "172.16.0.0/12 -> 0 via 192.168.1.9", &cx)
        .unwrap();
    assert_eq!(a, "172.16.0.0/12 -> 0 via 192.168.1.9");
    assert_eq!(
        route(&mut e, n, vec![v4([172, 16, 0, 1])]),
        vec![Some((0, [0xc0a8_0109, 0]))]
    );
    e.write("remove", "172.16.0.0/12", &cx).unwrap();
    e.write("remove", "0.0.0.0/0", &cx).unwrap();
    assert_eq!(
        route(&mut e, n, vec![v4([172, 16, 0, 1])]),
        vec![Some((2, [0, 0]))]
    );
    assert!(e
        .write("remove", "0.0.0.0/0", &cx)
        .unwrap_err()
        .contains("no route"));
    assert!(e
        .write("add", "1.0.0.0/8 -> 3", &cx)
        .unwrap_err()
        .contains("below 3"));
    e.write("add", "::/0 -> 1 via fe80::9", &cx).unwrap();
    assert_eq!(
        route(&mut e, n, vec![v6("2001:db9::1")]),
        vec![Some((1, [0, 9]))]
    );
    let routes = e.read("routes", &cx).unwrap();
    assert_eq!(routes[0], "10.0.0.0/8 -> 1 via 192.168.1.254");
    assert_eq!(routes.as_array().unwrap().len(), 6);
    assert_eq!(e.read("size", &cx).unwrap()["ipv6"], 3);
}

#[test]
fn generated_tables_and_route_files_load() {
    let (mut e, n) = element(
        "outputs = 2\ngenerate_ipv4 = 5000\ngenerate_ipv6 = 3000\nroutes = [\"0.0.0.0/0 -> 1\"]",
    );
    let cx = HandlerCx::new(0, 0);
    let size = e.read("size", &cx).unwrap();
    assert_eq!(
        (size["ipv4"].as_u64(), size["ipv6"].as_u64()),
        (Some(5001), Some(3000))
    );
    assert!(route(&mut e, n, vec![v4([240, 0, 0, 1])])[0].is_some());

    let dir = std::env::temp_dir().join(format!("hpnf-rtfile-{}", std::process::id()));
    std::fs::write(
        &dir,
        "# comment\n10.0.0.0/8 -> 1  # to the core\n\n2001:db8::/32 -> 0\n",
    )
    .unwrap();
    let (mut e, n) = element(&format!(
        "outputs = 2\nroute_file = {:?}",
        dir.display().to_string()
    ));
    assert_eq!(
        route(&mut e, n, vec![v4([10, 0, 0, 1]), v6("2001:db8::1")]),
        vec![Some((1, [0, 0])), Some((0, [0, 0]))]
    );
    std::fs::write(&dir, "10.0.0.0/8 -> 1\nnonsense\n").unwrap();
    let err = configure_element(
        &Registry::builtin(),
        &[],
        "IpLookup",
        &format!("outputs = 2\nroute_file = {:?}", dir.display().to_string()),
    )
    .unwrap_err()
    .to_string();
    std::fs::remove_file(&dir).unwrap();
    assert!(
        err.contains(":2:") && err.contains("PREFIX -> OUTPUT"),
        "{err}"
    );
}

#[test]
fn bad_routes_are_parameter_errors() {
    for (toml, want) in [
        ("outputs = 2\nroutes = [\"10.0.0.0/8 -> 2\"]", "below 2"),
        ("outputs = 2\nno_route = 2", "below outputs"),
        (
            "outputs = 1\nno_route = 0\ngenerate_ipv4 = 10",
            "other than no_route",
        ),
    ] {
        let err = configure_element(&Registry::builtin(), &[], "IpLookup", toml)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{toml}: {err}");
    }
}

#[test]
fn run_time_routes_survive_a_reload_unless_the_new_config_changes_their_prefix() {
    let (mut old, n) = element(CONFIG);
    let cx = HandlerCx::new(0, 0);
    for r in [
        "172.16.0.0/12 -> 0 via 192.168.1.9",
        "2001:db8:5::/48 -> 0",
        "fd00:1::/64 -> 1",
    ] {
        old.write("add", r, &cx).unwrap();
    }
    old.write("remove", "10.0.0.0/8", &cx).unwrap();
    // The new config edits fd00:1::/64 and adds a route; the rest is as before.
    let edited = CONFIG
        .replace("\"fd00:1::/64 -> 0\"", "\"fd00:1::/64 -> 2\"")
        .replace("routes = [", "routes = [\"198.51.100.0/24 -> 1\",");
    let (mut new, _) = element(&edited);
    let mut pool = Pool::new(0);
    new.give_state(
        old.take_state().unwrap(),
        &mut Context::new(&mut pool, 0, 0),
    );
    let got = route(
        &mut new,
        n,
        vec![
            v4([172, 16, 0, 1]),
            v4([10, 9, 9, 9]),
            v4([198, 51, 100, 1]),
            v6("2001:db8:5::1"),
            v6("fd00:1::1"),
        ],
    );
    let default_hop = u32::from_be_bytes([203, 0, 113, 1]);
    assert_eq!(
        got,
        vec![
            Some((0, [u32::from_be_bytes([192, 168, 1, 9]), 0])),
            Some((1, [default_hop, 0])),
            Some((1, [0, 0])),
            Some((0, [0, 0])),
            Some((2, [0, 0])),
        ],
        "added and removed routes carry over; the edited prefix takes the new config's route"
    );
    // The changes survive a second reload too, even through a fresh replica.
    let (mut third, _) = element(&edited);
    third.give_state(
        new.take_state().unwrap(),
        &mut Context::new(&mut pool, 0, 0),
    );
    assert_eq!(
        route(&mut third, n, vec![v4([172, 16, 0, 1]), v4([10, 9, 9, 9])]),
        vec![
            Some((0, [u32::from_be_bytes([192, 168, 1, 9]), 0])),
            Some((1, [default_hop, 0])),
        ]
    );
}

#[test]
fn a_kept_route_to_an_output_the_new_config_lacks_is_dropped() {
    let (mut old, _) = element(CONFIG);
    let cx = HandlerCx::new(0, 0);
    old.write("add", "172.16.0.0/12 -> 2", &cx).unwrap();
    let (mut new, n) = element("outputs = 2\nroutes = [\"0.0.0.0/0 -> 1\"]");
    let mut pool = Pool::new(0);
    new.give_state(
        old.take_state().unwrap(),
        &mut Context::new(&mut pool, 0, 0),
    );
    assert_eq!(
        route(&mut new, n, vec![v4([172, 16, 0, 1])]),
        vec![Some((1, [0, 0]))]
    );
}

/// The IPv4 path looks up a chunk in passes (prefetch, read, route): a
/// burst of more than one chunk, IPv4 mixed with IPv6, non-IP and
/// malformed frames, must go out exactly as its packets do one at a time,
/// in order within each output.
#[test]
fn a_mixed_burst_routes_as_its_packets_do_one_at_a_time() {
    let toml = "outputs = 3\nno_route = 2\ngenerate_ipv4 = 3000\nseed = 7\n\
                routes = [\"10.1.2.128/25 -> 1 via 192.0.2.1\", \"fd00:1::/64 -> 0\"]";
    let (mut e, n) = element(toml);
    let mut arp = vec![0u8; 60];
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let mut short = Frame::udp(Ip::v4([10, 0, 0, 1], [10, 1, 2, 200]), 1, 2).build();
    short.truncate(20);
    let mut frames: Vec<Vec<u8>> = (0..2 * CHUNK as u32 + 11)
        .map(|i| match i % 9 {
            7 => v6(if i % 2 == 0 {
                "fd00:1::9"
            } else {
                "2001:db8::1"
            })
            .data()
            .to_vec(),
            8 if i % 4 == 0 => arp.clone(),
            8 => short.clone(),
            _ => v4(i.wrapping_mul(2_654_435_761).to_be_bytes())
                .data()
                .to_vec(),
        })
        .collect();
    frames.push(v4([10, 1, 2, 200]).data().to_vec());
    let packets = || {
        frames
            .iter()
            .map(|f| Packet::from_bytes(f))
            .collect::<Vec<_>>()
    };
    let one_at_a_time = route(&mut e, n, packets());

    let mut pool = Pool::new(0);
    let mut cx = Context::new(&mut pool, 0, 0);
    let mut out = Output::new(n, DROP_REASONS.len());
    let mut b: Batch = packets().into_iter().collect();
    e.push(&mut cx, 0, &mut b, &mut out);
    for o in 0..n {
        let want: Vec<(&[u8], [u32; 2])> = one_at_a_time
            .iter()
            .zip(&frames)
            .filter_map(|(r, f)| r.filter(|&(ro, _)| ro == o).map(|(_, w)| (&f[..], w)))
            .collect();
        let got: Vec<(&[u8], [u32; 2])> = out
            .batch(o)
            .iter()
            .map(|p| {
                (
                    p.data(),
                    [p.anno()[NEXT_HOP_ANNO], p.anno()[NEXT_HOP_ANNO + 1]],
                )
            })
            .collect();
        assert_eq!(got, want, "output {o}");
        assert!(!got.is_empty(), "output {o} gets packets");
    }
    let dropped = one_at_a_time.iter().filter(|r| r.is_none()).count() as u64;
    assert_eq!(out.drops(NOT_IP) + out.drops(MALFORMED), dropped);
    assert!(out.drops(NOT_IP) > 0 && out.drops(MALFORMED) > 0);
    assert_eq!(
        one_at_a_time.last(),
        Some(&Some((1, [0xc000_0201, 0]))),
        "the /25 (a second-level group) routes its packet"
    );
}

/// A frame no element has parsed takes the lookup's shortcut when it is
/// plain IPv4 (`Headers::plain_ipv4_dst`); any frame must go out, or be
/// dropped under the same reason, exactly as when an element before had
/// parsed it (the parse cached in the slot, so the shortcut is skipped):
/// VLAN-tagged, with options, IPv6, ARP, cut short, with bytes of the
/// headers replaced at random, each alone and all in one burst.
#[test]
fn frames_route_alike_with_and_without_a_cached_parse() {
    let toml = "outputs = 3\nno_route = 2\ngenerate_ipv4 = 3000\nseed = 3\n\
                routes = [\"10.1.2.128/25 -> 1 via 192.0.2.1\", \"fd00:1::/64 -> 0\"]";
    let (mut e, n) = element(toml);
    let ip = Ip::v4([10, 0, 0, 1], [10, 1, 2, 200]);
    let kinds = [
        Frame::udp(ip, 1, 2).build(),
        Frame::tcp(ip, 1, 2, 0).build(),
        Frame::udp(ip, 1, 2).vlan(7).build(),
        Frame::udp(ip, 1, 2).ip_options(&[1, 1, 1, 0]).build(),
        Frame::udp(ip, 1, 2).fragment(16, false).build(),
        v6("fd00:1::9").data().to_vec(),
        Frame::arp(1, ([1; 6], [10, 0, 0, 1]), ([0; 6], [10, 0, 0, 2])).build(),
    ];
    let mut rng = testkit::rng::Rng::new(15);
    let mut frames = Vec::new();
    for _ in 0..3000 {
        let mut f = kinds[rng.next_u64() as usize % kinds.len()].clone();
        for _ in 0..rng.next_u64() % 3 {
            let i = rng.next_u64() as usize % 40;
            f[i] = rng.next_u64() as u8;
        }
        if rng.next_u64() % 5 == 0 {
            f.truncate(rng.next_u64() as usize % (f.len() + 1));
        }
        frames.push(f);
    }
    let mut pool = Pool::new(0);
    let mut cx = Context::new(&mut pool, 0, 0);
    // (output or drop reason, annotation words) of each frame, and the
    // outputs' frames in order with a whole burst.
    let mut run = |cached: bool, burst: bool| {
        let mut singles = Vec::new();
        let mut out = Output::new(n, DROP_REASONS.len());
        let packets = frames.iter().map(|f| {
            let mut p = Packet::from_bytes(f);
            if cached {
                p.headers();
            }
            p
        });
        if burst {
            let mut b: Batch = packets.collect();
            e.push(&mut cx, 0, &mut b, &mut out);
        } else {
            for p in packets {
                let mut one = Output::new(n, DROP_REASONS.len());
                let mut b: Batch = std::iter::once(p).collect();
                e.push(&mut cx, 0, &mut b, &mut one);
                let sent = (0..n).find_map(|o| {
                    let p = one.batch(o).first()?;
                    Some((o, [p.anno()[NEXT_HOP_ANNO], p.anno()[NEXT_HOP_ANNO + 1]]))
                });
                let why = [NO_ROUTE, NOT_IP, MALFORMED]
                    .iter()
                    .position(|&r| one.drops(r) == 1);
                singles.push((sent, why));
            }
        }
        let outs: Vec<Vec<(Vec<u8>, u32)>> = (0..n)
            .map(|o| {
                let b = out.batch(o);
                b.iter()
                    .map(|p| (p.data().to_vec(), p.anno()[NEXT_HOP_ANNO]))
                    .collect()
            })
            .collect();
        let drops = [NO_ROUTE, NOT_IP, MALFORMED].map(|r| out.drops(r));
        (singles, outs, drops)
    };
    let (fresh, _, _) = run(false, false);
    let (parsed, _, _) = run(true, false);
    assert_eq!(fresh, parsed);
    let kinds_seen = |k: usize| fresh.iter().filter(|r| r.1 == Some(k)).count();
    assert!(
        kinds_seen(1) > 0
            && kinds_seen(2) > 0
            && fresh.iter().filter(|r| r.0.is_some()).count() > 1000,
        "the frames cover routes and both kinds of drop"
    );
    let burst_fresh = run(false, true);
    let burst_parsed = run(true, true);
    assert_eq!(burst_fresh.1, burst_parsed.1);
    assert_eq!(burst_fresh.2, burst_parsed.2);
}

/// Two replicas of one configured IpLookup share one IPv4 table, one IPv6
/// table and one next-hop table (the same addresses): a route added
/// through one routes the other's packets at once.
#[test]
fn replicas_share_one_table_per_family() {
    let c = configure_element(&Registry::builtin(), &[], "IpLookup", CONFIG).unwrap();
    let (mut a, mut b) = (c.instantiate(0), c.instantiate(1));
    let n = c.outputs;
    let cx = HandlerCx::new(0, 0);
    a.write("add", "172.16.0.0/12 -> 0 via 192.168.1.9", &cx)
        .unwrap();
    a.write("add", "10.1.2.128/25 -> 2", &cx).unwrap();
    a.write("add", "2001:db8:5::/48 -> 0 via fe80::5", &cx)
        .unwrap();
    a.write("remove", "192.168.1.0/24", &cx).unwrap();
    let pkts = || {
        vec![
            v4([172, 16, 0, 1]),
            v4([10, 1, 2, 200]),
            v4([192, 168, 1, 1]),
            v6("2001:db8:5::1"),
        ]
    };
    let want = vec![
        Some((0, [0xc0a8_0109, 0])),
        Some((2, [0, 0])),
        Some((1, [0xcb00_7101, 0])),
        Some((0, [0, 5])),
    ];
    assert_eq!(route(&mut b, n, pkts()), want, "seen by the other replica");
    assert_eq!(route(&mut a, n, pkts()), want);
    assert_eq!(b.read("routes", &cx), a.read("routes", &cx));

    // The same table, not a copy: the same addresses.
    let t = IpLookup::new(2, None);
    let (x, y) = (t.clone(), t.clone());
    assert!(Arc::ptr_eq(&x.shared, &y.shared));
    let mut x = x;
    x.add(parse_route("10.0.0.0/8 -> 1", 2).unwrap()).unwrap();
    let (tx, ty) = (x.shared.v4.get().unwrap(), y.shared.v4.get().unwrap());
    assert!(std::ptr::eq(tx, ty) && tx.lookup(0x0a01_0203) == 1);
    x.add(parse_route("2001:db8::/32 -> 1", 2).unwrap())
        .unwrap();
    let (tx, ty) = (x.shared.v6.get().unwrap(), y.shared.v6.get().unwrap());
    assert!(std::ptr::eq(tx, ty) && ty.exclusive().lookup(0x2001_0db8 << 96 | 1) == 1);
}

/// A replica made after an IPv6 change (a worker that starts late) has
/// it, and the replicas made before and after see later changes as well:
/// there is one IPv6 table, not a copy per replica that a change could
/// miss.
#[test]
fn a_replica_made_after_an_ipv6_change_has_it() {
    let c = configure_element(&Registry::builtin(), &[], "IpLookup", CONFIG).unwrap();
    let n = c.outputs;
    let cx = HandlerCx::new(0, 0);
    let mut early = c.instantiate(0);
    early
        .write("add", "2001:db8:5::/48 -> 0 via fe80::5", &cx)
        .unwrap();
    let pkt = || vec![v6("2001:db8:5::1")];
    let added = vec![Some((0, [0, 5]))];
    assert_eq!(route(&mut early, n, pkt()), added);
    let mut late = c.instantiate(1);
    assert_eq!(route(&mut late, n, pkt()), added, "made after the change");
    early.write("remove", "2001:db8:5::/48", &cx).unwrap();
    let covering = route(&mut late, n, pkt());
    assert_eq!(
        covering[0].map(|(o, _)| o),
        Some(1),
        "changed after it was made"
    );
    assert_eq!(route(&mut early, n, pkt()), covering);
    assert_eq!(
        route(&mut c.instantiate(2), n, pkt()),
        covering,
        "both, in order"
    );
}

/// A run-time change that left a /24 of an IPv4 line escaping to the full
/// table (no palette slot free until a grace period passed) is rewritten by
/// the first burst after the grace, with no further change.
#[test]
fn a_burst_after_the_grace_rewrites_lines_left_escaping() {
    let grace = Arc::new(Grace::new());
    let reader = grace.register();
    let ip = IpLookup::with_grace(2, None, grace.clone());
    let shared = Arc::clone(&ip.shared);
    let mut e: Box<dyn Element> = Box::new(ip);
    let cx = HandlerCx::new(0, 0);
    // Each next hop is a table value of its own: the third takes the
    // line's last slot whose grace has not passed.
    for k in 1..=3 {
        e.write("add", &format!("10.1.0.0/16 -> 1 via 192.0.2.{k}"), &cx)
            .unwrap();
    }
    let escaped = || shared.v4.get().unwrap().escaped();
    assert_eq!(escaped(), 256, "the whole /16 waits for a slot");
    assert_eq!(
        route(&mut e, 2, vec![v4([10, 1, 2, 3])]),
        vec![Some((1, [0xc000_0203, 0]))]
    );
    assert_eq!(escaped(), 256, "the grace has not passed");
    reader.quiescent();
    assert_eq!(
        route(&mut e, 2, vec![v4([10, 1, 2, 3])]),
        vec![Some((1, [0xc000_0203, 0]))]
    );
    assert_eq!(escaped(), 0);
}
