//! Live interfaces through AF_XDP sockets, for hosts where the hpio module
//! cannot be loaded (Secure Boot, managed kernels): the stock kernel hands
//! frames to the process right after the driver, before the stack.
//!
//! Opening a port (nothing happens at configure time):
//! 1. one AF_XDP socket per queue `0..queues` of the interface, each with
//!    its own UMEM ([`crate::sys::xsk`]), bound in zero-copy mode where the
//!    driver supports it and in copy mode otherwise (`zerocopy`), with
//!    need-wakeup (`need_wakeup`);
//! 2. when the graph reads the port, an `XSKMAP` with the sockets by queue
//!    and a six-instruction XDP program that redirects each frame to the
//!    socket of its receive queue (frames of a queue with no socket go on
//!    to the kernel's stack), attached with a BPF link in native mode (in
//!    the driver; veth has it) or generic mode (`xdp_mode`). The link is a
//!    file descriptor of the process: the kernel detaches the program when
//!    the port closes, and also when the process is killed.
//!
//! Receive queue `q` is socket `q`: each burst copies the frames of its RX
//! ring into fresh pool slots (the slot layout of every driver: elements
//! see no difference) and hands the UMEM frames straight back on the fill
//! ring; no system call unless the kernel asks for a wake-up. Timestamps
//! are wall-clock nanoseconds read once per burst. Frames longer than a
//! slot are dropped and counted `oversize`; frames the kernel dropped (no
//! free frame, RX ring full) count in `drops` and `rx_kernel_drops`.
//!
//! Transmit: worker `w` sends on socket `w % queues` (a lock per burst,
//! uncontended unless there are more workers than queues). A burst is
//! copied into free UMEM frames, queued on the TX ring and the kernel is
//! kicked (`sendto`) when it asks for it (in copy mode, always). Copy
//! mode sends at most 32 frames per call unless the socket raises that
//! (`XDP_MAX_TX_SKB_BUDGET`, Linux 6.17 and later): each socket raises it
//! to its ring size, so that a burst takes one call, and on older kernels
//! a burst takes a call per 32 frames.
//! Frames longer than the MTU allows (or than a UMEM frame) are dropped
//! and counted `oversize`; a full ring is retried with the back-off of the
//! other drivers (`burst::send_burst`).
//!
//! Offloads: XDP sees wire frames, so super-frames never arrive (Linux
//! turns segmentation offloads off on a veth whose peer has an XDP
//! program), and a VLAN tag a device took out of the frame (hardware
//! VLAN offload) is not put back. The kernel hands over no checksum state:
//! a TCP/UDP segment sent by a local stack through a veth reaches the port
//! with its checksum left to an offload (the field holds the pseudo-header
//! sum). With `csum_fix` (the default) the driver finishes a checksum whose
//! field holds exactly that sum (`af_packet::csum::complete_if_partial`;
//! counter `rx_csum_completed`), at the cost of a header parse per frame;
//! on a physical NIC checksums arrive complete and `csum_fix = false`
//! saves the parse.

mod rx;
mod tx;

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use super::af_packet::check_ifname;
use super::af_packet::watch::LinkWatch;
use super::burst::{Counters, Sides};
use super::{frame_for_mtu, OpenPort, PortClass, PortError, PortSpec, RxQueue, TxQueue};
use crate::packet::DEFAULT_MAX_FRAME;
use crate::params::Choice;
use crate::params::{Need, ParamError, ParamSpec, ParamType, Params};
use crate::sys::bpf::{XdpLink, XdpMode, XdpProgram, XskMap};
use crate::sys::xsk::{CopyMode, XskConfig, XskSocket};
use crate::sys::{self};

/// The `af_xdp` driver.
pub const CLASS: PortClass = PortClass {
    name: "af_xdp",
    summary: "a live interface through AF_XDP sockets (XDP redirect by queue, zero-copy or \
              copy mode, need-wakeup)",
    params: PARAMS,
    configure,
};

/// Most queues (sockets) of a port.
pub const MAX_QUEUES: usize = 64;
/// Bytes per UMEM frame.
const FRAME: u32 = 4096;
/// Bytes the kernel keeps in front of a received frame (`XDP_PACKET_HEADROOM`).
const XDP_HEADROOM: usize = 256;
/// Largest frame the port receives or sends: a UMEM frame less the headroom.
pub const MAX_PORT_FRAME: usize = FRAME as usize - XDP_HEADROOM;

hpio_nf::choice! {
    /// Where the XDP program runs (`xdp_mode`).
    enum XdpChoice {
        /// Native where the driver has it, generic otherwise.
        Auto = "auto",
        /// In the driver, or fail.
        Native = "native",
        /// In the generic path (any interface).
        Generic = "generic",
    }
}

