//! Live interfaces through the hpio kernel module (`kmod/hpio.ko`):
//! `readv` and `writev` on `/dev/hpio/<interface>`, one packet per iovec,
//! straight into and out of the pool's slots.
//!
//! A slot is laid out as an hpio packet (the 12-byte `hpio_hdr` right
//! before the frame, see [`crate::packet`]), so the kernel's copy is the
//! only one: a receive burst is ONE `readv` whose iovec `i` is slot `i`'s
//! header + frame room, a transmit burst is ONE `writev` whose iovec `i` is
//! slot `i`'s header + frame.
//!
//! Receive: [`PortSpec::rx_queues`] is `queues`. Receive queue `q` is its
//! own file, opened for reading and bound to the module's queue `q`
//! (`HPIO_IOC_BIND_QUEUE`), so a worker reads one ring whatever CPU it runs
//! on. The module fills the ring of the interface's RX queue a frame came
//! in on (a multiqueue NIC), else the ring of the CPU that received it:
//! with one queue on a single-queue device, only frames received on CPU 0
//! reach ring 0 (see `docs/kmod.md`, "Queues"). While a file is open for
//! reading, the module takes every frame of the interface from the stack.
//! With `promisc` (the default), the interface is promiscuous while the
//! port receives, so that a NIC passes frames for other MAC addresses (a
//! bridge's traffic) up to the module.
//! Nothing waiting: `Got(0)` (`EAGAIN`, the files are nonblocking).
//!
//! Frame size: the port reports the interface's MTU (from the module's
//! `HPIO_IOC_GET_INFO`) + 22, rounded up to 64, as [`OpenPort::max_frame`],
//! so the run's slots hold its largest frames. A frame longer than the
//! iovec the module copies into is copied cut to it, with its whole length
//! in the header's `pktlen` (and the module's `hpio_truncated` counts it):
//! the driver drops such a frame, never hands it on, and counts it in
//! [`QueueStats::oversize`](super::QueueStats::oversize) (and `drops`) and
//! in the driver counter `rx_truncated`.
//!
//! Transmit: one file per worker, opened for writing only (the receive
//! path is left alone) and bound to queue `worker`, so each worker sends on
//! a fixed TX queue of the device. When the driver takes only part of a
//! burst (`ENOBUFS`: its queue is stopped), the rest is retried with a
//! short back-off (spins, yields, then naps: about 5 ms in all, the
//! back-pressure of a full queue), then counted as drops (`tx_full_drops`); a packet the module refuses (`EINVAL` or
//! `EMSGSIZE`) is dropped and the burst goes on: counted `oversize` when it
//! is longer than MTU + 14 (the module says only "invalid"; the length
//! tells why), else as an error (`tx_rejected`); `ENETDOWN` drops the rest of the burst. Every
//! slot goes back to the pool.
//!
//! [`OpenPort::driver_stats`] reports the module's counters of the device
//! (`HPIO_IOC_GET_STATS`, device totals: every user of the device counts)
//! as `hpio_rx_packets`, `hpio_rx_drops` (ring full), `hpio_rx_errors`,
//! `hpio_tx_packets`, `hpio_tx_errors`, `hpio_truncated`, beside the
//! driver's own `rx_truncated`, `tx_retries`, `tx_full_drops` and
//! `tx_rejected`.
//!
//! [`PortSpec::open`] fails with one line naming the fix when the device
//! node is missing (module not loaded), when a bridge or bond owns the
//! interface (`EBUSY`), or when the interface is down. Configuring touches
//! nothing.

mod rx;
mod tx;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::auto::HPIO_DEV_DIR;
use super::burst::{Counters, Sides};
use super::{OpenPort, PortClass, PortError, PortSpec, RxQueue, TxQueue};
use crate::params::{Need, ParamError, ParamSpec, ParamType, Params};
use crate::sys::hpio_dev::{HpioDev, INFO_UP, QUEUE_ALL};
use crate::sys::netdev;
use crate::sys::packet_socket::PacketSocket;

/// The `hpio` driver.
pub const CLASS: PortClass = PortClass {
    name: "hpio",
    summary: "a live interface through the hpio kernel module (readv/writev on \
              /dev/hpio/<interface>, no copy in user space)",
    params: PARAMS,
    configure,
};

