//! Unit tests of the af_packet driver: parameters, error messages, and the
//! queues over `lo` (the live tests over veth pairs are in `tests/af_packet.rs`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::config::Config;
use crate::element::Value;
use crate::packet::{Batch, Packet, Pool, MAX_FRAME};
use crate::port::Recv;
use crate::sys::MsgVec;

/// IEEE 802 "local experimental" EtherType: nothing else on `lo` uses it.
const ETHERTYPE: [u8; 2] = [0x88, 0xb6];

fn token() -> [u8; 8] {
    static N: AtomicU32 = AtomicU32::new(0);
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&std::process::id().to_be_bytes());
    t[4..].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    t
}

fn frame(token: [u8; 8], seq: u32, len: usize) -> Vec<u8> {
    testkit::frame::marked(u16::from_be_bytes(ETHERTYPE), &token, seq, len)
}

fn ours(token: [u8; 8], f: &[u8]) -> bool {
    // Past one VLAN tag, if any.
    let f = match f.get(12..14) {
        Some([0x81, 0x00] | [0x88, 0xa8]) => &f[4..],
        _ => f,
    };
    f.len() >= 26 && f[12..14] == ETHERTYPE && f[14..22] == token
}

use testkit::frame::tag;

fn params(ifname: &str) -> Params {
    let mut p = Params::new();
    p.set("interface", Value::Str(ifname.into()))
        .set("queues", Value::Int(1))
        .set("promisc", Value::Bool(false))
        .set("qdisc_bypass", Value::Bool(true))
        .set("fanout_defrag", Value::Bool(false))
        .set("rx_mode", Value::Str("mmsg".into()))
        .set("vnet_hdr", Value::Bool(true))
        .set("socket_buffer", Value::Int(1 << 20));
    p
}

fn spec(p: &Params) -> AfPacketSpec {
    AfPacketSpec::from_params(p).unwrap()
}

/// Sends `frames` on `lo` with a raw socket of the sys layer.
fn send_on_lo(frames: &[Vec<u8>]) {
    let s = PacketSocket::new().unwrap();
    s.bind(1, 0).unwrap();
    let mut msgs = MsgVec::new(64);
    let mut sent = 0;
    while sent < frames.len() {
        sent += s
            .send_batch(&mut msgs, frames[sent..].iter().map(|f| f.as_slice()))
            .unwrap();
    }
}

/// Receives from `rx` until `want` of our frames arrived or a second passed.
fn recv_ours(rx: &mut dyn RxQueue, pool: &mut Pool, token: [u8; 8], want: usize) -> Vec<Packet> {
    let mut out = Vec::new();
    let mut batch = Batch::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    while out.len() < want && Instant::now() < deadline {
        match rx.recv(pool, &mut batch, 32).unwrap() {
            Recv::Got(0) => std::thread::sleep(Duration::from_millis(1)),
            Recv::Got(n) => assert_eq!(n, batch.len()),
            Recv::Ended => panic!("a live port never ends"),
        }
        for p in batch.drain(..) {
            if ours(token, p.data()) {
                out.push(p);
            } else {
                pool.free(p);
            }
        }
    }
    out
}

