//! Live tests of the `af_packet` (and `auto`) port drivers over veth pairs,
//! through the public API only. They need root (CAP_NET_RAW, CAP_NET_ADMIN)
//! and the `ip` command (without them each test prints a `SKIPPED:` line,
//! or fails under `HPIO_NF_REQUIRE_ALL=1`: see the testkit crate); each test
//! makes its own veth pair with a unique name and removes it on drop, even
//! when the test fails.
//!
//! Both ends of a pair stay in the host namespace with IPv6 off, so the
//! kernel sends nothing on them by itself; frames are also told apart by a
//! source MAC unique to the test.
//!
//! The throughput measurements are ignored tests, in `af_packet/bench.rs`:
//! `cargo test --release -p hpio-nf --test af_packet -- --ignored --nocapture --test-threads=1 bench`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hpio_nf::config::Config;
use hpio_nf::packet::{Batch, Packet, Pool};
use hpio_nf::port::{OpenPort, Recv, RxQueue, TxQueue};
use hpio_nf::runtime::{self, RunOptions};
use testkit::frame::{Frame, Ip};
use testkit::net::{self, Netns, Veth};

/// The ways of receiving (`rx_mode`).
const RX_MODES: [&str; 3] = ["mmsg", "tpacket_v2", "tpacket_v3"];

/// The throughput measurements (ignored tests).
#[path = "af_packet/bench.rs"]
mod bench;

/// Whether live test `test` can run here (root and `ip`); see the testkit crate.
fn live(test: &str) -> bool {
    testkit::require(test, &[testkit::Need::Root, testkit::Need::Command("ip")])
}

/// A veth pair `hn{tag}{pid}a`/`…b` (`tag` at most 4 characters), both
/// ends down; deleted on drop.
fn veth_down(tag: &str) -> Veth {
    assert!(tag.len() <= 4);
    Veth::new(&net::unique("hn", tag, "a"), &net::unique("hn", tag, "b"))
}

/// [`veth_down`] with both ends up.
fn veth_up(tag: &str) -> Veth {
    veth_down(tag).up()
}