hpio_nf::choice! {
    /// Zero-copy or copy mode (`zerocopy`).
    enum ZeroCopy {
        /// Zero-copy where the driver supports it.
        Auto = "auto",
        /// Zero-copy, or fail.
        On = "on",
        /// Copy mode.
        Off = "off",
    }
}

/// Parameters of `af_xdp`.
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
        doc: "AF_XDP sockets, one per interface queue 0..queues-1 (set it to the interface's \
              receive queue count: frames of other queues go to the kernel's stack)",
    },
    ParamSpec {
        name: "xdp_mode",
        ty: ParamType::Choice(XdpChoice::NAMES),
        need: Need::Default("\"auto\""),
        doc: "where the XDP program runs: `native` (in the driver; veth has it), `generic` \
              (any interface, slower), `auto` (native, else generic)",
    },
    ParamSpec {
        name: "zerocopy",
        ty: ParamType::Choice(ZeroCopy::NAMES),
        need: Need::Default("\"auto\""),
        doc: "`auto`: zero-copy where the driver supports it, copy mode otherwise; `on`: \
              zero-copy or fail; `off`: copy mode",
    },
    ParamSpec {
        name: "ring_size",
        ty: ParamType::Int {
            min: 64,
            max: 16384,
        },
        need: Need::Default("2048"),
        doc: "entries per ring and UMEM frames per direction of each socket (a power of two; \
              4 KiB per frame)",
    },
    ParamSpec {
        name: "csum_fix",
        ty: ParamType::Bool,
        need: Need::Default("true"),
        doc: "finish TCP/UDP checksums that arrive as partial sums (left to an offload that \
              a veth never does: traffic of a local stack); costs a header parse per frame",
    },
    ParamSpec {
        name: "need_wakeup",
        ty: ParamType::Bool,
        need: Need::Default("true"),
        doc: "bind with XDP_USE_NEED_WAKEUP: system calls only when the kernel asks",
    },
];

/// A configured `af_xdp` port: checked values, nothing opened.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AfXdpSpec {
    pub(crate) interface: String,
    queues: usize,
    xdp_mode: XdpChoice,
    zerocopy: ZeroCopy,
    ring_size: u32,
    need_wakeup: bool,
    csum_fix: bool,
}

fn configure(p: &Params) -> Result<Box<dyn PortSpec>, ParamError> {
    Ok(Box::new(AfXdpSpec::from_params(p)?))
}

/// What a port's receive queues keep alive: the program stays attached
/// while any of them is open.
#[derive(Debug)]
pub(super) struct Attached {
    link: XdpLink,
    _prog: XdpProgram,
    _map: XskMap,
}

impl AfXdpSpec {
    pub(crate) fn from_params(p: &Params) -> Result<AfXdpSpec, ParamError> {
        let interface = p.str("interface")?.to_string();
        check_ifname(&interface).map_err(|m| ParamError::new("interface", m))?;
        let queues = p.usize("queues")?;
        if !(1..=MAX_QUEUES).contains(&queues) {
            return Err(ParamError::new(
                "queues",
                format!("expected 1..={MAX_QUEUES}, got {queues}"),
            ));
        }
        let ring_size = p.usize("ring_size")?;
        if !ring_size.is_power_of_two() || !(64..=16384).contains(&ring_size) {
            return Err(ParamError::new(
                "ring_size",
                format!("expected a power of two in 64..=16384, got {ring_size}"),
            ));
        }
        Ok(AfXdpSpec {
            interface,
            queues,
            xdp_mode: p.choice::<XdpChoice>("xdp_mode")?,
            zerocopy: p.choice::<ZeroCopy>("zerocopy")?,
            ring_size: ring_size as u32,
            need_wakeup: p.bool("need_wakeup")?,
            csum_fix: p.bool("csum_fix")?,
        })
    }

    /// The interface's index, after checking it exists and is up.
    fn check_interface(&self, port: &str) -> Result<u32, PortError> {
        let ifname = &self.interface;
        let index = sys::if_index(ifname)
            .map_err(|e| PortError::io(port, format!("looking up interface `{ifname}`"), e))?
            .ok_or_else(|| {
                PortError::other(port, format!("no interface `{ifname}` (check `ip link`)"))
            })?;
        let flags = sys::if_flags(ifname).map_err(|e| self.error(port, "reading the flags", e))?;
        if !flags.up() {
            return Err(PortError::other(
                port,
                format!("interface `{ifname}` is down: `ip link set {ifname} up`"),
            ));
        }
        Ok(index)
    }