#[test]
fn loader_fills_defaults_and_checks_values() {
    let load = |port: &str| {
        let text = format!("connections = [\"x -> x\"]\n[ports.x]\n{port}\n");
        Config::parse_builtin(&text, "t.toml").map_err(|e| e.to_string())
    };
    let cfg = load("driver = \"af_packet\"\ninterface = \"veth-none9\"").unwrap();
    let s = &cfg.ports[0].spec;
    assert_eq!(s.rx_queues(), 1);
    assert!(s.endless());
    assert_eq!(
        s.describe(),
        "af_packet: interface `veth-none9`, 1 queue, promiscuous, qdisc bypass, \
         rx by TPACKET_V2 ring"
    );
    let cfg = load(
        "driver = \"af_packet\"\ninterface = \"eth1\"\nqueues = 4\npromisc = false\n\
         qdisc_bypass = false\nfanout_defrag = true",
    )
    .unwrap();
    assert_eq!(cfg.ports[0].spec.rx_queues(), 4);
    for (mode, says) in [
        ("tpacket_v2", "TPACKET_V2 ring"),
        ("tpacket_v3", "TPACKET_V3 ring"),
        ("mmsg", "recvmmsg"),
    ] {
        let ring = load(&format!(
            "driver = \"af_packet\"\ninterface = \"eth1\"\nrx_mode = \"{mode}\""
        ))
        .unwrap();
        let d = ring.ports[0].spec.describe();
        assert!(d.ends_with(&format!(", rx by {says}")), "{d}");
    }
    assert_eq!(
        cfg.ports[0].spec.describe(),
        "af_packet: interface `eth1`, 4 queues (hash fanout, defrag), rx by TPACKET_V2 ring"
    );
    for (bad, what) in [
        (
            "driver = \"af_packet\"",
            "missing required parameter `interface`",
        ),
        (
            "driver = \"af_packet\"\ninterface = \"x\"\nqueues = 0",
            "queues",
        ),
        (
            "driver = \"af_packet\"\ninterface = \"x\"\nqueues = 257",
            "queues",
        ),
        (
            "driver = \"af_packet\"\ninterface = \"x\"\nsocket_buffer = 10",
            "socket_buffer",
        ),
        ("driver = \"af_packet\"\ninterface = \"\"", "empty string"),
        (
            "driver = \"af_packet\"\ninterface = \"a-very-long-name0\"",
            "at most 15 bytes",
        ),
        (
            "driver = \"af_packet\"\ninterface = \"eth0:1\"",
            "not a valid interface name",
        ),
        (
            "driver = \"af_packet\"\ninterface = \"a b\"",
            "not a valid interface name",
        ),
        (
            "driver = \"af_packet\"\ninterface = \"..\"",
            "not a valid interface name",
        ),
        (
            "driver = \"auto\"\ninterface = \"a/b\"",
            "not a valid interface name",
        ),
        (
            "driver = \"af_packet\"\ninterface = \"x\"\nrx_mode = \"mmap\"",
            "rx_mode",
        ),
    ] {
        let e = load(bad).unwrap_err();
        assert!(e.contains(what), "{bad}: {e}");
    }
}

#[test]
fn errors_name_the_port_and_the_fix() {
    let s = spec(&params("veth9"));
    let msg = |errno| {
        s.error("lan", "opening", io::Error::from_raw_os_error(errno))
            .to_string()
    };
    assert_eq!(
        msg(libc::EPERM),
        "port `lan`: AF_PACKET sockets need root or CAP_NET_RAW \
         (run as root, or `setcap cap_net_raw,cap_net_admin+ep` on the binary)"
    );
    assert_eq!(msg(libc::EACCES), msg(libc::EPERM));
    assert_eq!(
        msg(libc::ENODEV),
        "port `lan`: no interface `veth9` (check `ip link`)"
    );
    assert_eq!(
        msg(libc::ENETDOWN),
        "port `lan`: interface `veth9` is down: `ip link set veth9 up`"
    );
    assert!(msg(libc::ENOPROTOOPT).contains("Linux 4.20"));
    assert!(msg(libc::EIO).starts_with("port `lan`: opening on interface `veth9`: "));
    for m in [
        msg(libc::EPERM),
        msg(libc::ENODEV),
        msg(libc::ENETDOWN),
        msg(libc::EIO),
    ] {
        assert!(!m.contains('\n'), "one line: {m}");
    }
    // Opening a missing interface gives that message, before any socket.
    let e = spec(&params("hpnf-gone0"))
        .open("wan", 1, true, true)
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "port `wan`: no interface `hpnf-gone0` (check `ip link`)"
    );
}

