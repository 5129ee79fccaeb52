//! Bridge element tests: parameters, and batches pushed straight into a
//! replica with frames built by etherparse.

use super::*;
use hpio_nf::config::configure_element;
use hpio_nf::element::{Registry, Value};
use hpio_nf::packet::Pool;

const S: u64 = 1_000_000_000;
const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0c];
const BCAST: [u8; 6] = [0xff; 6];
const MCAST: [u8; 6] = [0x01, 0x00, 0x5e, 0, 0, 0xfb];

/// A UDP/IPv4 frame from `src` to `dst` carrying `tag`.
fn frame(src: [u8; 6], dst: [u8; 6], tag: u8) -> Vec<u8> {
    use testkit::frame::{Frame, Ip};
    Frame::udp(Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]), 1000, 2000)
        .macs(src, dst)
        .payload(&[tag; 8])
        .build()
}

/// Source, destination and tag of a frame.
type Seen = ([u8; 6], [u8; 6], u8);

/// Source, destination and tag of a frame, read by etherparse.
fn seen(p: &Packet) -> Seen {
    let s = etherparse::SlicedPacket::from_ethernet(p.data()).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = s.link else {
        panic!("not Ethernet II")
    };
    let payload = s.transport.map_or(0, |t| match t {
        etherparse::TransportSlice::Udp(u) => u.payload()[0],
        _ => 0,
    });
    (eth.source(), eth.destination(), payload)
}

fn settings(ports: usize) -> Settings {
    Settings {
        ports,
        aging_ns: 10 * S,
        max_entries: 16,
        table_file: None,
        workers: 1,
    }
}

/// A replica, its outputs and a pool; `push` sends one frame in on a port.
struct Rig {
    br: Bridge,
    out: Output,
    pool: Pool,
}

impl Rig {
    fn new(s: Settings) -> Rig {
        let n = s.ports;
        Rig {
            br: Bridge::new(&s, 0),
            out: Output::new(n, CLASS.info.drop_reasons.len()),
            pool: Pool::new(64),
        }
    }

    fn push_at(&mut self, now: u64, port: usize, frames: &[Vec<u8>]) {
        let mut batch: Batch = frames.iter().map(|f| Packet::from_bytes(f)).collect();
        let mut cx = Context::new(&mut self.pool, now, 0);
        self.br.push(&mut cx, port, &mut batch, &mut self.out);
        assert!(batch.is_empty(), "every frame handled");
    }

    /// Takes what each output holds, as (src, dst, tag).
    fn outputs(&mut self) -> Vec<Vec<Seen>> {
        (0..self.out.len())
            .map(|o| self.out.take(o).iter().map(seen).collect())
            .collect()
    }

    fn stat(&self, name: &str) -> u64 {
        let mut v = None;
        self.br.stats(&mut |k, n| {
            if k == name {
                v = Some(n)
            }
        });
        v.unwrap_or_else(|| panic!("no counter {name}"))
    }
}

#[test]
fn learns_forwards_and_stops_flooding() {
    let mut r = Rig::new(settings(3));
    // A on port 0 to unknown B: flooded to 1 and 2.
    r.push_at(S, 0, &[frame(A, B, 1)]);
    assert_eq!(
        r.outputs(),
        [vec![], vec![(A, B, 1)], vec![(A, B, 1)]],
        "unknown destination flooded to every other port"
    );
    // B answers from port 2: A is known on 0, only port 0 gets it.
    r.push_at(S, 2, &[frame(B, A, 2)]);
    assert_eq!(r.outputs(), [vec![(B, A, 2)], vec![], vec![]]);
    // Now both are known: no more flooding either way.
    r.push_at(S, 0, &[frame(A, B, 3), frame(A, B, 4)]);
    r.push_at(S, 2, &[frame(B, A, 5)]);
    assert_eq!(
        r.outputs(),
        [vec![(B, A, 5)], vec![], vec![(A, B, 3), (A, B, 4)]]
    );
    assert_eq!(r.stat("entries"), 2);
    assert_eq!(r.stat("learned"), 2);
    assert_eq!(r.stat("port0.rx"), 3);
    assert_eq!(r.stat("port0.flooded"), 1);
    assert_eq!(r.stat("port0.forwarded"), 2);
    assert_eq!(r.stat("port2.forwarded"), 2);
    assert_eq!(r.stat("port0.tx"), 2);
    assert_eq!(r.stat("port1.tx"), 1);
    assert_eq!(r.stat("port2.tx"), 3);
}