/// Most receive queues.
pub const MAX_QUEUES: usize = 256;

/// Packets per `readv`/`writev` call at most (bigger bursts take several calls).
const MAX_BURST: usize = 256;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "interface",
        ty: ParamType::Str,
        need: Need::Required,
        doc: "the network interface, as `ip link` names it (the module serves it as \
              /dev/hpio/<interface>)",
    },
    ParamSpec {
        name: "queues",
        ty: ParamType::Int {
            min: 1,
            max: MAX_QUEUES as i64,
        },
        need: Need::Default("1"),
        doc: "receive queues: queue q reads the module's ring q (the NIC's RX queue q, \
              or CPU q on a single-queue device), spread over the workers",
    },
    ParamSpec {
        name: "promisc",
        ty: ParamType::Bool,
        need: Need::Default("true"),
        doc: "put the interface in promiscuous mode while the port receives (a NIC \
              otherwise drops frames for other MAC addresses before hpio sees them)",
    },
];

/// A configured `hpio` port: checked values, nothing opened.
#[derive(Debug, Clone, PartialEq)]
struct HpioSpec {
    interface: String,
    queues: usize,
    promisc: bool,
    /// Where the device nodes are ([`HPIO_DEV_DIR`]; tests use another).
    dev_dir: PathBuf,
}

fn configure(p: &Params) -> Result<Box<dyn PortSpec>, ParamError> {
    Ok(Box::new(HpioSpec::from_params(p, Path::new(HPIO_DEV_DIR))?))
}

impl HpioSpec {
    fn from_params(p: &Params, dev_dir: &Path) -> Result<HpioSpec, ParamError> {
        let interface = p.str("interface")?.to_string();
        if interface.is_empty()
            || interface.len() >= 16
            || interface == "."
            || interface == ".."
            || interface
                .chars()
                .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
        {
            return Err(ParamError::new(
                "interface",
                format!(
                    "`{}` is not a valid interface name (1 to 15 bytes, no '/', ':' or spaces)",
                    interface.escape_debug()
                ),
            ));
        }
        let queues = p.usize("queues")?;
        if !(1..=MAX_QUEUES).contains(&queues) {
            return Err(ParamError::new(
                "queues",
                format!("expected 1..={MAX_QUEUES}, got {queues}"),
            ));
        }
        Ok(HpioSpec {
            interface,
            queues,
            promisc: p.bool("promisc")?,
            dev_dir: dev_dir.to_path_buf(),
        })
    }

    fn node(&self) -> PathBuf {
        self.dev_dir.join(&self.interface)
    }

    /// Opens the node, mapping failures to what the user can do about them.
    fn open_dev(&self, port: &str, read: bool) -> Result<HpioDev, PortError> {
        let node = self.node();
        let ifname = &self.interface;
        HpioDev::open(&node, read).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENXIO) | Some(libc::ENODEV) => {
                if self.dev_dir.exists() {
                    PortError::other(
                        port,
                        format!(
                            "no {}: the hpio module does not serve interface `{ifname}` \
                             (check `ip link`; only the initial namespace is served)",
                            node.display()
                        ),
                    )
                } else {
                    PortError::other(
                        port,
                        format!(
                            "no {}: hpio module not loaded? `insmod kmod/hpio.ko`",
                            node.display()
                        ),
                    )
                }
            }
            Some(libc::EBUSY) => PortError::other(
                port,
                format!(
                    "interface `{ifname}` is owned by another receiver (a bridge, bond, team \
                     or macvlan port): take it out (`ip link set {ifname} nomaster`) or use \
                     driver = \"af_packet\""
                ),
            ),
            Some(libc::EPERM) | Some(libc::EACCES) => PortError::other(
                port,
                format!("{}: permission denied (run as root)", node.display()),
            ),
            _ => PortError::io(port, format!("opening {}", node.display()), e),
        })
    }

    /// A warning when the port reads fewer of the module's rings than can
    /// receive this interface's frames: the frames of the others wait in
    /// the module until its rings overflow (`rx_drops`).
    fn queue_advice(&self, port: &str, nqueues: usize) -> Option<String> {
        let ifname = &self.interface;
        let rx_queues = std::fs::read_dir(format!("/sys/class/net/{ifname}/queues"))
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
            .count();
        let cpus = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|s| cpu_count(&s))?;
        let rings = receiving_rings(rx_queues, cpus, nqueues);
        (self.queues < rings).then(|| {
            let why = if rx_queues > 1 {
                format!("{rx_queues} RX queues, a ring each")
            } else {
                format!("one RX queue: a ring per CPU that receives, {cpus} CPUs")
            };
            format!(
                "port `{port}`: reads {} of the {rings} rings that receive `{ifname}`'s frames \
                 ({why}); frames on the others are dropped by the module (rx_drops): set \
                 queues = {rings}",
                self.queues
            )
        })
    }

    /// A packet socket that receives nothing (protocol 0) and holds the
    /// interface in promiscuous mode until it is closed. The kernel counts
    /// such users, so other holders (tcpdump, a bridge) are unaffected.
    fn promisc_membership(&self, port: &str) -> Result<PacketSocket, PortError> {
        let ifname = &self.interface;
        let err = |e: io::Error| {
            PortError::io(
                port,
                format!("turning promiscuous mode on for `{ifname}` (or set promisc = false)"),
                e,
            )
        };
        let index = netdev::if_index(ifname)
            .map_err(err)?
            .ok_or_else(|| PortError::other(port, format!("no interface `{ifname}`")))?;
        let socket = PacketSocket::new().map_err(err)?;
        socket.add_promisc(index).map_err(err)?;
        Ok(socket)
    }

    fn ioctl_error(&self, port: &str, what: &str, e: io::Error) -> PortError {
        PortError::io(
            port,
            format!(
                "{what} on {} (is it an hpio device?)",
                self.node().display()
            ),
            e,
        )
    }
}