#[test]
fn open_makes_the_queues_asked_for() {
    let _lo = crate::sys::lo_lock();
    let mut p = params("lo");
    p.set("queues", Value::Int(3));
    let s = spec(&p);
    let port = s.open("l", 2, true, true).unwrap();
    assert_eq!((port.rx.len(), port.tx.len()), (3, 2));
    assert_eq!(port.driver, "af_packet");
    let stats = (port.driver_stats.as_ref().unwrap())();
    assert_eq!(
        stats.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "rx_csum_completed",
            "rx_gso_bad_type",
            "rx_gso_frames",
            "rx_gso_malformed",
            "rx_gso_no_slots",
            "rx_gso_oversize",
            "rx_gso_segments",
            "rx_kernel_drops",
            "rx_truncated",
            "tx_full_drops",
            "tx_rejected",
            "tx_retries"
        ]
    );
    let port = s.open("l", 4, false, true).unwrap();
    assert_eq!((port.rx.len(), port.tx.len()), (0, 4));
    let stats = (port.driver_stats.as_ref().unwrap())();
    assert!(stats.keys().all(|k| k.starts_with("tx_")), "{stats:?}");
    let port = s.open("l", 4, true, false).unwrap();
    assert_eq!((port.rx.len(), port.tx.len()), (3, 0));
}

#[test]
fn receives_into_slots_drops_oversize_and_keeps_time() {
    let _lo = crate::sys::lo_lock();
    for mode in ["mmsg", "tpacket_v2", "tpacket_v3"] {
        // Default slots: the 4000-byte frame is dropped, counted oversize.
        receive_into_slots(mode, MAX_FRAME);
        // Jumbo slots: it passes whole.
        receive_into_slots(mode, 9216);
    }
}

fn receive_into_slots(mode: &str, slot: usize) {
    let mut p = params("lo");
    p.set("rx_mode", Value::Str(mode.into()));
    let port = spec(&p).open("l", 1, true, false).unwrap();
    // lo's MTU (65536) is over what a port asks for.
    assert_eq!(port.max_frame, MAX_PORT_FRAME);
    let mut rx = port.rx.into_iter().next().unwrap();
    let mut pool = Pool::with_max_frame(256, slot);
    let t = token();
    let frames: Vec<Vec<u8>> = (0..50)
        .map(|i| frame(t, i, 60 + i as usize * 29))
        .chain([
            frame(t, 50, 4000),
            tag(&frame(t, 51, 100), 0x8100, 0x2064),
            tag(&frame(t, 52, 100), 0x88a8, 0x0fff),
        ])
        .collect();
    let before = mmsg::now_ns();
    send_on_lo(&frames);
    let expected: Vec<&Vec<u8>> = frames.iter().filter(|f| f.len() <= slot).collect();
    let got = recv_ours(&mut *rx, &mut pool, t, expected.len());
    let after = mmsg::now_ns();
    assert_eq!(
        got.len(),
        expected.len(),
        "{mode}: each frame once (lo shows it twice), none over the slot"
    );
    for (p, f) in got.iter().zip(expected) {
        assert!(p.timestamp() >= before && p.timestamp() <= after);
        // VLAN tags included: the kernel takes them out, the driver puts them back.
        assert_eq!(p.data(), &f[..], "{mode}: whole, never cut");
        assert_eq!(p.wire_len(), f.len());
    }
    let s = rx.stats();
    let over = u64::from(slot < 4000);
    assert!(s.oversize >= over, "{mode}: {s:?}");
    assert!(
        s.drops >= s.oversize,
        "{mode}: oversize counts in drops: {s:?}"
    );
    assert_eq!(s.errors, 0, "{mode}: {s:?}");
    let d = (port.driver_stats.as_ref().unwrap())();
    if mode == "mmsg" {
        // recvmmsg into the slot: the kernel cut it (MSG_TRUNC).
        assert!(d["rx_truncated"] >= over, "{d:?}");
    }
}

#[test]
fn empty_pool_or_no_traffic_receive_nothing_and_lose_nothing() {
    let _lo = crate::sys::lo_lock();
    for mode in ["mmsg", "tpacket_v2", "tpacket_v3"] {
        empty_pool_or_no_traffic(mode);
    }
}