#[test]
fn broadcast_and_multicast_are_always_flooded_as_copies() {
    let mut r = Rig::new(settings(4));
    r.push_at(S, 3, &[frame(B, A, 0)]); // B on 3; A unknown: flooded
    assert_eq!(
        r.outputs(),
        [vec![(B, A, 0)], vec![(B, A, 0)], vec![(B, A, 0)], vec![]]
    );
    // B is known on 3, but broadcast and multicast go everywhere anyway.
    r.push_at(S, 1, &[frame(A, BCAST, 1), frame(A, MCAST, 2)]);
    let outs = r.outputs();
    for (p, o) in outs.iter().enumerate() {
        let want = match p {
            1 => vec![],
            _ => vec![(A, BCAST, 1), (A, MCAST, 2)],
        };
        assert_eq!(*o, want, "port {p}");
    }
    assert_eq!(r.stat("port1.flooded"), 2);
    assert_eq!(r.stat("port3.flooded"), 1);
    // Three outputs each time: two copies from the pool and the original.
    assert_eq!(r.pool.available(), 64 - 3 * 2);
}

#[test]
fn copies_are_independent_and_keep_metadata() {
    let mut r = Rig::new(settings(3));
    let mut batch: Batch = [Packet::from_bytes(&frame(A, BCAST, 9))]
        .into_iter()
        .collect();
    batch[0].set_timestamp(77);
    batch[0].anno_mut()[2] = 5;
    let mut cx = Context::new(&mut r.pool, S, 0);
    r.br.push(&mut cx, 0, &mut batch, &mut r.out);
    let mut one = r.out.take(1);
    let two = r.out.take(2);
    one[0].data_mut()[20] ^= 0xff;
    assert_eq!(two[0].data(), &frame(A, BCAST, 9)[..]);
    assert_eq!((two[0].timestamp(), two[0].anno()[2]), (77, 5));
    assert_eq!((one[0].timestamp(), one[0].anno()[2]), (77, 5));
}

#[test]
fn never_sends_back_out_of_the_ingress_port() {
    let mut r = Rig::new(settings(2));
    r.push_at(S, 0, &[frame(A, C, 0), frame(B, C, 1)]); // A and B both on 0
    r.outputs();
    // A to B: both on port 0, the frame is already on its segment.
    r.push_at(S, 0, &[frame(A, B, 2)]);
    assert_eq!(r.outputs(), [vec![], vec![]]);
    assert_eq!(r.out.drops(FILTERED), 1);
    assert_eq!(r.stat("port0.filtered"), 1);
    // A frame to oneself is filtered too (learned first, then looked up).
    r.push_at(S, 1, &[frame(C, C, 3)]);
    assert_eq!(r.outputs(), [vec![], vec![]]);
    assert_eq!(r.out.drops(FILTERED), 2);
}

#[test]
fn aging_forgets_silent_hosts() {
    let mut r = Rig::new(settings(3));
    r.push_at(0, 1, &[frame(B, A, 0)]); // B on 1 at t=0
    r.outputs();
    r.push_at(10 * S - 1, 0, &[frame(A, B, 1)]);
    assert_eq!(
        r.outputs(),
        [vec![], vec![(A, B, 1)], vec![]],
        "still known"
    );
    r.push_at(10 * S, 0, &[frame(A, B, 2)]);
    assert_eq!(
        r.outputs(),
        [vec![], vec![(A, B, 2)], vec![(A, B, 2)]],
        "silent for `aging`: flooded again"
    );
    // B speaks again (from port 2 this time): known again, not a move.
    r.push_at(11 * S, 2, &[frame(B, A, 3)]);
    r.push_at(11 * S, 0, &[frame(A, B, 4)]);
    assert_eq!(r.outputs(), [vec![(B, A, 3)], vec![], vec![(A, B, 4)]]);
    assert_eq!(r.stat("moves"), 0);
    assert_eq!(r.stat("aged"), 1);
    assert_eq!(r.stat("learned"), 3);
}

#[test]
fn the_sweep_reclaims_expired_entries() {
    let mut s = settings(2);
    s.max_entries = 2;
    let mut r = Rig::new(s);
    r.push_at(0, 0, &[frame(A, BCAST, 0), frame(B, BCAST, 0)]);
    r.push_at(S, 0, &[frame(C, BCAST, 0)]);
    assert_eq!(r.stat("table-full"), 1);
    assert_eq!(r.stat("entries"), 2);
    // Both expire at 10 s; the first batch after the sweep period reclaims them.
    r.push_at(20 * S, 1, &[frame(C, A, 0)]);
    assert_eq!(r.stat("entries"), 1, "A and B swept, C learned");
    assert_eq!(r.stat("aged"), 2);
    assert_eq!(r.stat("table-full"), 1);
}

