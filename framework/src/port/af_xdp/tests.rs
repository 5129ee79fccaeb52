//! Tests of the af_xdp driver: parameters and errors, and the queues over
//! veth pairs (both ends in this namespace; the other end driven by the
//! af_packet driver), with exact counts.

use std::process::Command;
use std::time::{Duration, Instant};

use super::*;
use crate::config::Config;
use crate::element::{Registry, Value};
use crate::packet::{Batch, Pool};
use crate::port::{PortRegistry, Recv};
use testkit::net::{ip, unique, Veth};
use testkit::Need;

/// IEEE 802 "local experimental" EtherType: nothing else sends it.
const ETHERTYPE: [u8; 2] = [0x88, 0xb6];

fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&ETHERTYPE);
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f.iter_mut().enumerate().skip(18) {
        *b = (i as u32).wrapping_mul(7).wrapping_add(seq) as u8;
    }
    f
}

fn ours(f: &[u8]) -> Option<u32> {
    (f.len() >= 18 && f[12..14] == ETHERTYPE)
        .then(|| u32::from_be_bytes([f[14], f[15], f[16], f[17]]))
}

fn params(ifname: &str) -> Params {
    let mut p = Params::new();
    p.set("interface", Value::Str(ifname.into()))
        .set("queues", Value::Int(1))
        .set("xdp_mode", Value::Str("auto".into()))
        .set("zerocopy", Value::Str("auto".into()))
        .set("ring_size", Value::Int(256))
        .set("csum_fix", Value::Bool(true))
        .set("need_wakeup", Value::Bool(true));
    p
}

fn af_packet(ifname: &str) -> Box<dyn PortSpec> {
    let mut p = Params::new();
    p.set("interface", Value::Str(ifname.into()))
        .set("queues", Value::Int(1))
        .set("promisc", Value::Bool(true))
        .set("qdisc_bypass", Value::Bool(true))
        .set("fanout_defrag", Value::Bool(false))
        .set("rx_mode", Value::Str("tpacket_v2".into()))
        .set("vnet_hdr", Value::Bool(true))
        .set("socket_buffer", Value::Int(1 << 22));
    (crate::port::af_packet::CLASS.configure)(&p).unwrap()
}

/// Sends `frames` through `tx`, 32 at a time.
fn send(tx: &mut dyn TxQueue, frames: &[Vec<u8>]) {
    let mut pool = Pool::new(frames.len());
    let mut batch = Batch::new();
    for chunk in frames.chunks(32) {
        for f in chunk {
            let mut p = pool.alloc().unwrap();
            p.set_frame(f);
            batch.push(p);
        }
        tx.send(&mut pool, &mut batch).unwrap();
    }
}

/// Receives from `rx` until `want` of our frames arrived or 2 s passed;
/// returns their sequence numbers, checking their bytes.
fn recv(rx: &mut dyn RxQueue, want: usize, len: impl Fn(u32) -> usize) -> Vec<u32> {
    let mut pool = Pool::new(512);
    let mut batch = Batch::new();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.len() < want && Instant::now() < deadline {
        if rx.recv(&mut pool, &mut batch, 64).unwrap() == Recv::Got(0) {
            std::thread::sleep(Duration::from_millis(1));
        }
        for p in batch.drain(..) {
            if let Some(seq) = ours(p.data()) {
                assert_eq!(p.data(), &frame(seq, len(seq))[..], "frame {seq} changed");
                got.push(seq);
            }
            pool.free(p);
        }
    }
    got
}

