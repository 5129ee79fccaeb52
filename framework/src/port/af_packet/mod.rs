//! Live interfaces through the stock kernel: `AF_PACKET` raw sockets, a
//! mapped receive ring (or batched `recvmmsg`), batched `sendmmsg`.
//!
//! Receive: [`PortSpec::rx_queues`] is `queues`. Each receive queue is its
//! own socket bound to the interface for every protocol (`ETH_P_ALL`); with
//! more than one they join a `PACKET_FANOUT` group in hash mode, so the
//! kernel spreads flows over the queues (each flow stays on one queue, and
//! the hash is symmetric: both directions of a connection land on the
//! same queue index). The runtime gives queue `q` to worker `q % workers`.
//! Sockets set `PACKET_IGNORE_OUTGOING` (Linux 4.20+), so frames sent on
//! the interface, by this port or anyone else, are not read back.
//!
//! How a queue takes frames from the kernel is `rx_mode`:
//! - `tpacket_v2` (the default): a `TPACKET_V2` ring of `socket_buffer`
//!   bytes mapped into the process. The kernel copies each frame into a
//!   ring slot as it arrives, in its receive path; a burst copies the
//!   waiting frames from the ring into pool slots and hands the ring slots
//!   back, with no system call. Timestamps are the kernel's, per frame.
//! - `tpacket_v3`: the same with a `TPACKET_V3` ring, whose frames are
//!   packed into 128 KiB blocks that the kernel hands over when full or
//!   after 1 ms: a little cheaper per frame, but at low rates a frame waits
//!   up to that long.
//! - `mmsg`: one `recvmmsg` per burst (`MSG_DONTWAIT`), straight into pool
//!   slots: the only copy is the kernel's, into the slot, but every burst
//!   is a system call with per-frame work in it. Timestamps are wall-clock
//!   nanoseconds read once per burst (asking for `SO_TIMESTAMPNS` would add
//!   a control message per frame).
//!
//! With the rings the worker copies each frame once, from the ring into the
//! slot; that copy costs tens of nanoseconds, against about a microsecond
//! of per-frame work inside `recvmmsg` on the machine measured (see
//! `docs/benchmarks.md`, "AF_PACKET driver", for the figures and the choice).
//! Nothing waiting: `Got(0)` in every mode; an empty pool leaves frames
//! where they are.
//!
//! Frame size: the port reports the interface's MTU + 22 (Ethernet header
//! and two VLAN tags), rounded up to 64 and at most [`MAX_PORT_FRAME`], as
//! [`OpenPort::max_frame`], so the run's packet slots hold its largest
//! frames; a `TPACKET_V2` ring's frames are sized for it too. A frame that
//! still does not fit (the ring's frame or the slot: `MSG_TRUNC`, or the
//! ring header's `tp_snaplen` < `tp_len`) is never handed on cut short: it
//! is dropped and counted in [`QueueStats::oversize`](super::QueueStats::oversize)
//! (and `drops`); the driver counter `rx_truncated` counts those the kernel
//! handed over cut. Frames the kernel dropped because a queue's ring
//! or socket buffer was full (`PACKET_STATISTICS`) count in `drops` and in
//! `rx_kernel_drops`.
//!
//! Offloads: with TSO/GSO/GRO on, the kernel hands packet sockets TCP and
//! UDP super-frames of up to 64 KiB. Receive sockets set `PACKET_VNET_HDR`
//! (parameter `vnet_hdr`), so each frame comes with its `virtio_net_hdr`,
//! and super-frames are cut into wire-sized segments in slots on receive
//! (see `gso`; counters `rx_gso_*`). Each mode gets them whole: a
//! `TPACKET_V3` block holds one; a `TPACKET_V2` ring flags a frame too long
//! for its frames `TP_STATUS_COPY` and the kernel queues it whole on the
//! socket (`PACKET_COPY_THRESH`), where the ring reads it; `recvmmsg` gives
//! each message a 64 KiB overflow area after its slot. Transmit sockets
//! have no vnet header: the frames they send are the wire frames in the
//! slots.
//!
//! VLAN tags: Linux takes the outer 802.1Q/802.1ad tag out of a received
//! frame before packet sockets see it and reports it beside the frame (the
//! ring's frame header, or `PACKET_AUXDATA`). The driver puts it back
//! between the MAC addresses and the EtherType (a 12-byte move into the
//! slot's headroom), so elements see the frame as it was on the wire.
//!
//! Checksums: a TCP or UDP segment generated on this machine, or coming
//! from a virtual device (veth, tap), may reach the socket with its
//! checksum not filled in (the kernel left it to a device that offloads
//! it, and flags the frame `TP_STATUS_CSUMNOTREADY`). The driver finishes
//! such checksums in software as the kernel would (`skb_checksum_help`), so
//! the frame can be forwarded out of another interface; they count in the
//! driver counter `rx_csum_completed`. Other frames cost nothing more.
//!
//! Transmit: one socket per worker, bound to the interface with protocol 0
//! (it receives nothing), with `PACKET_QDISC_BYPASS` unless `qdisc_bypass =
//! false`; frames sent around the qdisc layer are not shown to packet
//! taps (tcpdump) on the interface either. A burst goes out with
//! `sendmmsg` straight from the slots. When
//! the kernel takes only part of it (socket buffer or device queue full:
//! `EAGAIN`/`ENOBUFS`), the rest is retried with a short back-off
//! (spins, yields, then naps: about 5 ms in all), then counted as drops
//! (`tx_full_drops`); a frame the kernel refuses as too long for the MTU
//! (`EMSGSIZE`) is dropped and counted `oversize`, one refused as too short
//! is dropped and counted as an error (`tx_rejected`), and the burst goes
//! on. Every slot goes back to the pool.
//!
//! While the port is open and `promisc` is set, the interface is in
//! promiscuous mode (a membership of the first receive socket, which the
//! kernel undoes when the socket closes, even after a crash).
//!
//! [`PortSpec::open`] checks that the interface exists and is up and that
//! the process may open packet sockets; each failure is one line naming the
//! port and the fix. Configuring touches nothing.