#[test]
fn mac_moves_update_the_entry_and_are_counted() {
    let mut r = Rig::new(settings(3));
    r.push_at(S, 0, &[frame(A, BCAST, 0)]);
    r.push_at(S, 1, &[frame(A, BCAST, 1)]); // A moved to port 1
    r.outputs();
    r.push_at(S, 2, &[frame(B, A, 2)]);
    assert_eq!(r.outputs(), [vec![], vec![(B, A, 2)], vec![]]);
    assert_eq!(r.stat("moves"), 1);
    assert_eq!(r.stat("entries"), 2);
}

#[test]
fn a_full_table_is_counted_and_still_forwards() {
    let mut s = settings(2);
    s.max_entries = 1;
    let mut r = Rig::new(s);
    r.push_at(S, 0, &[frame(A, B, 0)]);
    r.push_at(S, 1, &[frame(B, A, 1), frame(B, A, 2)]); // B not learned
    r.push_at(S, 0, &[frame(A, B, 3)]);
    assert_eq!(
        r.outputs(),
        [vec![(B, A, 1), (B, A, 2)], vec![(A, B, 0), (A, B, 3)]]
    );
    assert_eq!(r.stat("table-full"), 2);
    assert_eq!(r.stat("entries"), 1);
    assert_eq!(r.stat("port0.flooded"), 2, "B unknown: flooded each time");
}

#[test]
fn bad_frames_are_dropped_with_reasons() {
    let mut r = Rig::new(settings(3));
    let mut reserved = frame(A, [0x01, 0x80, 0xc2, 0, 0, 0x0e], 0); // LLDP
    reserved.truncate(60);
    r.push_at(
        S,
        0,
        &[
            frame(BCAST, B, 0),
            frame(MCAST, B, 0),
            frame([0; 6], B, 0),
            vec![0xff; 13],
            reserved,
        ],
    );
    assert_eq!(r.outputs(), [vec![], vec![], vec![]]);
    assert_eq!(r.out.drops(INVALID_SOURCE), 3);
    assert_eq!(r.out.drops(RUNT), 1);
    assert_eq!(r.out.drops(RESERVED), 1);
    assert_eq!(r.stat("entries"), 1, "only A, from the reserved frame");
    // 01:80:c2:00:00:10 is past the reserved block: flooded.
    r.push_at(S, 0, &[frame(A, [0x01, 0x80, 0xc2, 0, 0, 0x10], 1)]);
    assert_eq!(r.outputs()[1].len(), 1);
    assert_eq!(r.stat("port0.rx"), 6);
}

#[test]
fn an_empty_pool_costs_copies_not_the_original() {
    let mut r = Rig::new(settings(4));
    r.pool = Pool::new(1);
    let _held = r.pool.alloc().unwrap();
    r.push_at(S, 0, &[frame(A, BCAST, 1)]);
    assert_eq!(r.out.drops(NO_BUFFER), 2);
    assert_eq!(r.outputs(), [vec![], vec![], vec![], vec![(A, BCAST, 1)]]);
    assert_eq!(r.stat("port1.tx"), 0);
    assert_eq!(r.stat("port3.tx"), 1);
}