    /// Maps a failed system call to what the user can do about it.
    fn error(&self, port: &str, what: &str, e: io::Error) -> PortError {
        let ifname = &self.interface;
        let msg = match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => {
                "AF_XDP needs root (or CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF)".to_string()
            }
            Some(libc::EAFNOSUPPORT) => {
                "this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)".to_string()
            }
            Some(libc::ENODEV) | Some(libc::ENXIO) => format!("no interface `{ifname}`"),
            _ => return PortError::io(port, format!("{what} on interface `{ifname}`"), e),
        };
        PortError::other(port, format!("{what}: {msg}"))
    }

    /// The sockets of queues `0..queues`.
    fn sockets(
        &self,
        port: &str,
        ifindex: u32,
        rx: bool,
        tx: bool,
    ) -> Result<Vec<XskSocket>, PortError> {
        (0..self.queues)
            .map(|q| {
                let cfg = XskConfig {
                    ifindex,
                    queue: q as u32,
                    ring: self.ring_size,
                    frame: FRAME,
                    rx,
                    tx,
                    copy: match self.zerocopy {
                        ZeroCopy::Auto => CopyMode::Auto,
                        ZeroCopy::On => CopyMode::Zero,
                        ZeroCopy::Off => CopyMode::Copy,
                    },
                    need_wakeup: self.need_wakeup,
                };
                // A socket closed a moment ago (a port just closed, a
                // killed NF) releases its queue in the background: wait.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
                loop {
                    match XskSocket::open(&cfg) {
                        Err(e)
                            if e.raw_os_error() == Some(libc::EBUSY)
                                && std::time::Instant::now() < deadline =>
                        {
                            std::thread::sleep(std::time::Duration::from_millis(10));
                        }
                        r => break r.map_err(|e| self.socket_error(port, q, e)),
                    }
                }
            })
            .collect()
    }

    fn socket_error(&self, port: &str, q: usize, e: io::Error) -> PortError {
        let ifname = &self.interface;
        let what = format!("opening the AF_XDP socket of queue {q}");
        match e.raw_os_error() {
            Some(libc::EINVAL) => PortError::other(
                port,
                format!(
                    "{what}: interface `{ifname}` has no queue {q} (lower `queues` to its \
                     queue count, `ethtool -l {ifname}`)"
                ),
            ),
            Some(libc::EBUSY) => PortError::other(
                port,
                format!("{what}: another AF_XDP socket already serves queue {q} of `{ifname}`"),
            ),
            Some(libc::EOPNOTSUPP) if self.zerocopy == ZeroCopy::On => PortError::other(
                port,
                format!(
                    "{what}: the driver of `{ifname}` has no zero-copy (set zerocopy = \"auto\")"
                ),
            ),
            _ => self.error(port, &what, e),
        }
    }

    /// Loads the program over `sockets` and attaches it to the interface.
    fn attach(
        &self,
        port: &str,
        ifindex: u32,
        sockets: &[XskSocket],
    ) -> Result<Attached, PortError> {
        let err = |what: &str, e| self.error(port, what, e);
        let map = XskMap::new(self.queues as u32).map_err(|e| err("creating the XSKMAP", e))?;
        for (q, s) in sockets.iter().enumerate() {
            map.set(q as u32, s.raw_fd())
                .map_err(|e| err("adding a socket to the XSKMAP", e))?;
        }
        let prog = XdpProgram::redirect(&map).map_err(|e| err("loading the XDP program", e))?;
        let native = XdpLink::attach(&prog, ifindex, XdpMode::Native);
        let link = match (self.xdp_mode, native) {
            (XdpChoice::Generic, _) => XdpLink::attach(&prog, ifindex, XdpMode::Generic),
            (_, Ok(link)) => Ok(link),
            (XdpChoice::Auto, Err(e)) if !busy(&e) && e.raw_os_error() != Some(libc::ERANGE) => {
                log::info!(
                    "port `{port}`: no native XDP on `{}` ({e}): generic mode",
                    self.interface
                );
                XdpLink::attach(&prog, ifindex, XdpMode::Generic)
            }
            (_, Err(e)) => Err(e),
        }
        .map_err(|e| self.attach_error(port, e))?;
        Ok(Attached {
            link,
            _prog: prog,
            _map: map,
        })
    }

    fn attach_error(&self, port: &str, e: io::Error) -> PortError {
        let ifname = &self.interface;
        let what = format!("attaching the XDP program to `{ifname}`");
        if busy(&e) {
            return PortError::other(
                port,
                format!(
                    "{what}: the interface already has an XDP program (`ip link show {ifname}`; \
                     `ip link set {ifname} xdp off` removes one that is not ours)"
                ),
            );
        }
        match e.raw_os_error() {
            Some(libc::ERANGE) => PortError::other(
                port,
                format!("{what}: the MTU (of the veth peer) is too large for XDP; lower it"),
            ),
            Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) if self.xdp_mode == XdpChoice::Native => {
                PortError::other(
                    port,
                    format!("{what}: the driver has no native XDP (set xdp_mode = \"auto\")"),
                )
            }
            _ => self.error(port, &what, e),
        }
    }

    /// The interface's MTU and the largest frame on it (MTU + 22, rounded
    /// up to 64, at least the default slot); an error when XDP cannot carry it.
    fn max_frame(&self, port: &str) -> Result<(usize, usize), PortError> {
        let mtu =
            sys::if_mtu(&self.interface).map_err(|e| self.error(port, "reading the MTU", e))?;
        if mtu + 22 > MAX_PORT_FRAME {
            return Err(PortError::other(
                port,
                format!(
                    "interface `{}` has MTU {mtu}: AF_XDP here carries frames of at most \
                     {MAX_PORT_FRAME} bytes (MTU {}); use driver af_packet",
                    self.interface,
                    MAX_PORT_FRAME - 22
                ),
            ));
        }
        Ok((mtu, frame_for_mtu(mtu).max(DEFAULT_MAX_FRAME)))
    }
}