pub(crate) mod csum;
mod gso;
mod mmsg;
mod ring;
mod tx;
pub(crate) mod watch;

use std::io;
use std::sync::Arc;

use super::burst::{Counters, Sides};
use super::{OpenPort, PortClass, PortError, PortSpec, RxQueue, TxQueue};
use crate::packet::Packet;
use crate::params::Choice;
use crate::params::{Need, ParamError, ParamSpec, ParamType, Params};
use crate::sys::{self, BlockRing, FrameRing, PacketSocket, RxInfo, RxRing, VlanTag, VnetHdr};

/// The `af_packet` driver.
pub const CLASS: PortClass = PortClass {
    name: "af_packet",
    summary: "a live interface through AF_PACKET sockets (mapped rx ring or recvmmsg, sendmmsg, \
              fanout, promiscuous)",
    params: PARAMS,
    configure,
};

/// Most receive queues (members of one fanout group).
pub const MAX_QUEUES: usize = 256;

/// Frames per `recvmmsg`/`sendmmsg` call at most (bigger bursts take several calls).
const MAX_BURST: usize = 256;

/// Bytes per block of a ring (`socket_buffer` sets the number of blocks).
const RING_BLOCK: usize = 1 << 17;
/// Largest frame an `af_packet` port asks the run's slots to hold (and a
/// `TPACKET_V2` ring's frames to take), whatever the MTU: more than a 9,000
/// MTU needs; only interfaces with a larger MTU (`lo`: 65,536) are capped.
pub const MAX_PORT_FRAME: usize = 16384;

/// The largest frame a port on an interface of `mtu` receives: MTU + 22,
/// rounded up to 64, at least the default slot and at most [`MAX_PORT_FRAME`].
fn port_frame(mtu: usize) -> usize {
    super::frame_for_mtu(mtu).clamp(crate::packet::DEFAULT_MAX_FRAME, MAX_PORT_FRAME)
}

/// Bytes per frame of a `TPACKET_V2` ring holding frames of up to `frame`
/// bytes: the kernel puts 66 bytes of header and link address in front
/// (more with a virtio-net header); 128 leaves room, rounded to 16.
fn ring_frame(frame: usize) -> usize {
    (frame + 128).div_ceil(16) * 16
}
/// Milliseconds after which the kernel hands over a `TPACKET_V3` block that is not full.
const RING_RETIRE_MS: u32 = 1;