#[test]
fn large_and_mixed_batches_keep_their_order() {
    let mut r = Rig::new(settings(3));
    r.pool = Pool::new(1024);
    r.push_at(S, 1, &[frame(B, BCAST, 0)]);
    r.push_at(S, 2, &[frame(C, BCAST, 0)]);
    r.outputs();
    // 300 frames (more than one decision pass) from A: to B, C, A itself
    // (filtered), and broadcast, in turn.
    let dsts = [B, C, A, BCAST];
    let frames: Vec<Vec<u8>> = (0..300).map(|i| frame(A, dsts[i % 4], i as u8)).collect();
    r.push_at(S, 0, &frames);
    let outs = r.outputs();
    let want = |keep: &dyn Fn([u8; 6]) -> bool| -> Vec<Seen> {
        (0..300)
            .filter(|i| keep(dsts[i % 4]))
            .map(|i| (A, dsts[i % 4], i as u8))
            .collect()
    };
    assert_eq!(outs[0], []);
    assert_eq!(outs[1], want(&|d| d == B || d == BCAST));
    assert_eq!(outs[2], want(&|d| d == C || d == BCAST));
    assert_eq!(r.out.drops(FILTERED), 75);
    assert_eq!(r.stat("port0.forwarded"), 150);
    assert_eq!(r.stat("port0.flooded"), 75);
    assert_eq!(r.stat("port1.tx"), 150 + 1);
    // A batch bigger than one pass, all to one port, moves whole.
    let frames: Vec<Vec<u8>> = (0..300).map(|i| frame(A, B, i as u8)).collect();
    r.push_at(S, 0, &frames);
    let outs = r.outputs();
    assert_eq!(outs[1].len(), 300);
    assert!(outs[1].iter().enumerate().all(|(i, s)| s.2 == i as u8));
}

#[test]
fn a_batch_on_a_missing_input_is_left_unhandled() {
    let mut r = Rig::new(settings(2));
    let mut batch: Batch = [Packet::from_bytes(&frame(A, B, 0))].into_iter().collect();
    let mut cx = Context::new(&mut r.pool, S, 0);
    r.br.push(&mut cx, 2, &mut batch, &mut r.out);
    assert_eq!(batch.len(), 1);
}

#[test]
fn the_table_file_is_written_from_stats_and_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("br.fdb");
    let mut s = settings(2);
    s.table_file = Some(path.clone());
    let mut r = Rig::new(s.clone());
    r.stat("entries");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("worker 0, 0 entries (max 16), aging 10s"),
        "{text}"
    );
    r.push_at(2 * S, 0, &[frame(A, B, 0)]);
    r.push_at(3 * S, 1, &[frame(B, A, 0)]);
    assert_eq!(r.stat("table-file-errors"), 0);
    drop(r);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.lines().skip(2).collect::<Vec<_>>(),
        ["02:00:00:00:00:0a 0 1.000", "02:00:00:00:00:0b 1 0.000"],
        "{text}"
    );
    // Several workers: one file each; a replica that never ran writes nothing at the end.
    s.workers = 2;
    let idle = Bridge::new(&s, 1);
    drop(idle);
    assert!(!dir.path().join("br.fdb.1").exists());
    let mut busy = Bridge::new(&s, 1);
    let mut pool = Pool::new(8);
    let mut out = Output::new(2, CLASS.info.drop_reasons.len());
    let mut batch: Batch = [Packet::from_bytes(&frame(C, A, 0))].into_iter().collect();
    busy.push(&mut Context::new(&mut pool, S, 1), 1, &mut batch, &mut out);
    drop(busy);
    let text = std::fs::read_to_string(dir.path().join("br.fdb.1")).unwrap();
    assert!(text.contains("worker 1, 1 entries"), "{text}");
    assert!(text.contains("02:00:00:00:00:0c 1 0.000"), "{text}");
}

fn registry() -> Registry {
    let mut r = Registry::empty();
    crate::register(&mut r);
    r
}

fn configure(toml: &str) -> Result<Configured, String> {
    let ports: Vec<String> = ["eth0", "eth1"].map(String::from).to_vec();
    configure_element(&registry(), &ports, "Bridge", toml).map_err(|e| e.to_string())
}

#[test]
fn parameters_defaults_and_errors() {
    let c = configure(CLASS.info.example).expect("the example configures");
    assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(2), 2));
    let c = configure("ports = 5").unwrap();
    assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(5), 5));
    for (toml, want) in [
        ("ports = 1", "ports"),
        ("ports = 257", "ports"),
        ("aging = 0", "aging"),
        ("aging = \"0s\"", "aging"),
        ("aging = \"soon\"", "aging"),
        ("max_entries = 0", "max_entries"),
        ("max_entries = 2000000", "max_entries"),
        ("table_file = \"\"", "table_file"),
        ("table = 3", "table"),
    ] {
        let e = configure(toml).expect_err(toml);
        assert!(e.contains(want), "{toml}: {e}");
    }
    configure("aging = \"1.5s\"\nmax_entries = 1\ntable_file = \"/tmp/x\"").unwrap();
}