/// Configures a port from the body of its `[ports.p]` table, the way a
/// config file does (defaults filled in by the loader).
fn port(body: &str) -> Config {
    let text = format!("connections = [\"p -> p\"]\n[ports.p]\n{body}\n");
    Config::parse_builtin(&text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn open(body: &str, workers: usize, rx: bool, tx: bool) -> Result<OpenPort, String> {
    let cfg = port(body);
    cfg.ports[0]
        .spec
        .open("p", workers, rx, tx)
        .map_err(|e| e.to_string())
}

fn af_packet(ifname: &str, extra: &str) -> String {
    format!("driver = \"af_packet\"\ninterface = \"{ifname}\"\n{extra}")
}

/// A source MAC unique to this process and `tag`: tells our frames apart.
fn src_mac(tag: u8) -> [u8; 6] {
    let pid = std::process::id().to_be_bytes();
    [0x02, tag, pid[0], pid[1], pid[2], pid[3]]
}

/// UDP/IPv4 frame number `seq` of flow `flow`, `payload` bytes (>= 4) long.
fn udp_frame(mac: [u8; 6], flow: u16, seq: u32, payload: usize) -> Vec<u8> {
    tagged_udp_frame(mac, &[], flow, seq, payload)
}

/// [`udp_frame`] with 802.1Q tags of VLAN ids `vids` (none, one, or two: QinQ).
fn tagged_udp_frame(mac: [u8; 6], vids: &[u16], flow: u16, seq: u32, payload: usize) -> Vec<u8> {
    let src = [10, 9, (flow >> 8) as u8, flow as u8];
    let mut f = Frame::udp(Ip::v4(src, [10, 9, 255, 1]), 10_000 + flow, 9)
        .macs(mac, [0x02, 0, 0, 0, 0, 0xfe]);
    for &v in vids.iter().take(2) {
        f = f.vlan(v);
    }
    let mut data = vec![0u8; payload.max(4)];
    data[..4].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in data.iter_mut().enumerate().skip(4) {
        *b = (i as u32 ^ seq) as u8;
    }
    f.payload(&data).build()
}

/// (flow, seq) of one of our frames, parsed by etherparse; `None` for others.
fn decode(mac: [u8; 6], frame: &[u8]) -> Option<(u16, u32)> {
    let p = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    match p.link? {
        etherparse::LinkSlice::Ethernet2(e) if e.source() == mac => {}
        _ => return None,
    }
    let Some(etherparse::TransportSlice::Udp(u)) = p.transport else {
        return None;
    };
    let seq = u32::from_be_bytes(u.payload().get(..4)?.try_into().ok()?);
    Some((u.source_port() - 10_000, seq))
}

/// Sends `frames` through `tx`, `burst` at a time.
fn send_all(tx: &mut dyn TxQueue, frames: &[Vec<u8>], burst: usize) {
    let mut pool = Pool::new(burst);
    let mut batch = Batch::new();
    for chunk in frames.chunks(burst) {
        for f in chunk {
            let mut p = pool.alloc().unwrap();
            p.set_frame(f);
            batch.push(p);
        }
        tx.send(&mut pool, &mut batch).unwrap();
        assert!(batch.is_empty());
        assert_eq!(pool.available(), burst, "slots back in the pool");
    }
}

/// Sends `frames` like [`send_all`], but keeps at most `window` frames
/// ahead of what the receiver reports in `received`: a debug-build
/// receiver on a busy machine must not fall so far behind that its socket
/// buffer overflows (these tests check delivery, not speed).
fn send_paced(
    tx: &mut dyn TxQueue,
    frames: &[Vec<u8>],
    burst: usize,
    received: &AtomicUsize,
    window: usize,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for (i, chunk) in frames.chunks(burst).enumerate() {
        while i * burst > received.load(Ordering::Relaxed) + window && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(100));
        }
        send_all(tx, chunk, burst);
    }
}

/// Receives from every queue of `rx` (round robin) until `want` of our frames
/// arrived or `wait` passed; returns our frames per queue.
fn recv_ours(
    rx: &mut [Box<dyn RxQueue>],
    mac: [u8; 6],
    want: usize,
    wait: Duration,
) -> Vec<Vec<Packet>> {
    recv_counting(rx, mac, want, wait, &AtomicUsize::new(0))
}