/// The port's driver counters: the shared ones of the sides it opened,
/// the kernel's drops, and what it got (native XDP, zero-copy).
fn driver_stats(
    kernel: Arc<Counters>,
    rx: bool,
    tx: bool,
    native: bool,
    zerocopy: bool,
) -> Box<dyn Fn() -> BTreeMap<String, u64> + Send> {
    Box::new(move || {
        let mut m = kernel.snapshot(Sides {
            rx,
            tx,
            socket: false,
        });
        if rx {
            let get =
                |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
            m.insert("rx_kernel_drops".into(), get(&kernel.rx_kernel_drops));
            m.insert("rx_csum_completed".into(), get(&kernel.rx_csum_completed));
            m.insert("xdp_native".into(), u64::from(native));
        }
        m.insert("zerocopy".into(), u64::from(zerocopy));
        m
    })
}

/// An XDP program is attached already.
fn busy(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EEXIST))
}

impl PortSpec for AfXdpSpec {
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
        format!(
            "af_xdp: interface `{}`, {} queue(s), XDP {}, zero-copy {}, rings of {}{}",
            self.interface,
            self.queues,
            self.xdp_mode.name(),
            self.zerocopy.name(),
            self.ring_size,
            if self.need_wakeup {
                ", need-wakeup"
            } else {
                ""
            }
        )
    }

    fn open(&self, name: &str, workers: usize, rx: bool, tx: bool) -> Result<OpenPort, PortError> {
        let ifindex = self.check_interface(name)?;
        let (mtu, max_frame) = self.max_frame(name)?;
        let counters = Arc::new(Counters::default());
        let sockets = self.sockets(name, ifindex, rx, tx || !rx)?;
        let zerocopy = sockets.iter().all(XskSocket::zerocopy);
        let attached = if rx {
            Some(Arc::new(self.attach(name, ifindex, &sockets)?))
        } else {
            None
        };
        let native = attached
            .as_ref()
            .is_some_and(|a| a.link.mode() == XdpMode::Native);
        let budget = sockets.iter().map(XskSocket::tx_budget).min().unwrap_or(0);
        log::info!(
            "port `{name}`: af_xdp on `{}`, {} queue(s), {}, {}",
            self.interface,
            self.queues,
            match &attached {
                None => "no XDP program (transmit only)",
                Some(_) if native => "native XDP",
                Some(_) => "generic XDP",
            },
            if zerocopy {
                "zero-copy mode".to_string()
            } else if tx {
                format!("copy mode ({budget} frames per send call)")
            } else {
                "copy mode".to_string()
            }
        );
        let mut rx_queues: Vec<Box<dyn RxQueue>> = Vec::new();
        let mut txs = Vec::new();
        for s in sockets {
            let (r, t) = s.split();
            if let (Some(r), Some(a)) = (r, &attached) {
                let watch = LinkWatch::new(name, &self.interface, ifindex, 0);
                rx_queues.push(Box::new(rx::XdpRx::new(
                    r,
                    a.clone(),
                    counters.clone(),
                    watch,
                    self.csum_fix,
                )));
            }
            if let Some(t) = t {
                txs.push(Arc::new(Mutex::new(t)));
            }
        }
        let mut tx_queues: Vec<Box<dyn TxQueue>> = Vec::new();
        if tx {
            // The MTU, an Ethernet header and up to two VLAN tags.
            let limit = mtu + 22;
            for w in 0..workers {
                let sock = txs[w % txs.len()].clone();
                tx_queues.push(Box::new(tx::XdpTx::new(
                    sock,
                    limit,
                    name,
                    &self.interface,
                    counters.clone(),
                )));
            }
        }
        Ok(OpenPort {
            rx: rx_queues,
            tx: tx_queues,
            driver: CLASS.name.to_string(),
            driver_stats: Some(driver_stats(counters, rx, tx, native, zerocopy)),
            max_frame,
        })
    }
}

#[cfg(test)]
mod tests;