#[test]
fn the_default_table_holds_4096_entries() {
    let mut p = Params::new();
    for spec in PARAMS {
        if let Need::Default(lit) = spec.need {
            let v = match spec.ty {
                ParamType::Int { .. } => Value::Int(lit.parse().unwrap()),
                ty => ty.parse_str(lit.trim_matches('"')).unwrap(),
            };
            p.set(spec.name, v);
        }
    }
    let cx = ConfigCx {
        ports: &[],
        workers: 1,
        grace: hpio_nf::element::Grace::global(),
    };
    (CLASS.configure)(&p, &cx).unwrap();
    let b = Bridge::new(
        &Settings {
            ports: 2,
            aging_ns: duration_ns(p.duration("aging").unwrap()),
            max_entries: p.usize("max_entries").unwrap(),
            table_file: None,
            workers: 1,
        },
        0,
    );
    assert_eq!(b.table.capacity(), 8192);
    assert_eq!(b.sweep_period, MAX_SWEEP_PERIOD);
    assert_eq!(p.duration("aging").unwrap(), Duration::from_secs(300));
}

/// Hands `old`'s state over to a new replica with settings `s`, as a reload does.
fn reloaded(old: &mut Rig, s: Settings) -> Rig {
    let mut new = Rig::new(s);
    let state = old.br.take_state().expect("a bridge has state");
    let mut cx = Context::new(&mut new.pool, 0, 0);
    new.br.give_state(state, &mut cx);
    new
}

#[test]
fn a_reload_keeps_the_table_and_counters() {
    let mut old = Rig::new(settings(3));
    old.push_at(S, 0, &[frame(A, B, 1)]);
    old.push_at(S, 2, &[frame(B, A, 2)]);
    old.push_at(S, 1, &[frame(C, A, 3)]);
    old.outputs();
    // Same settings: the table moves as it is.
    let mut same = reloaded(&mut old, settings(3));
    same.push_at(2 * S, 0, &[frame(A, B, 4)]);
    assert_eq!(same.outputs(), [vec![], vec![], vec![(A, B, 4)]], "B known");
    assert_eq!(same.stat("learned"), 3);
    assert_eq!(same.stat("port0.rx"), 2, "port counters carry on");
    // Two ports now, shorter aging: C (port 2 gone) is dropped, A and B
    // are learned again with the new lifetime.
    let mut s = settings(2);
    s.aging_ns = 5 * S;
    let mut fewer = reloaded(&mut same, s);
    assert_eq!(fewer.stat("entries"), 2);
    fewer.push_at(3 * S, 1, &[frame(B, A, 5)]);
    assert_eq!(fewer.outputs(), [vec![(B, A, 5)], vec![]], "A known on 0");
    // A was last seen at 2 s: with 5 s aging it has expired at 8 s.
    fewer.push_at(8 * S, 1, &[frame(B, A, 6)]);
    assert_eq!(fewer.stat("port1.flooded"), 1);
}

#[test]
fn handlers_list_the_table_and_flush_it() {
    use hpio_nf::element::{HandlerCx, HandlerKind};
    use serde_json::json;
    let mut rig = Rig::new(settings(2));
    rig.push_at(S, 0, &[frame(A, B, 1)]);
    rig.push_at(2 * S + S / 2, 1, &[frame(B, A, 2)]);
    let cx = HandlerCx::new(3 * S, 0);
    assert_eq!(
        rig.br.read("table", &cx),
        Ok(json!([
            {"mac": "02:00:00:00:00:0a", "port": 0, "age": 2.0},
            {"mac": "02:00:00:00:00:0b", "port": 1, "age": 0.5},
        ]))
    );
    // Expired entries are not listed.
    let late = HandlerCx::new(11 * S + S / 4, 0);
    assert_eq!(
        rig.br
            .read("table", &late)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(rig.br.write("flush", "", &cx), Ok(json!({"removed": 2})));
    assert_eq!(rig.br.read("table", &cx), Ok(json!([])));
    assert_eq!(rig.stat("entries"), 0);
    // Forgotten: A's frames to B are flooded again.
    rig.outputs();
    rig.push_at(3 * S, 0, &[frame(A, B, 3)]);
    assert_eq!(rig.stat("port0.flooded"), 2, "the first frame and this one");
    // Every declared handler answers; the others do not exist.
    for h in CLASS.info.handlers {
        let r = match h.kind {
            HandlerKind::Read => rig.br.read(h.name, &cx),
            HandlerKind::Write => rig.br.write(h.name, "", &cx),
        };
        assert!(r.is_ok(), "{}", h.name);
    }
    assert!(rig.br.read("flush", &cx).is_err());
}