/// [`recv_ours`], publishing the count so far in `received`.
fn recv_counting(
    rx: &mut [Box<dyn RxQueue>],
    mac: [u8; 6],
    want: usize,
    wait: Duration,
    received: &AtomicUsize,
) -> Vec<Vec<Packet>> {
    let mut pool = Pool::new(4096);
    let mut batch = Batch::new();
    let mut out: Vec<Vec<Packet>> = rx.iter().map(|_| Vec::new()).collect();
    let deadline = Instant::now() + wait;
    let mut got = 0;
    while got < want && Instant::now() < deadline {
        let mut idle = true;
        for (q, queue) in rx.iter_mut().enumerate() {
            match queue.recv(&mut pool, &mut batch, 64).unwrap() {
                Recv::Got(0) => {}
                Recv::Got(_) => idle = false,
                Recv::Ended => panic!("a live port never ends"),
            }
            for p in batch.drain(..) {
                if decode(mac, p.data()).is_some() {
                    got += 1;
                    out[q].push(p);
                } else {
                    pool.free(p);
                }
            }
        }
        received.store(got, Ordering::Relaxed);
        if idle {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    out
}

#[test]
fn frames_sent_on_one_end_arrive_byte_for_byte_on_the_other() {
    if !live("frames_sent_on_one_end_arrive_byte_for_byte_on_the_other") {
        return;
    }
    let v = veth_up("byte");
    for mode in RX_MODES {
        byte_for_byte(&v, mode);
    }
}

fn byte_for_byte(v: &Veth, mode: &str) {
    let mac = src_mac(1);
    let mut a = open(&af_packet(&v.a, ""), 1, false, true).unwrap();
    let mut b = open(
        &af_packet(&v.b, &format!("rx_mode = \"{mode}\"")),
        1,
        true,
        false,
    )
    .unwrap();
    assert_eq!(
        (a.driver.as_str(), b.driver.as_str()),
        ("af_packet", "af_packet")
    );
    const N: usize = 3000;
    // Every size from the minimum to a full 1500-byte MTU frame; some with
    // a VLAN tag or two, which Linux takes out of the frame on receive and
    // the driver must put back.
    let frames: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let (flow, seq, payload) = ((i % 7) as u16, i as u32, 18 + (i * 37) % 1455);
            match i % 10 {
                3 => tagged_udp_frame(mac, &[(i % 4094) as u16 + 1], flow, seq, payload),
                7 => tagged_udp_frame(mac, &[100, 200], flow, seq, payload.min(1464)),
                _ => udp_frame(mac, flow, seq, payload),
            }
        })
        .collect();
    assert_eq!(frames[3][12..14], [0x81, 0x00]);
    let received = Arc::new(AtomicUsize::new(0));
    let receiver = {
        let mut rx = std::mem::take(&mut b.rx);
        let received = received.clone();
        std::thread::spawn(move || {
            recv_counting(&mut rx, mac, N, Duration::from_secs(10), &received)
        })
    };
    let start_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    send_paced(&mut *a.tx[0], &frames, 32, &received, 1000);
    let got = receiver.join().unwrap().pop().unwrap();
    let s = a.tx[0].stats();
    assert_eq!((s.packets, s.drops, s.errors), (N as u64, 0, 0));
    assert_eq!(s.bytes, frames.iter().map(|f| f.len() as u64).sum::<u64>());
    assert_eq!(got.len(), N, "rx_mode {mode}: every frame arrives");
    let mut seen = BTreeSet::new();
    for p in &got {
        let (_, seq) = decode(mac, p.data()).unwrap();
        assert!(seen.insert(seq), "frame {seq} arrived twice");
        assert_eq!(p.data(), &frames[seq as usize][..], "frame {seq} intact");
        assert_eq!(p.wire_len(), p.len());
        assert!(p.timestamp() >= start_ns, "wall-clock receive time");
    }
}

#[test]
fn frames_the_port_sends_are_not_read_back() {
    if !live("frames_the_port_sends_are_not_read_back") {
        return;
    }
    let v = veth_up("echo");
    let mac = src_mac(2);
    // With qdisc bypass the kernel hides sent frames from packet taps
    // anyway; through the qdisc layer only PACKET_IGNORE_OUTGOING does.
    for (bypass, mode) in [
        ("true", "mmsg"),
        ("false", "mmsg"),
        ("false", "tpacket_v2"),
        ("false", "tpacket_v3"),
    ] {
        // One port that both receives and transmits on `a`.
        let extra = format!("qdisc_bypass = {bypass}\nrx_mode = \"{mode}\"");
        let mut a = open(&af_packet(&v.a, &extra), 1, true, true).unwrap();
        let mut b = open(&af_packet(&v.b, ""), 1, true, false).unwrap();
        const N: usize = 500;
        let frames: Vec<Vec<u8>> = (0..N).map(|i| udp_frame(mac, 0, i as u32, 100)).collect();
        send_all(&mut *a.tx[0], &frames, 32);
        // They did go out: the other end has them all.
        let at_b: usize = recv_ours(&mut b.rx, mac, N, Duration::from_secs(5))
            .iter()
            .map(Vec::len)
            .sum();
        assert_eq!(at_b, N);
        let at_a: usize = recv_ours(&mut a.rx, mac, 1, Duration::from_millis(300))
            .iter()
            .map(Vec::len)
            .sum();
        assert_eq!(at_a, 0, "{extra}: the port read back its own frames");
    }
}