fn empty_pool_or_no_traffic(mode: &str) {
    let mut p = params("lo");
    p.set("rx_mode", Value::Str(mode.into()));
    let port = spec(&p).open("l", 1, true, false).unwrap();
    let mut rx = port.rx.into_iter().next().unwrap();
    let t = token();
    let frames: Vec<Vec<u8>> = (0..5).map(|i| frame(t, i, 100)).collect();
    send_on_lo(&frames);
    let mut empty = Pool::new(0);
    let mut batch = Batch::new();
    assert_eq!(rx.recv(&mut empty, &mut batch, 32).unwrap(), Recv::Got(0));
    // The frames waited in the socket.
    let mut pool = Pool::new(64);
    assert_eq!(recv_ours(&mut *rx, &mut pool, t, 5).len(), 5);
    // Unused slots went back to the pool (those received are held above).
    assert!(pool.available() >= 64 - 32 - 5);
    // Drained: nothing more of ours, and slots all come back.
    let mut pool = Pool::new(64);
    assert!(recv_ours(&mut *rx, &mut pool, t, 1).is_empty());
    assert_eq!(pool.available(), 64);
}

#[test]
fn full_socket_buffer_drops_show_in_stats() {
    let _lo = crate::sys::lo_lock();
    for mode in ["mmsg", "tpacket_v2", "tpacket_v3"] {
        full_buffer_drops(mode);
    }
}

fn full_buffer_drops(mode: &str) {
    let mut p = params("lo");
    p.set("socket_buffer", Value::Int(65536));
    p.set("rx_mode", Value::Str(mode.into()));
    let port = spec(&p).open("l", 1, true, false).unwrap();
    let rx = port.rx.into_iter().next().unwrap();
    let t = token();
    let frames: Vec<Vec<u8>> = (0..400).map(|i| frame(t, i, 1500)).collect();
    send_on_lo(&frames);
    let s = rx.stats();
    assert!(s.drops > 0, "{mode}: {s:?}");
    let d = (port.driver_stats.as_ref().unwrap())();
    assert_eq!(d["rx_kernel_drops"], s.drops);
    // Drops read once are kept, not lost to the kernel's reset-on-read.
    assert!(rx.stats().drops >= s.drops);
}

#[test]
fn transmits_batches_and_counts_refused_frames() {
    let _lo = crate::sys::lo_lock();
    let port = spec(&params("lo")).open("l", 1, false, true).unwrap();
    let mut tx = port.tx.into_iter().next().unwrap();
    // A receiver of our own: an af_packet port on lo.
    let rport = spec(&params("lo")).open("r", 1, true, false).unwrap();
    let mut rx = rport.rx.into_iter().next().unwrap();
    let t = token();
    let frames: Vec<Vec<u8>> = (0..100).map(|i| frame(t, i, 64 + i as usize)).collect();
    let mut pool = Pool::new(512);
    let mut batch = Batch::new();
    for (i, f) in frames.iter().enumerate() {
        let mut p = pool.alloc().unwrap();
        p.set_frame(f);
        batch.push(p);
        if i == 10 {
            // Shorter than an Ethernet header: the kernel refuses it alone.
            batch.push(Packet::from_bytes(&[1, 2, 3]));
        }
    }
    tx.send(&mut pool, &mut batch).unwrap();
    assert!(batch.is_empty());
    assert_eq!(pool.available(), 512, "every slot back in the pool");
    let s = tx.stats();
    assert_eq!(s.packets, 100);
    assert_eq!(s.bytes, frames.iter().map(|f| f.len() as u64).sum::<u64>());
    assert_eq!((s.drops, s.errors), (1, 1));
    let d = (port.driver_stats.as_ref().unwrap())();
    assert_eq!(d["tx_rejected"], 1);
    let got = recv_ours(&mut *rx, &mut pool, t, 100);
    assert_eq!(got.len(), 100);
    for (p, f) in got.iter().zip(&frames) {
        assert_eq!(p.data(), &f[..]);
    }
}

