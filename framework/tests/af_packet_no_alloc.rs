//! No heap allocation while the af_packet driver cuts super-frames into
//! segments, in every receive mode: 64 KiB TCP super-frames are sent on
//! `lo` by a raw socket with `PACKET_VNET_HDR` (lo keeps them whole, as
//! veth does with a TSO sender), and received through the driver with a
//! counting global allocator. Needs root (CAP_NET_RAW), like
//! `tests/af_packet.rs`.

use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use hpio_nf::config::Config;
use hpio_nf::packet::{Batch, Pool};
use hpio_nf::port::Recv;
use hpio_nf::testing::{allocations_here, CountingAlloc};
use testkit::frame::{Frame, Ip, TCP_ACK};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const PAYLOAD: usize = 60_000;
const MSS: u16 = 1448;
const SEGMENTS: usize = PAYLOAD.div_ceil(MSS as usize);
const DST_MAC: [u8; 6] = [2, 0x77, 0, 0, 0, 2];

/// A raw socket on `lo` whose frames carry a `virtio_net_hdr`.
fn vnet_sender() -> OwnedFd {
    // SAFETY: socket() takes no pointers; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    assert!(fd >= 0, "AF_PACKET socket (run as root)");
    // SAFETY: `fd` is a fresh descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: the pointer and length describe `one`, alive across the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_VNET_HDR,
            std::ptr::from_ref(&one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
    // SAFETY: all zeroes is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = 1;
    // SAFETY: the pointer and length describe `sll`, alive across the call.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::from_ref(&sll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "bind to lo");
    fd
}

/// A TCPv4 super-frame of `PAYLOAD` bytes to be cut at `MSS`, with its
/// vnet header in front.
fn super_frame() -> Vec<u8> {
    let data: Vec<u8> = (0..PAYLOAD).map(|i| i as u8).collect();
    let f = Frame::tcp(Ip::v4([10, 77, 99, 1], [10, 77, 99, 2]), 40000, 80, TCP_ACK)
        .macs([2, 0x77, 0, 0, 0, 1], DST_MAC)
        .seq(1, 1, 1000)
        .payload(&data)
        .build();
    let mut v = vec![1u8, 1]; // NEEDS_CSUM, GSO_TCPV4
    for x in [54u16, MSS, 34, 16] {
        v.extend_from_slice(&x.to_ne_bytes());
    }
    v.extend_from_slice(&f);
    v
}

fn send(fd: &OwnedFd, frame: &[u8]) {
    // SAFETY: the pointer and length describe `frame`, alive across the call.
    let r = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    assert_eq!(r, frame.len() as isize, "send a super-frame");
}

/// Receives until `want` segments of ours arrived (2 s at most); frees
/// everything; returns how many came.
fn drain(
    rx: &mut dyn hpio_nf::port::RxQueue,
    pool: &mut Pool,
    batch: &mut Batch,
    want: usize,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut got = 0;
    while got < want && Instant::now() < deadline {
        match rx.recv(pool, batch, 32).unwrap() {
            Recv::Got(_) => {}
            Recv::Ended => unreachable!(),
        }
        got += batch
            .iter()
            .filter(|p| p.data().starts_with(&DST_MAC))
            .count();
        pool.free_batch(batch);
    }
    got
}

#[test]
fn super_frames_are_cut_without_allocating() {
    let tx = vnet_sender();
    let frame = super_frame();
    for mode in ["mmsg", "tpacket_v2", "tpacket_v3"] {
        let text = format!(
            "connections = [\"l -> l\"]\n[ports.l]\ndriver = \"af_packet\"\n\
             interface = \"lo\"\npromisc = false\nrx_mode = \"{mode}\"\n"
        );
        let cfg = Config::parse_builtin(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let port = cfg.ports[0].spec.open("l", 1, true, false).unwrap();
        let mut rx = port.rx.into_iter().next().unwrap();
        let mut pool = Pool::new(1024);
        let mut batch = Batch::new();
        // Warm up: every buffer touched once.
        for _ in 0..4 {
            send(&tx, &frame);
        }
        assert_eq!(
            drain(&mut *rx, &mut pool, &mut batch, 4 * SEGMENTS),
            4 * SEGMENTS
        );
        let before = allocations_here();
        let mut got = 0;
        for _ in 0..10 {
            for _ in 0..4 {
                send(&tx, &frame);
            }
            got += drain(&mut *rx, &mut pool, &mut batch, 4 * SEGMENTS);
        }
        let allocated = allocations_here() - before;
        assert_eq!(got, 40 * SEGMENTS, "{mode}");
        assert_eq!(
            allocated, 0,
            "{mode}: allocations while cutting {got} segments"
        );
        let d = (port.driver_stats.as_ref().unwrap())();
        assert_eq!(d["rx_gso_frames"], 44, "{mode}: {d:?}");
        assert_eq!(d["rx_gso_segments"], 44 * SEGMENTS as u64, "{mode}: {d:?}");
        assert_eq!(pool.available(), 1024);
    }
}