#[test]
fn fanout_spreads_flows_over_queues_and_loses_none() {
    if !live("fanout_spreads_flows_over_queues_and_loses_none") {
        return;
    }
    let v = veth_up("fan");
    for mode in RX_MODES {
        fanout(&v, mode);
    }
}

fn fanout(v: &Veth, mode: &str) {
    let mac = src_mac(3);
    let mut a = open(&af_packet(&v.a, ""), 1, false, true).unwrap();
    let extra = format!("queues = 2\nrx_mode = \"{mode}\"");
    let mut b = open(&af_packet(&v.b, &extra), 1, true, false).unwrap();
    assert_eq!(b.rx.len(), 2);
    const FLOWS: usize = 64;
    const N: usize = 64 * 40;
    let frames: Vec<Vec<u8>> = (0..N)
        .map(|i| udp_frame(mac, (i % FLOWS) as u16, i as u32, 64))
        .collect();
    let received = Arc::new(AtomicUsize::new(0));
    let receiver = {
        let mut rx = std::mem::take(&mut b.rx);
        let received = received.clone();
        std::thread::spawn(move || {
            recv_counting(&mut rx, mac, N, Duration::from_secs(10), &received)
        })
    };
    send_paced(&mut *a.tx[0], &frames, 64, &received, 1000);
    let per_queue = receiver.join().unwrap();
    let total: usize = per_queue.iter().map(Vec::len).sum();
    assert_eq!(
        total, N,
        "{mode}: no frame lost or duplicated by the fanout"
    );
    let mut queue_of_flow: BTreeMap<u16, usize> = BTreeMap::new();
    let mut seqs = BTreeSet::new();
    for (q, pkts) in per_queue.iter().enumerate() {
        assert!(
            pkts.len() >= N / 8,
            "queue {q} got {} of {N}: flows are not spread",
            pkts.len()
        );
        for p in pkts {
            let (flow, seq) = decode(mac, p.data()).unwrap();
            assert!(seqs.insert(seq));
            let prev = queue_of_flow.insert(flow, q);
            assert!(
                prev.is_none() || prev == Some(q),
                "flow {flow} on both queues"
            );
        }
    }
    assert_eq!(queue_of_flow.len(), FLOWS);
}

/// The kernel's promiscuity count of `ifname` (`ip -d link`).
fn promiscuity(ifname: &str) -> u64 {
    let out = Command::new("ip")
        .args(["-d", "-j", "link", "show", "dev", ifname])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["promiscuity"].as_u64().unwrap()
}

#[test]
fn promiscuous_mode_is_on_exactly_while_the_port_is_open() {
    if !live("promiscuous_mode_is_on_exactly_while_the_port_is_open") {
        return;
    }
    let v = veth_up("prom");
    assert_eq!(promiscuity(&v.a), 0);
    let port = open(&af_packet(&v.a, "queues = 2"), 1, true, true).unwrap();
    assert_eq!(promiscuity(&v.a), 1);
    drop(port);
    assert_eq!(promiscuity(&v.a), 0, "released when the sockets close");
    let port = open(&af_packet(&v.a, "promisc = false"), 1, true, true).unwrap();
    assert_eq!(promiscuity(&v.a), 0);
    drop(port);
    // A port that only transmits leaves it alone.
    let _port = open(&af_packet(&v.a, ""), 1, false, true).unwrap();
    assert_eq!(promiscuity(&v.a), 0);
}