impl PortSpec for HpioSpec {
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
        let mut s = format!(
            "hpio: interface `{}` ({})",
            self.interface,
            self.node().display()
        );
        if self.queues > 1 {
            s += &format!(", {} queues", self.queues);
        }
        s
    }

    fn open(&self, name: &str, workers: usize, rx: bool, tx: bool) -> Result<OpenPort, PortError> {
        // A writer-only file to check the device and read its counters: it
        // never disturbs the receive path.
        let (probe, nqueues, mtu) = self.probe(name, rx)?;
        let counters = Arc::new(Counters::default());
        let rxq = if rx {
            self.open_rx(name, &counters)?
        } else {
            Vec::new()
        };
        let txq = if tx {
            self.open_tx(name, workers, nqueues, mtu + 14, &counters)?
        } else {
            Vec::new()
        };
        Ok(OpenPort {
            rx: rxq,
            tx: txq,
            driver: "hpio".into(),
            driver_stats: Some(Box::new(driver_stats(probe, counters, rx, tx))),
            max_frame: super::frame_for_mtu(mtu).clamp(
                crate::packet::DEFAULT_MAX_FRAME,
                crate::packet::MAX_FRAME_LIMIT,
            ),
        })
    }
}

impl HpioSpec {
    /// Opens the device writer-only and checks it: the interface is up and,
    /// to receive, the module has the queues asked for. Returns the file, the
    /// module's queue count and the interface's MTU.
    fn probe(&self, name: &str, rx: bool) -> Result<(HpioDev, usize, usize), PortError> {
        let ifname = &self.interface;
        let probe = self.open_dev(name, false)?;
        let info = probe
            .info()
            .map_err(|e| self.ioctl_error(name, "HPIO_IOC_GET_INFO", e))?;
        if info.flags & INFO_UP == 0 {
            return Err(PortError::other(
                name,
                format!("interface `{ifname}` is down: `ip link set {ifname} up`"),
            ));
        }
        let nqueues = info.nqueues.max(1) as usize;
        if rx && self.queues > nqueues {
            return Err(PortError::other(
                name,
                format!(
                    "queues = {}, but the module has {nqueues} queue(s) for `{ifname}` \
                     (max(CPUs, RX queues, TX queues)): lower `queues`",
                    self.queues
                ),
            ));
        }
        if rx {
            if let Some(advice) = self.queue_advice(name, nqueues) {
                log::warn!("{advice}");
            }
        }
        Ok((probe, nqueues, info.mtu as usize))
    }