fn link_show(ifname: &str) -> String {
    let out = Command::new("ip")
        .args(["link", "show", ifname])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn needs(test: &str) -> bool {
    testkit::require(test, &[Need::Root, Need::Command("ip")])
}

#[test]
fn loader_fills_defaults_and_checks_values() {
    let load = |port: &str| {
        let text = format!("connections = [\"x -> x\"]\n[ports.x]\n{port}\n");
        Config::parse_str(
            &text,
            "t.toml",
            &Registry::builtin(),
            &PortRegistry::builtin(),
            &[],
        )
        .map_err(|e| e.to_string())
    };
    let cfg = load("driver = \"af_xdp\"\ninterface = \"veth-none9\"").unwrap();
    let s = &cfg.ports[0].spec;
    assert_eq!(s.rx_queues(), 1);
    assert!(s.endless());
    assert_eq!(s.interface(), Some("veth-none9"));
    assert_eq!(
        s.describe(),
        "af_xdp: interface `veth-none9`, 1 queue(s), XDP auto, zero-copy auto, rings of 2048, \
         need-wakeup"
    );
    let cfg = load("driver = \"af_xdp\"\ninterface = \"eth1\"\nqueues = 4\nxdp_mode = \"generic\"")
        .unwrap();
    assert_eq!(cfg.ports[0].spec.rx_queues(), 4);
    for (bad, says) in [
        ("ring_size = 1000", "power of two"),
        ("queues = 0", "queues"),
        ("xdp_mode = \"fast\"", "xdp_mode"),
        ("zerocopy = \"maybe\"", "zerocopy"),
    ] {
        let e = load(&format!("driver = \"af_xdp\"\ninterface = \"eth1\"\n{bad}")).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
    let e = load("driver = \"af_xdp\"\ninterface = \"a/b\"").unwrap_err();
    assert!(e.contains("interface"), "{e}");
}

#[test]
fn a_missing_interface_is_one_clear_line() {
    let spec = AfXdpSpec::from_params(&params("afxnosuch0")).unwrap();
    let e = spec.open("lan", 1, true, true).err().unwrap();
    assert_eq!(
        e.to_string(),
        "port `lan`: no interface `afxnosuch0` (check `ip link`)"
    );
}

/// Both directions over a veth pair with exact counts and intact bytes;
/// the program is attached (native) while the port is open and gone after.
#[test]
fn frames_both_ways_over_veth() {
    if !needs("port::af_xdp::frames_both_ways_over_veth") {
        return;
    }
    let (a, b) = (unique("afx", "a", ""), unique("afx", "b", ""));
    let veth = Veth::new(&a, &b).up();
    let spec = AfXdpSpec::from_params(&params(&veth.a)).unwrap();
    let mut open = spec.open("x", 1, true, true).unwrap();
    assert_eq!(
        (open.driver.as_str(), open.rx.len(), open.tx.len()),
        ("af_xdp", 1, 1)
    );
    assert!(
        link_show(&veth.a).contains("prog/xdp "),
        "{}",
        link_show(&veth.a)
    );
    let stats = (open.driver_stats.as_ref().unwrap())();
    assert_eq!(
        (stats["xdp_native"], stats["zerocopy"]),
        (1, 0),
        "veth: native, copy"
    );
    let mut peer = af_packet(&veth.b).open("y", 1, true, true).unwrap();

    // Peer -> port: 1000 frames (more than the ring of 256 holds at once).
    let n = 1000;
    let frames: Vec<Vec<u8>> = (0..n).map(|i| frame(i, len_of(i))).collect();
    let mut got = Vec::new();
    for chunk in frames.chunks(200) {
        send(peer.tx[0].as_mut(), chunk);
        got.extend(recv(open.rx[0].as_mut(), chunk.len(), len_of));
    }
    assert_eq!(got, (0..n).collect::<Vec<_>>());
    let rs = open.rx[0].stats();
    assert_eq!((rs.packets, rs.drops), (u64::from(n), 0));

    // Port -> peer: 500 frames.
    let back: Vec<Vec<u8>> = (0..500).map(|i| frame(i, len_of(i))).collect();
    send(open.tx[0].as_mut(), &back);
    open.tx[0].finish().unwrap();
    let got = recv(peer.rx[0].as_mut(), 500, len_of);
    assert_eq!(got, (0..500).collect::<Vec<_>>());
    let ts = open.tx[0].stats();
    assert_eq!((ts.packets, ts.drops), (500, 0));

    // Too long for the MTU: dropped and counted, never sent.
    let long = frame(9999, 1600);
    send(open.tx[0].as_mut(), &[long]);
    let ts = open.tx[0].stats();
    assert_eq!((ts.packets, ts.drops, ts.oversize), (500, 1, 1));
    drop(open);
    assert!(
        !link_show(&veth.a).contains("xdp"),
        "{}",
        link_show(&veth.a)
    );
}

/// The length of test frame `seq` (60 to 1459 bytes).
fn len_of(seq: u32) -> usize {
    60 + (seq as usize % 1400)
}

/// Two queues: two sockets, each bound to its queue; the peer sends from
/// CPU 0 and CPU 1 (af_packet with qdisc bypass picks the queue by CPU),
/// and every frame arrives exactly once over the two queues. A third
/// queue the veth lacks is a clear error.
#[test]
fn two_queues_one_socket_each() {
    if !needs("port::af_xdp::two_queues_one_socket_each") {
        return;
    }
    let (a, b) = (unique("afx", "qa", ""), unique("afx", "qb", ""));
    testkit::net::ip_quiet(&["link", "del", &a]);
    ip(&[
        "link",
        "add",
        &a,
        "numtxqueues",
        "2",
        "numrxqueues",
        "2",
        "type",
        "veth",
        "peer",
        "name",
        &b,
        "numtxqueues",
        "2",
        "numrxqueues",
        "2",
    ]);
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            testkit::net::ip_quiet(&["link", "del", &self.0]);
        }
    }
    let _del = Del(a.clone());
    ip(&["link", "set", &a, "up"]);
    ip(&["link", "set", &b, "up"]);
    testkit::net::wait_up(&a);

    let mut p = params(&a);
    p.set("queues", Value::Int(3));
    let e = AfXdpSpec::from_params(&p)
        .unwrap()
        .open("x", 1, true, false)
        .err()
        .unwrap();
    assert!(e.to_string().contains("has no queue 2"), "{e}");

    p.set("queues", Value::Int(2));
    let mut open = AfXdpSpec::from_params(&p)
        .unwrap()
        .open("x", 2, true, true)
        .unwrap();
    assert_eq!((open.rx.len(), open.tx.len()), (2, 2));
    let mut peer = af_packet(&b).open("y", 1, false, true).unwrap();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let n = 200u32;
    for (k, core) in cores.iter().take(2).enumerate() {
        let frames: Vec<Vec<u8>> = (0..n).map(|i| frame(k as u32 * n + i, 100)).collect();
        let tx = peer.tx[0].as_mut();
        std::thread::scope(|s| {
            s.spawn(|| {
                core_affinity::set_for_current(*core);
                send(tx, &frames);
            });
        });
    }
    let want = n as usize * cores.len().min(2);
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut per_queue = [0usize; 2];
    let mut seqs = Vec::new();
    let mut pool = Pool::new(512);
    let mut batch = Batch::new();
    while seqs.len() < want && Instant::now() < deadline {
        for (q, rx) in open.rx.iter_mut().enumerate() {
            rx.recv(&mut pool, &mut batch, 64).unwrap();
            for pk in batch.drain(..) {
                if let Some(seq) = ours(pk.data()) {
                    per_queue[q] += 1;
                    seqs.push(seq);
                }
                pool.free(pk);
            }
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..want as u32).collect::<Vec<_>>());
    if cores.len() >= 2 {
        assert!(
            per_queue.iter().all(|&c| c > 0),
            "both queues used: {per_queue:?}"
        );
    }
}