#[test]
fn missing_interface_and_down_link_are_one_line_errors() {
    if !live("missing_interface_and_down_link_are_one_line_errors") {
        return;
    }
    let pid = std::process::id() % 100_000;
    let missing = format!("hnnone{pid}");
    assert_eq!(
        open(&af_packet(&missing, ""), 1, true, true).err().unwrap(),
        format!("port `p`: no interface `{missing}` (check `ip link`)")
    );
    let v = veth_down("down");
    for (rx, tx) in [(true, false), (false, true)] {
        assert_eq!(
            open(&af_packet(&v.a, ""), 1, rx, tx).err().unwrap(),
            format!(
                "port `p`: interface `{}` is down: `ip link set {} up`",
                v.a, v.a
            )
        );
    }
    // Up with its peer down: no carrier, but it opens (and warns).
    net::ip(&["link", "set", &v.a, "up"]);
    assert!(open(&af_packet(&v.a, ""), 1, true, true).is_ok());
    // `auto` gives the same errors.
    assert_eq!(
        open(
            &format!("driver = \"auto\"\ninterface = \"{missing}\""),
            1,
            true,
            false
        )
        .err()
        .unwrap(),
        format!("port `p`: no interface `{missing}` (check `ip link`)")
    );
}

#[test]
fn link_down_while_running_is_counted_and_a_deleted_interface_is_followed() {
    if !live("link_down_while_running_is_counted_and_a_deleted_interface_is_followed") {
        return;
    }
    for mode in ["tpacket_v2", "tpacket_v3", "mmsg"] {
        link_down_then_deleted(mode);
    }
}