    /// The receive queues: one file bound to each of the first `queues`
    /// rings; the first also holds the promiscuous membership, if asked.
    fn open_rx(
        &self,
        name: &str,
        counters: &Arc<Counters>,
    ) -> Result<Vec<Box<dyn RxQueue>>, PortError> {
        // The module takes what the device accepts; a NIC filters on its
        // own MAC addresses unless promiscuous.
        let mut promisc = if self.promisc {
            Some(self.promisc_membership(name)?)
        } else {
            None
        };
        let mut rxq: Vec<Box<dyn RxQueue>> = Vec::new();
        for q in 0..self.queues {
            let dev = self.open_dev(name, true)?;
            dev.bind_queue(q as u32)
                .map_err(|e| self.ioctl_error(name, "HPIO_IOC_BIND_QUEUE", e))?;
            rxq.push(Box::new(rx::HpioRx::new(
                dev,
                MAX_BURST,
                name,
                &self.interface,
                counters.clone(),
                promisc.take(),
            )));
        }
        Ok(rxq)
    }

    /// The transmit handles: one file per worker, bound to ring `w % nqueues`.
    fn open_tx(
        &self,
        name: &str,
        workers: usize,
        nqueues: usize,
        max_frame: usize,
        counters: &Arc<Counters>,
    ) -> Result<Vec<Box<dyn TxQueue>>, PortError> {
        let mut txq: Vec<Box<dyn TxQueue>> = Vec::new();
        for w in 0..workers {
            let dev = self.open_dev(name, false)?;
            dev.bind_queue((w % nqueues) as u32)
                .map_err(|e| self.ioctl_error(name, "HPIO_IOC_BIND_QUEUE", e))?;
            txq.push(Box::new(tx::HpioTx::new(
                dev,
                MAX_BURST,
                name,
                &self.interface,
                max_frame,
                counters.clone(),
            )));
        }
        Ok(txq)
    }
}

/// The port's extra counters: the module's for the interface (read through
/// `probe`), and the driver's own for the sides opened.
fn driver_stats(
    probe: HpioDev,
    counters: Arc<Counters>,
    want_rx: bool,
    want_tx: bool,
) -> impl Fn() -> BTreeMap<String, u64> + Send {
    move || {
        let mut m = BTreeMap::new();
        if let Ok(s) = probe.stats(QUEUE_ALL) {
            for (k, v) in [
                ("hpio_rx_packets", s.rx_packets),
                ("hpio_rx_drops", s.rx_drops),
                ("hpio_rx_errors", s.rx_errors),
                ("hpio_tx_packets", s.tx_packets),
                ("hpio_tx_errors", s.tx_errors),
                ("hpio_truncated", s.truncated),
            ] {
                m.insert(k.to_string(), v);
            }
        }
        m.extend(counters.snapshot(Sides {
            rx: want_rx,
            tx: want_tx,
            socket: false,
        }));
        m
    }
}

/// How many of the module's rings receive an interface's frames: one per
/// hardware RX queue on a multiqueue device, else one per CPU (the ring of
/// the CPU that received the frame); never more than the module has.
fn receiving_rings(rx_queues: usize, cpus: usize, nqueues: usize) -> usize {
    let rings = if rx_queues > 1 { rx_queues } else { cpus };
    rings.clamp(1, nqueues.max(1))
}