#[test]
fn vlan_tags_go_back_between_the_addresses_and_the_ethertype() {
    let _lo = crate::sys::lo_lock();
    let f = frame(token(), 1, 60);
    let mut p = Packet::from_bytes(&f);
    assert!(restore_vlan(&mut p, (0x8100, 0x2064)));
    assert_eq!(p.data(), &tag(&f, 0x8100, 0x2064)[..]);
    assert_eq!((p.len(), p.wire_len()), (64, 64));
    // Checked with an independent parser.
    let e = etherparse::SlicedPacket::from_ethernet(p.data()).unwrap();
    match e.link_exts.first() {
        Some(etherparse::LinkExtSlice::Vlan(v)) => {
            assert_eq!(v.vlan_identifier().value(), 100);
            assert_eq!(v.priority_code_point().value(), 1);
        }
        other => panic!("no VLAN header: {other:?}"),
    }
    // Too short to hold the addresses: left alone.
    let mut q = Packet::from_bytes(&[1; 8]);
    assert!(!restore_vlan(&mut q, (0x8100, 1)));
    assert_eq!(q.data(), &[1; 8]);
}

/// Super-frames sent on `lo` by a socket with `PACKET_VNET_HDR` travel
/// whole (lo takes every offload), as a TSO sender's do over veth: each
/// receive mode hands them over cut into wire-sized segments, across
/// bursts smaller than a super-frame, checked by etherparse.
#[test]
fn super_frames_are_received_cut_into_segments_in_every_mode() {
    let _lo = crate::sys::lo_lock();
    for mode in ["mmsg", "tpacket_v2", "tpacket_v3"] {
        super_frames_cut(mode);
    }
}

fn super_frames_cut(mode: &str) {
    use super::gso::tests::{check, super_frame, Kind, Opts};
    let mut p = params("lo");
    p.set("rx_mode", Value::Str(mode.into()));
    let port = spec(&p).open("l", 1, true, false).unwrap();
    let mut rx = port.rx.into_iter().next().unwrap();
    let mut pool = Pool::new(512);
    let cases = [
        Opts {
            flags: true,
            tcp_options: true,
            ..Opts::new(Kind::Tcp4, 64_000, 1448)
        },
        Opts::new(Kind::Tcp6, 20_000, 1428),
        Opts::new(Kind::Udp4, 9_000, 1472),
        // Small enough for a slot, and still cut.
        Opts::new(Kind::Tcp4, 1200, 536),
    ];
    let tx = PacketSocket::new().unwrap();
    tx.vnet_hdr().unwrap();
    tx.bind(1, 0).unwrap();
    let mut msgs = MsgVec::new(1);
    for o in cases {
        let (f, v) = super_frame(o);
        let mut b = vec![v.flags, v.gso_type];
        for x in [v.hdr_len, v.gso_size, v.csum_start, v.csum_offset] {
            b.extend_from_slice(&x.to_ne_bytes());
        }
        b.extend_from_slice(&f);
        assert_eq!(tx.send_batch(&mut msgs, [&b[..]]).unwrap(), 1, "{mode}");
    }
    let want: usize = cases
        .iter()
        .map(|o| o.payload.div_ceil(usize::from(o.gso)))
        .sum();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut batch = Batch::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.len() < want && Instant::now() < deadline {
        match rx.recv(&mut pool, &mut batch, 32).unwrap() {
            Recv::Got(n) => assert!(n <= 32 && n == batch.len(), "{mode}: {n}"),
            Recv::Ended => panic!(),
        }
        for p in batch.drain(..) {
            if p.data().starts_with(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]) {
                assert!(p.len() <= 1514, "{mode}: wire-sized");
                assert_eq!(p.wire_len(), p.len());
                got.push(p.data().to_vec());
            }
            pool.free(p);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(got.len(), want, "{mode}");
    let mut at = 0;
    for o in cases {
        let n = o.payload.div_ceil(usize::from(o.gso));
        check(o, &got[at..at + n]);
        at += n;
    }
    let d = (port.driver_stats.as_ref().unwrap())();
    assert_eq!(d["rx_gso_frames"], cases.len() as u64, "{mode}: {d:?}");
    assert_eq!(d["rx_gso_segments"], want as u64, "{mode}: {d:?}");
    assert_eq!(d["rx_truncated"], 0, "{mode}: {d:?}");
    assert_eq!(pool.available(), 512, "{mode}: every slot back");
}