fn link_down_then_deleted(mode: &str) {
    let v = veth_up("lost");
    let mac = src_mac(4);
    let extra = format!("rx_mode = \"{mode}\"");
    let mut a = open(&af_packet(&v.a, &extra), 1, true, true).unwrap();
    let mut b = open(&af_packet(&v.b, &extra), 1, true, false).unwrap();
    let frames: Vec<Vec<u8>> = (0..10).map(|i| udp_frame(mac, 0, i, 64)).collect();
    net::ip(&["link", "set", &v.a, "down"]);
    send_all(&mut *a.tx[0], &frames, 10);
    let s = a.tx[0].stats();
    assert_eq!((s.packets, s.drops), (0, 10), "{mode}: {s:?}");
    assert!(s.errors >= 1);
    // Receiving on a down link: nothing, no failure, for longer than the
    // receive queue's watch waits between looks at the interface.
    let mut pool = Pool::new(64);
    let mut batch = Batch::new();
    let until = Instant::now() + Duration::from_millis(400);
    while Instant::now() < until {
        assert_eq!(
            a.rx[0].recv(&mut pool, &mut batch, 32).unwrap(),
            Recv::Got(0),
            "{mode}"
        );
        std::thread::sleep(Duration::from_micros(50));
    }
    let (name_a, name_b) = (v.a.clone(), v.b.clone());
    drop(v);
    // Deleted: what is sent is dropped and counted, the run goes on...
    let before = a.tx[0].stats();
    let mut p = pool.alloc().unwrap();
    p.set_frame(&frames[0]);
    batch.push(p);
    a.tx[0].send(&mut pool, &mut batch).unwrap();
    assert!(batch.is_empty());
    let s = a.tx[0].stats();
    assert_eq!(s.drops, before.drops + 1, "{mode}: {s:?}");
    assert!(s.errors > before.errors, "{mode}: {s:?}");
    // ...and idle receive queues wait for the interface, without an
    // error, whether their link was down (a) or up (b) when it went...
    let until = Instant::now() + Duration::from_millis(400);
    while Instant::now() < until {
        for rx in [&mut a.rx[0], &mut b.rx[0]] {
            assert_eq!(
                rx.recv(&mut pool, &mut batch, 32).unwrap(),
                Recv::Got(0),
                "{mode}"
            );
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    assert_eq!(pool.available(), 64, "{mode}: every slot back");
    // ...then follow it when it is created again: frames flow from a to b.
    let _v = Veth::new(&name_a, &name_b).up();
    let until = Instant::now() + Duration::from_secs(5);
    let mut got = 0;
    while got == 0 {
        assert!(
            Instant::now() < until,
            "{mode}: no frame after the re-creation"
        );
        let mut p = pool.alloc().unwrap();
        p.set_frame(&frames[1]);
        batch.push(p);
        a.tx[0].send(&mut pool, &mut batch).unwrap();
        let _ = a.rx[0].recv(&mut pool, &mut batch, 32).unwrap();
        let start = batch.len();
        b.rx[0].recv(&mut pool, &mut batch, 32).unwrap();
        got += batch[start..]
            .iter()
            .filter(|p| decode(mac, p.data()) == Some((0, 1)))
            .count();
        pool.free_batch(&mut batch);
        // As a worker that sleeps between polls: it calls `slept` after
        // each sleep (its 1,024 empty receives would take over 5 s here).
        std::thread::sleep(Duration::from_millis(5));
        a.rx[0].slept().unwrap();
        b.rx[0].slept().unwrap();
    }
    assert!(a.tx[0].stats().packets >= 1, "{mode}");
    assert_eq!(pool.available(), 64, "{mode}: every slot back");
}

/// Run by `without_cap_net_raw_open_says_what_is_needed` in a child process
/// that has no CAP_NET_RAW; does nothing when run directly.
#[test]
#[ignore = "helper: run by without_cap_net_raw_open_says_what_is_needed"]
fn helper_open_without_cap_net_raw() {
    if std::env::var_os("HPIO_NF_TEST_NO_CAP").is_none() {
        return;
    }
    for driver in ["af_packet", "auto"] {
        let e = open(
            &format!("driver = \"{driver}\"\ninterface = \"lo\""),
            1,
            true,
            true,
        )
        .err()
        .unwrap();
        assert_eq!(
            e,
            "port `p`: AF_PACKET sockets need root or CAP_NET_RAW \
             (run as root, or `setcap cap_net_raw,cap_net_admin+ep` on the binary)"
        );
    }
}

#[test]
fn without_cap_net_raw_open_says_what_is_needed() {
    let needs = [testkit::Need::Root, testkit::Need::Command("setpriv")];
    if !testkit::require("without_cap_net_raw_open_says_what_is_needed", &needs) {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-net_raw", "--inh-caps", "-net_raw"])
        .arg(&exe)
        .args([
            "--exact",
            "helper_open_without_cap_net_raw",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HPIO_NF_TEST_NO_CAP", "1")
        .output()
        .expect("run setpriv (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_graph_runs_over_a_veth_pair_with_auto_picking_af_xdp() {
    if !live("a_graph_runs_over_a_veth_pair_with_auto_picking_af_xdp") {
        return;
    }
    let v = veth_up("run");
    const N: u64 = 2000;
    let text = format!(
        "connections = [\"gen -> a\", \"b -> count -> discard\"]\n\
         [runtime]\nworkers = 1\n\
         [ports.gen]\ndriver = \"generator\"\ncount = {N}\nsize = 128\nsrc_port_count = 50\n\
         [ports.a]\ndriver = \"af_packet\"\ninterface = \"{}\"\n\
         [ports.b]\ndriver = \"auto\"\ninterface = \"{}\"\n\
         [elements.count]\nclass = \"Counter\"\n",
        v.a, v.b
    );
    let cfg = Config::parse_builtin(&text, "run.toml").unwrap_or_else(|e| panic!("{e}"));
    let ports = cfg
        .ports
        .iter()
        .map(|p| p.spec.open(&p.name, 1, p.rx_used, p.tx_used).unwrap())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        workers: 1,
        stats_interval: Some(Duration::from_millis(20)),
        stop: stop.clone(),
        ..RunOptions::default()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = runtime::run(&cfg.graph, ports, &opts, |r| {
        if r.ports[2].rx.packets >= N || Instant::now() > deadline {
            stop.store(true, Ordering::Relaxed);
        }
    })
    .unwrap();
    let by_name = |n: &str| report.ports.iter().find(|p| p.name == n).unwrap();
    assert_eq!(by_name("a").driver, "af_packet");
    assert_eq!(
        by_name("b").driver,
        "af_xdp",
        "auto without hpio, AF_XDP next"
    );
    assert_eq!(by_name("a").tx.packets, N);
    assert_eq!(by_name("b").rx.packets, N, "{report}");
    assert_eq!(by_name("b").rx.bytes, N * 128);
    assert_eq!(by_name("b").driver_stats["rx_kernel_drops"], 0);
}

/// Two network namespaces, each with a veth whose peer stays in the host
/// namespace; all deleted on drop.
struct Namespaces {
    ns: [String; 2],
    host: [String; 2],
    /// The veth ends inside the namespaces.
    inner: [String; 2],
    /// The pairs (deleted first), then the namespaces.
    _guards: Vec<(Veth, Netns)>,
}

impl Namespaces {
    /// Namespaces `hn{tag}{pid}x`/`y` holding `…p`/`…q` (10.77.`net`.1 and
    /// .2), peers `…a`/`…b` up in the host namespace, with no address.
    /// Offloads stay as Linux sets them (checksum, TSO, GSO on): segments
    /// from the namespaces' stacks reach the peers with partial checksums,
    /// and TCP sends reach them as super-frames of up to 64 KiB.
    fn new(tag: &str, net: u8) -> Namespaces {
        assert!(tag.len() <= 4);
        let name = |s: &str| net::unique("hn", tag, s);
        let mut n = Namespaces {
            ns: [name("x"), name("y")],
            host: [name("a"), name("b")],
            inner: [name("p"), name("q")],
            _guards: Vec::new(),
        };
        for i in 0..2 {
            let ns = Netns::new(&n.ns[i]);
            let inner = &n.inner[i];
            let veth = Veth::with_b_in(&n.host[i], inner, &ns).up();
            ns.run(&[
                "ip",
                "addr",
                "add",
                &format!("10.77.{net}.{}/24", i + 1),
                "dev",
                inner,
            ]);
            let features = ns.run(&["ethtool", "-k", inner]);
            assert!(
                features.contains("tx-checksumming: on")
                    && features.contains("tcp-segmentation-offload: on"),
                "checksum and segmentation offloads must be on: {features}"
            );
            n._guards.push((veth, ns));
        }
        n
    }
}

/// `ethtool -K IFNAME SETTINGS...`, in namespace `ns` or the host's.
fn ethtool(ns: Option<&str>, ifname: &str, settings: &[&str]) {
    let mut c = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "ethtool"]);
            c
        }
        None => Command::new("ethtool"),
    };
    let out = c
        .arg("-K")
        .arg(ifname)
        .args(settings)
        .output()
        .expect("run ethtool");
    assert!(
        out.status.success(),
        "ethtool -K {ifname} {settings:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// TCP from one namespace to the other through hpio-nf forwarding between
/// the host-side peers, in every receive mode, offloads on: the namespaces'
/// stacks hand their segments over with partial checksums, which the driver
/// must finish, or the receiving stack drops them (ping would still work),
/// and their sends as 64 KiB super-frames, which the driver must cut into
/// wire-sized segments (none may be cut short).
#[test]
fn tcp_between_namespaces_through_forwarded_veth_peers() {
    if !live("tcp_between_namespaces_through_forwarded_veth_peers") {
        return;
    }
    // Each mode with the senders' TSO; then wire segments merged by GRO on
    // the receiving (host-side) veth, the senders' TSO and GSO off.
    let cases = RX_MODES
        .iter()
        .map(|m| (*m, false))
        .chain([("tpacket_v2", true)]);
    for (i, (mode, gro)) in cases.enumerate() {
        let n = Namespaces::new(&format!("ck{i}"), 10 + i as u8);
        if gro {
            for k in 0..2 {
                ethtool(Some(&n.ns[k]), &n.inner[k], &["tso", "off", "gso", "off"]);
                ethtool(None, &n.host[k], &["gro", "on"]);
            }
        }
        let text = format!(
            "connections = [\"a -> b\", \"b -> a\"]\n\
             [runtime]\nworkers = 1\n\
             [ports.a]\ndriver = \"af_packet\"\ninterface = \"{}\"\nrx_mode = \"{mode}\"\n\
             [ports.b]\ndriver = \"af_packet\"\ninterface = \"{}\"\nrx_mode = \"{mode}\"\n",
            n.host[0], n.host[1]
        );
        let cfg = Config::parse_builtin(&text, "bridge.toml").unwrap_or_else(|e| panic!("{e}"));
        let ports = cfg
            .ports
            .iter()
            .map(|p| p.spec.open(&p.name, 1, p.rx_used, p.tx_used).unwrap())
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let opts = RunOptions {
            workers: 1,
            stats_interval: Some(Duration::from_millis(20)),
            stop: stop.clone(),
            ..RunOptions::default()
        };
        let (report, client) = std::thread::scope(|s| {
            let run = s.spawn(|| runtime::run(&cfg.graph, ports, &opts, |_| {}).unwrap());
            let client = tcp_transfer(&n, 10 + i as u8, 2_000_000);
            stop.store(true, Ordering::Relaxed);
            (run.join().unwrap(), client)
        });
        assert_eq!(
            client, "OK",
            "rx_mode {mode}: TCP through the bridge\n{report}"
        );
        for p in &report.ports {
            let d = &p.driver_stats;
            assert!(
                d["rx_csum_completed"] > 0,
                "rx_mode {mode}: port {} finished no checksum\n{report}",
                p.name
            );
            assert_eq!(d["rx_truncated"], 0, "rx_mode {mode}\n{report}");
            for reason in ["bad_type", "malformed", "oversize", "no_slots"] {
                assert_eq!(
                    d[&format!("rx_gso_{reason}")],
                    0,
                    "rx_mode {mode}\n{report}"
                );
            }
        }
        // The client's data reached `a` as super-frames, cut into segments.
        let a = &report.ports[0].driver_stats;
        assert!(
            a["rx_gso_frames"] > 0 && a["rx_gso_segments"] > a["rx_gso_frames"],
            "rx_mode {mode}: no super-frame seen\n{report}"
        );
    }
}

/// Sends `bytes` over TCP from the first namespace to a server in the
/// second, which answers with their SHA-256; returns what the client says
/// ("OK", or what went wrong).
fn tcp_transfer(n: &Namespaces, net: u8, bytes: usize) -> String {
    let server = format!(
        "import socket,hashlib\n\
         s=socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('10.77.{net}.2',5001))\n\
         s.listen(1)\n\
         s.settimeout(15)\n\
         c,_=s.accept()\n\
         c.settimeout(10)\n\
         h=hashlib.sha256()\n\
         k=0\n\
         while k<{bytes}:\n    d=c.recv(65536)\n    if not d: break\n    h.update(d)\n    k+=len(d)\n\
         c.sendall(h.hexdigest().encode())\n\
         c.close()\n"
    );
    let client = format!(
        "import socket,hashlib,time\n\
         data=bytes((i*7+3)%251 for i in range({bytes}))\n\
         t=time.time()+8\n\
         while True:\n    try:\n        c=socket.create_connection(('10.77.{net}.2',5001),timeout=2)\n        break\n    except OSError as e:\n        if time.time()>t:\n            print('connect:',e)\n            raise SystemExit\n        time.sleep(0.1)\n\
         c.settimeout(10)\n\
         c.sendall(data)\n\
         r=b''\n\
         while len(r)<64:\n    d=c.recv(100)\n    if not d: break\n    r+=d\n\
         print('OK' if r.decode()==hashlib.sha256(data).hexdigest() else 'bad reply %r'%r)\n"
    );
    let py = |ns: &str, script: &str| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, "python3", "-c", script]);
        c
    };
    let mut srv = py(&n.ns[1], &server).spawn().expect("start the server");
    // Let the server listen (the client retries anyway).
    std::thread::sleep(Duration::from_millis(300));
    let out = py(&n.ns[0], &client).output().expect("run the client");
    if srv.try_wait().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(200));
        let _ = srv.kill();
    }
    let _ = srv.wait();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}