/// The number of CPU ids in a kernel CPU list such as `0-3,6,8-9` (the
/// highest id plus one: the rings are indexed by CPU id).
fn cpu_count(list: &str) -> Option<usize> {
    let mut top = None;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let last = part.rsplit('-').next()?;
        let id: usize = last.trim().parse().ok()?;
        top = top.max(Some(id));
    }
    top.map(|t| t + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Value;

    #[test]
    fn rings_that_receive_follow_rx_queues_or_cpus() {
        assert_eq!(cpu_count("0-1\n"), Some(2));
        assert_eq!(cpu_count("0,2-3,7"), Some(8));
        assert_eq!(cpu_count("5"), Some(6));
        assert_eq!(cpu_count(""), None);
        assert_eq!(cpu_count("0-x"), None);
        // A 4-queue NIC on 8 CPUs: the 4 queues' rings.
        assert_eq!(receiving_rings(4, 8, 8), 4);
        // A single-queue device (veth) on 2 CPUs: each CPU's ring.
        assert_eq!(receiving_rings(1, 2, 2), 2);
        // Never more than the module's rings.
        assert_eq!(receiving_rings(1, 64, 8), 8);
        assert_eq!(receiving_rings(0, 0, 0), 1);
    }

    #[test]
    fn too_few_queues_get_a_warning_naming_the_fix() {
        // `lo` has one RX queue: its frames land in the ring of the CPU
        // that receives them.
        let cpus = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|s| cpu_count(&s))
            .unwrap();
        let spec = |q| HpioSpec::from_params(&params("lo", q), Path::new(HPIO_DEV_DIR)).unwrap();
        let advice = spec(1).queue_advice("wan", cpus);
        if cpus > 1 {
            let a = advice.expect("a warning");
            assert!(
                a.starts_with(&format!("port `wan`: reads 1 of the {cpus} rings")),
                "{a}"
            );
            assert!(a.ends_with(&format!("set queues = {cpus}")), "{a}");
        } else {
            assert_eq!(advice, None);
        }
        assert_eq!(spec(cpus as i64).queue_advice("wan", cpus), None);
        // No such interface: no advice (open reports the real problem).
        let none = HpioSpec::from_params(&params("hpnf-none9", 1), Path::new(HPIO_DEV_DIR));
        assert_eq!(none.unwrap().queue_advice("wan", 8), None);
    }

    fn params(ifname: &str, queues: i64) -> Params {
        let mut p = Params::new();
        p.set("interface", Value::Str(ifname.into()))
            .set("queues", Value::Int(queues))
            .set("promisc", Value::Bool(true));
        p
    }

    #[test]
    fn params_are_checked() {
        let s = HpioSpec::from_params(&params("eth1", 4), Path::new(HPIO_DEV_DIR)).unwrap();
        assert_eq!(s.rx_queues(), 4);
        assert!(s.endless());
        assert_eq!(
            s.describe(),
            "hpio: interface `eth1` (/dev/hpio/eth1), 4 queues"
        );
        for bad in ["", "a/b", "x:1", "much-too-long-name", "..", "a b"] {
            let e = HpioSpec::from_params(&params(bad, 1), Path::new(HPIO_DEV_DIR)).unwrap_err();
            assert_eq!(e.param, "interface", "{bad:?}");
        }
        for q in [0, 257, -1] {
            let e = HpioSpec::from_params(&params("eth1", q), Path::new(HPIO_DEV_DIR)).unwrap_err();
            assert_eq!(e.param, "queues", "{q}");
        }
    }

    #[test]
    fn params_from_toml_with_defaults() {
        let reg = crate::port::PortRegistry::builtin();
        let class = reg.get("hpio").expect("registered");
        assert_eq!(class.name, "hpio");
        let mut p = Params::new();
        p.set("interface", Value::Str("eth9".into()))
            .set("queues", Value::Int(1))
            .set("promisc", Value::Bool(false));
        let spec = (class.configure)(&p).unwrap();
        assert_eq!(spec.rx_queues(), 1);
        let missing = Params::new();
        assert!((class.configure)(&missing).is_err());
    }

    #[test]
    fn missing_node_says_load_the_module() {
        let dir = std::env::temp_dir().join(format!("hpio-nf-nodev-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = HpioSpec::from_params(&params("hpnf-x0", 1), &dir).unwrap();
        let e = s.open("wan", 1, true, true).err().unwrap().to_string();
        assert_eq!(
            e,
            format!(
                "port `wan`: no {}/hpnf-x0: hpio module not loaded? `insmod kmod/hpio.ko`",
                dir.display()
            )
        );
        // The directory exists (module loaded) but not this interface's node.
        std::fs::create_dir_all(&dir).unwrap();
        let e = s.open("wan", 1, true, true).err().unwrap().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.contains("does not serve interface `hpnf-x0`"), "{e}");
    }

    #[test]
    fn a_node_that_is_no_hpio_device_is_refused() {
        // /dev/null opens, but GET_INFO fails: a clear error, no panic.
        let s = HpioSpec::from_params(&params("null", 1), Path::new("/dev")).unwrap();
        let e = s.open("p", 1, false, true).err().unwrap().to_string();
        assert!(e.contains("HPIO_IOC_GET_INFO on /dev/null"), "{e}");
    }
}