hpio_nf::choice! {
    /// How receive queues take frames from the kernel (`rx_mode`).
    enum RxMode {
        /// A mapped `TPACKET_V2` ring of frames, copied into pool slots.
        V2 = "tpacket_v2",
        /// A mapped `TPACKET_V3` ring of blocks, copied into pool slots.
        V3 = "tpacket_v3",
        /// `recvmmsg` straight into pool slots.
        Mmsg = "mmsg",
    }
}

/// A receive socket, with its ring when it has one.
enum RxSocket {
    Plain(PacketSocket),
    V2(FrameRing),
    V3(BlockRing),
}

impl RxSocket {
    fn socket(&self) -> &PacketSocket {
        match self {
            RxSocket::Plain(s) => s,
            RxSocket::V2(r) => r.socket(),
            RxSocket::V3(r) => r.socket(),
        }
    }
}

/// Parameters of `af_packet` (and of `auto`, which hands them on).
pub(crate) const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "interface",
        ty: ParamType::Str,
        need: Need::Required,
        doc: "the network interface, as `ip link` names it",
    },
    ParamSpec {
        name: "queues",
        ty: ParamType::Int {
            min: 1,
            max: MAX_QUEUES as i64,
        },
        need: Need::Default("1"),
        doc: "receive sockets in one hash fanout group, spread over the workers \
              (each flow stays on one queue)",
    },
    ParamSpec {
        name: "promisc",
        ty: ParamType::Bool,
        need: Need::Default("true"),
        doc: "put the interface in promiscuous mode while the port is open",
    },
    ParamSpec {
        name: "qdisc_bypass",
        ty: ParamType::Bool,
        need: Need::Default("true"),
        doc: "transmit straight to the device queue, skipping traffic control (tc qdiscs)",
    },
    ParamSpec {
        name: "fanout_defrag",
        ty: ParamType::Bool,
        need: Need::Default("false"),
        doc: "with several queues, let the kernel reassemble IP fragments before \
              hashing them to a queue (reassembled packets longer than a packet slot are \
              dropped and counted `oversize`)",
    },
    ParamSpec {
        name: "rx_mode",
        ty: ParamType::Choice(RxMode::NAMES),
        need: Need::Default("\"tpacket_v2\""),
        doc: "how frames are received: `tpacket_v2`, a mapped ring of frames copied into \
              packet slots, no system call per burst; `tpacket_v3`, a mapped ring of blocks \
              (cheaper per frame, but up to 1 ms of added latency at low rates); `mmsg`, \
              recvmmsg straight into slots (one copy, a system call per burst)",
    },
    ParamSpec {
        name: "vnet_hdr",
        ty: ParamType::Bool,
        need: Need::Default("true"),
        doc: "receive with `PACKET_VNET_HDR`: frames merged or left unsegmented by the \
              interface's offloads (TSO/GSO/GRO, up to 64 KiB) arrive whole and are cut \
              into wire-sized segments (`rx_gso_*` counters); false: such frames are cut \
              short to a slot and counted (`rx_truncated`)",
    },
    ParamSpec {
        name: "socket_buffer",
        ty: ParamType::Int {
            min: 65536,
            max: 1 << 30,
        },
        need: Need::Default("4194304"),
        doc: "bytes of kernel buffer per receive queue (the ring's size, or the socket's \
              receive buffer with `mmsg`) and per transmit socket; a larger buffer absorbs \
              longer bursts",
    },
];

/// A configured `af_packet` port: checked values, nothing opened.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AfPacketSpec {
    pub(crate) interface: String,
    queues: usize,
    promisc: bool,
    qdisc_bypass: bool,
    fanout_defrag: bool,
    rx_mode: RxMode,
    vnet_hdr: bool,
    socket_buffer: usize,
}

/// Checks an interface name the way the kernel does (`dev_valid_name`).
pub(crate) fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("expected an interface name, found an empty string".into());
    }
    if name.len() >= 16 {
        return Err(format!(
            "interface names have at most 15 bytes, `{name}` has {}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("`{name}` is not a valid interface name"));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
    {
        return Err(format!(
            "`{}` is not a valid interface name (it contains {c:?})",
            name.escape_debug()
        ));
    }
    Ok(())
}

fn configure(p: &Params) -> Result<Box<dyn PortSpec>, ParamError> {
    Ok(Box::new(AfPacketSpec::from_params(p)?))
}

impl AfPacketSpec {
    pub(crate) fn from_params(p: &Params) -> Result<AfPacketSpec, ParamError> {
        let interface = p.str("interface")?.to_string();
        check_ifname(&interface).map_err(|m| ParamError::new("interface", m))?;
        let queues = p.usize("queues")?;
        if !(1..=MAX_QUEUES).contains(&queues) {
            return Err(ParamError::new(
                "queues",
                format!("expected 1..={MAX_QUEUES}, got {queues}"),
            ));
        }
        let socket_buffer = p.usize("socket_buffer")?;
        if !(65536..=1 << 30).contains(&socket_buffer) {
            return Err(ParamError::new(
                "socket_buffer",
                format!("expected 65536..=1073741824 bytes, got {socket_buffer}"),
            ));
        }
        Ok(AfPacketSpec {
            interface,
            queues,
            promisc: p.bool("promisc")?,
            qdisc_bypass: p.bool("qdisc_bypass")?,
            fanout_defrag: p.bool("fanout_defrag")?,
            rx_mode: p.choice::<RxMode>("rx_mode")?,
            vnet_hdr: p.bool("vnet_hdr")?,
            socket_buffer,
        })
    }

    /// The interface's index, after checking it exists and is up.
    fn check_interface(&self, port: &str) -> Result<u32, PortError> {
        let ifname = &self.interface;
        let index = sys::if_index(ifname)
            .map_err(|e| PortError::io(port, format!("looking up interface `{ifname}`"), e))?
            .ok_or_else(|| no_interface(port, ifname))?;
        let flags = sys::if_flags(ifname).map_err(|e| self.error(port, "reading the flags", e))?;
        if !flags.up() {
            return Err(PortError::other(
                port,
                format!("interface `{ifname}` is down: `ip link set {ifname} up`"),
            ));
        }
        if !flags.running() {
            log::warn!(
                "port `{port}`: interface `{ifname}` is up but has no carrier \
                 (cable unplugged, or the veth peer is down): nothing flows until it has"
            );
        }
        Ok(index)
    }

    /// Maps a failed system call on the interface to what the user can do about it.
    fn error(&self, port: &str, what: &str, e: io::Error) -> PortError {
        let ifname = &self.interface;
        match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => PortError::other(
                port,
                "AF_PACKET sockets need root or CAP_NET_RAW \
                 (run as root, or `setcap cap_net_raw,cap_net_admin+ep` on the binary)",
            ),
            Some(libc::ENODEV) | Some(libc::ENXIO) => no_interface(port, ifname),
            Some(libc::ENETDOWN) => PortError::other(
                port,
                format!("interface `{ifname}` is down: `ip link set {ifname} up`"),
            ),
            Some(libc::ENOPROTOOPT) => PortError::other(
                port,
                format!(
                    "{what} on interface `{ifname}`: the kernel lacks this AF_PACKET option \
                     (Linux 4.20 or later is needed)"
                ),
            ),
            _ => PortError::io(port, format!("{what} on interface `{ifname}`"), e),
        }
    }

    /// A new packet socket, privilege errors mapped.
    fn socket(&self, port: &str) -> Result<PacketSocket, PortError> {
        PacketSocket::new().map_err(|e| self.error(port, "opening an AF_PACKET socket", e))
    }

    fn open_rx(
        &self,
        port: &str,
        ifindex: u32,
        max_frame: usize,
        counters: &Arc<Counters>,
    ) -> Result<Vec<Box<dyn RxQueue>>, PortError> {
        let mut queues: Vec<Box<dyn RxQueue>> = Vec::with_capacity(self.queues);
        let mut group = None;
        for q in 0..self.queues {
            let s = self.socket(port)?;
            let err = |what, e| self.error(port, what, e);
            s.ignore_outgoing()
                .map_err(|e| err("setting PACKET_IGNORE_OUTGOING", e))?;
            if q == 0 && self.promisc {
                s.add_promisc(ifindex)
                    .map_err(|e| err("turning promiscuous mode on", e))?;
            }
            if self.vnet_hdr {
                // Before the ring: its frames then carry the header.
                s.vnet_hdr()
                    .map_err(|e| err("setting PACKET_VNET_HDR", e))?;
            }
            // The ring, if any, goes on before the socket is bound.
            let rxs = self.rx_socket(port, q, s, max_frame)?;
            let sock = rxs.socket();
            sock.bind(ifindex, sys::ETH_P_ALL)
                .map_err(|e| err("binding a receive socket", e))?;
            if self.queues > 1 {
                match group {
                    None => {
                        group = Some(
                            sock.fanout_create(self.fanout_defrag)
                                .map_err(|e| err("creating the fanout group", e))?,
                        )
                    }
                    Some(id) => sock
                        .fanout_join(id, self.fanout_defrag)
                        .map_err(|e| err("joining the fanout group", e))?,
                }
            }
            let watch = watch::LinkWatch::new(port, &self.interface, ifindex, sys::ETH_P_ALL)
                .with_promisc(q == 0 && self.promisc);
            queues.push(match rxs {
                RxSocket::V2(ring) => Box::new(ring::RingRx::new(ring, counters.clone(), watch)),
                RxSocket::V3(ring) => Box::new(ring::RingRx::new(ring, counters.clone(), watch)),
                RxSocket::Plain(s) => Box::new(mmsg::MmsgRx::new(
                    s,
                    MAX_BURST,
                    port,
                    &self.interface,
                    counters.clone(),
                    watch,
                )),
            });
        }
        Ok(queues)
    }

    /// Receive socket `q` of the port in its mode: options, and the ring if any.
    fn rx_socket(
        &self,
        port: &str,
        q: usize,
        s: PacketSocket,
        max_frame: usize,
    ) -> Result<RxSocket, PortError> {
        let err = |what, e| self.error(port, what, e);
        Ok(match self.rx_mode {
            RxMode::Mmsg => {
                s.auxdata().map_err(|e| err("setting PACKET_AUXDATA", e))?;
                s.set_recv_buffer(self.socket_buffer)
                    .map_err(|e| err("setting the receive buffer", e))?;
                match s.recv_buffer() {
                    Ok(got) if q == 0 && got < self.socket_buffer => log::info!(
                        "port `{port}`: receive buffers of {got} bytes, not {} \
                         (without CAP_NET_ADMIN the limit is net.core.rmem_max)",
                        self.socket_buffer
                    ),
                    _ => {}
                }
                RxSocket::Plain(s)
            }
            RxMode::V2 => {
                if self.vnet_hdr {
                    // Super-frames come whole through the socket queue.
                    s.set_recv_buffer(self.socket_buffer)
                        .map_err(|e| err("setting the receive buffer", e))?;
                }
                let blocks = (self.socket_buffer / RING_BLOCK).max(2);
                RxSocket::V2(
                    FrameRing::new(s, RING_BLOCK, blocks, ring_frame(max_frame))
                        .map_err(|e| err("setting up the TPACKET_V2 ring", e))?,
                )
            }
            RxMode::V3 => {
                let blocks = (self.socket_buffer / RING_BLOCK).max(2);
                RxSocket::V3(
                    BlockRing::new(s, RING_BLOCK, blocks, RING_RETIRE_MS)
                        .map_err(|e| err("setting up the TPACKET_V3 ring", e))?,
                )
            }
        })
    }

    fn open_tx(
        &self,
        port: &str,
        ifindex: u32,
        counters: &Arc<Counters>,
    ) -> Result<Box<dyn TxQueue>, PortError> {
        let s = self.socket(port)?;
        let err = |what, e| self.error(port, what, e);
        if self.qdisc_bypass {
            s.qdisc_bypass()
                .map_err(|e| err("setting PACKET_QDISC_BYPASS", e))?;
        }
        s.set_send_buffer(self.socket_buffer)
            .map_err(|e| err("setting the send buffer", e))?;
        s.bind(ifindex, 0)
            .map_err(|e| err("binding a transmit socket", e))?;
        let watch = watch::LinkWatch::new(port, &self.interface, ifindex, 0);
        Ok(Box::new(tx::AfPacketTx::new(
            s,
            MAX_BURST,
            port,
            &self.interface,
            counters.clone(),
            watch,
        )))
    }
}

/// Makes a received frame what it would be on the wire, from what the kernel
/// reported beside it: puts back the VLAN tag it took out, then finishes a
/// TCP/UDP checksum it left partial. Adds to `bad_tags` when a tag could not
/// go back, to `csums` when a checksum was finished. Free for frames with
/// neither.
#[inline]
fn fix_up(p: &mut Packet, info: RxInfo, bad_tags: &mut u64, csums: &mut u64) {
    if let Some(tag) = info.vlan {
        *bad_tags += u64::from(!restore_vlan(p, tag));
    }
    // TP_STATUS_CSUMNOTREADY and the vnet header's NEEDS_CSUM both say
    // CHECKSUM_PARTIAL; super-frames never come here (their segments get
    // full checksums).
    if info.csum_not_ready || info.vnet.flags & VnetHdr::NEEDS_CSUM != 0 {
        *csums += u64::from(csum::complete(p));
    }
}

/// Puts back into a received frame the VLAN tag the kernel took out of it
/// (Linux hands 802.1Q/802.1ad tags to packet sockets beside the frame, not
/// in it): the MAC addresses move 4 bytes into the headroom and the tag goes
/// after them. False, frame untouched, when there is no room or no MACs.
fn restore_vlan(p: &mut Packet, (tpid, tci): VlanTag) -> bool {
    if p.len() < 12 {
        return false;
    }
    match p.push_front(4) {
        Ok(f) => {
            f.copy_within(4..16, 0);
            f[12..14].copy_from_slice(&tpid.to_be_bytes());
            f[14..16].copy_from_slice(&tci.to_be_bytes());
            true
        }
        Err(_) => false,
    }
}

fn no_interface(port: &str, ifname: &str) -> PortError {
    PortError::other(port, format!("no interface `{ifname}` (check `ip link`)"))
}

impl PortSpec for AfPacketSpec {
    fn rx_queues(&self) -> usize {
        self.queues
    }

    fn endless(&self) -> bool {
        true
    }

    fn interface(&self) -> Option<&str> {
        Some(&self.interface)
    }

    fn describe(&self) -> String {
        let mut s = format!("af_packet: interface `{}`", self.interface);
        if self.queues > 1 {
            s += &format!(
                ", {} queues (hash fanout{})",
                self.queues,
                if self.fanout_defrag { ", defrag" } else { "" }
            );
        } else {
            s += ", 1 queue";
        }
        if self.promisc {
            s += ", promiscuous";
        }
        if self.qdisc_bypass {
            s += ", qdisc bypass";
        }
        s += match self.rx_mode {
            RxMode::Mmsg => ", rx by recvmmsg",
            RxMode::V2 => ", rx by TPACKET_V2 ring",
            RxMode::V3 => ", rx by TPACKET_V3 ring",
        };
        if !self.vnet_hdr {
            s += ", no vnet header (super-frames cut short)";
        }
        s
    }

    fn open(&self, name: &str, workers: usize, rx: bool, tx: bool) -> Result<OpenPort, PortError> {
        let ifindex = self.check_interface(name)?;
        let mtu =
            sys::if_mtu(&self.interface).map_err(|e| self.error(name, "reading the MTU", e))?;
        let max_frame = port_frame(mtu);
        let counters = Arc::new(Counters::default());
        let rx_queues = if rx {
            self.open_rx(name, ifindex, max_frame, &counters)?
        } else {
            Vec::new()
        };
        let mut tx_queues = Vec::new();
        if tx {
            for _ in 0..workers {
                tx_queues.push(self.open_tx(name, ifindex, &counters)?);
            }
        }
        Ok(OpenPort {
            rx: rx_queues,
            tx: tx_queues,
            driver: CLASS.name.to_string(),
            driver_stats: Some(Box::new(move || {
                counters.snapshot(Sides {
                    rx,
                    tx,
                    socket: true,
                })
            })),
            max_frame,
        })
    }
}

#[cfg(test)]
mod tests;
