//! `driver = "auto"`: the hpio driver when the module serves the interface,
//! else AF_XDP where the kernel and the interface allow it, else AF_PACKET.
//!
//! The choice is made when the port is opened (configuring touches nothing):
//! hpio when a driver named `hpio` is built in ([`PortRegistry::builtin`])
//! and `/dev/hpio/<interface>` exists; otherwise `af_xdp` is tried, and
//! when it cannot open (no AF_XDP in the kernel, no privilege, an XDP
//! program already on the interface, an MTU too large for XDP, fewer
//! queues than `queues`) `af_packet` opens instead, the reason logged.
//! The parameters are those of `af_packet`; when hpio or af_xdp is picked
//! it is configured with those of them it declares, its other parameters
//! at their defaults.
//! [`OpenPort::driver`] names the driver picked, so the run log shows it,
//! and the reason is logged at `info` level.

use std::path::{Path, PathBuf};

use super::af_packet::{self, AfPacketSpec};
use super::af_xdp;
use super::{OpenPort, PortClass, PortError, PortRegistry, PortSpec};
use crate::params::{Need, ParamError, ParamType, Params, Value};

/// The `auto` driver.
pub const CLASS: PortClass = PortClass {
    name: "auto",
    summary: "a live interface: hpio when /dev/hpio/<interface> exists, else af_xdp where it \
              opens, else af_packet",
    params: af_packet::PARAMS,
    configure,
};

/// Where the hpio module puts one device per interface it serves.
pub const HPIO_DEV_DIR: &str = "/dev/hpio";

/// A configured `auto` port.
#[derive(Debug)]
struct AutoSpec {
    af_packet: AfPacketSpec,
    /// The parameters, handed on to hpio when it is picked.
    params: Params,
    /// The hpio driver, when there is one.
    hpio: Option<PortClass>,
    dev_dir: PathBuf,
}

fn configure(p: &Params) -> Result<Box<dyn PortSpec>, ParamError> {
    let hpio = PortRegistry::builtin().get("hpio").copied();
    Ok(Box::new(AutoSpec::new(p, hpio, Path::new(HPIO_DEV_DIR))?))
}

/// The driver `auto` picks and why.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Choice {
    Hpio,
    AfPacket(&'static str),
}

/// hpio when there is an hpio driver and `dev_dir/<interface>` exists.
fn choose(have_hpio: bool, dev_dir: &Path, interface: &str) -> Choice {
    if !have_hpio {
        Choice::AfPacket("no hpio driver in this build")
    } else if dev_dir.join(interface).exists() {
        Choice::Hpio
    } else {
        Choice::AfPacket("the hpio module does not serve it")
    }
}

/// The value of a parameter default (a TOML literal), for the scalar types.
fn default_value(lit: &str, ty: &ParamType) -> Option<Value> {
    match ty {
        ParamType::Bool => lit.parse().ok().map(Value::Bool),
        ParamType::Int { .. } => lit.parse().ok().map(Value::Int),
        ParamType::Float => lit.parse().ok().map(Value::Float),
        _ => {
            let s = lit.strip_prefix('"')?.strip_suffix('"')?;
            ty.parse_str(s).ok()
        }
    }
}

impl AutoSpec {
    fn new(p: &Params, hpio: Option<PortClass>, dev_dir: &Path) -> Result<AutoSpec, ParamError> {
        Ok(AutoSpec {
            af_packet: AfPacketSpec::from_params(p)?,
            params: p.clone(),
            hpio,
            dev_dir: dev_dir.to_path_buf(),
        })
    }

    /// The hpio driver's parameters: ours that it declares, its defaults for the rest.
    fn hpio_params(&self, class: &PortClass) -> Params {
        self.params_for(class)
    }

    /// Driver `class`'s parameters: ours that it declares, its defaults for the rest.
    fn params_for(&self, class: &PortClass) -> Params {
        let mut p = Params::new();
        for spec in class.params {
            if let Some(v) = self.params.get(spec.name) {
                p.set(spec.name, v.clone());
            } else if let Need::Default(lit) = spec.need {
                if let Some(v) = default_value(lit, &spec.ty) {
                    p.set(spec.name, v);
                }
            }
        }
        p
    }
}

impl PortSpec for AutoSpec {
    fn rx_queues(&self) -> usize {
        self.af_packet.rx_queues()
    }

    fn endless(&self) -> bool {
        true
    }

    fn interface(&self) -> Option<&str> {
        Some(&self.af_packet.interface)
    }

    fn describe(&self) -> String {
        format!(
            "auto: hpio if {}/{} exists, else af_xdp if it opens, else {}",
            self.dev_dir.display(),
            self.af_packet.interface,
            self.af_packet.describe()
        )
    }

    fn open(&self, name: &str, workers: usize, rx: bool, tx: bool) -> Result<OpenPort, PortError> {
        let ifname = &self.af_packet.interface;
        let dev = self.dev_dir.join(ifname);
        match (
            choose(self.hpio.is_some(), &self.dev_dir, ifname),
            &self.hpio,
        ) {
            (Choice::Hpio, Some(class)) => {
                log::info!(
                    "port `{name}`: driver auto picked hpio ({} exists)",
                    dev.display()
                );
                let spec = (class.configure)(&self.hpio_params(class)).map_err(|e| {
                    PortError::other(
                        name,
                        format!(
                            "driver auto picked hpio ({} exists), but {e}",
                            dev.display()
                        ),
                    )
                })?;
                let mut open = spec.open(name, workers, rx, tx)?;
                if open.rx.len() != self.rx_queues() && rx {
                    log::warn!(
                        "port `{name}`: hpio opened {} receive queue(s), not {}",
                        open.rx.len(),
                        self.rx_queues()
                    );
                }
                open.driver = class.name.to_string();
                Ok(open)
            }
            (choice, _) => {
                let why = match choice {
                    Choice::AfPacket(why) => why,
                    Choice::Hpio => "no hpio driver",
                };
                let xdp = (af_xdp::CLASS.configure)(&self.params_for(&af_xdp::CLASS))
                    .map_err(|e| e.to_string())
                    .and_then(|spec| spec.open(name, workers, rx, tx).map_err(|e| e.to_string()));
                match xdp {
                    Ok(open) => {
                        log::info!(
                            "port `{name}`: driver auto picked af_xdp for `{ifname}` \
                             ({why}: {} {})",
                            dev.display(),
                            if dev.exists() { "exists" } else { "not found" }
                        );
                        Ok(open)
                    }
                    Err(e) => {
                        log::info!(
                            "port `{name}`: driver auto picked af_packet for `{ifname}` \
                             ({why}: {} {}; af_xdp did not open: {e})",
                            dev.display(),
                            if dev.exists() { "exists" } else { "not found" }
                        );
                        self.af_packet.open(name, workers, rx, tx)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ParamSpec;
    use crate::port::{QueueStats, RxQueue};

    fn params(ifname: &str) -> Params {
        let mut p = Params::new();
        p.set("interface", Value::Str(ifname.into()))
            .set("queues", Value::Int(3))
            .set("promisc", Value::Bool(true))
            .set("qdisc_bypass", Value::Bool(true))
            .set("fanout_defrag", Value::Bool(false))
            .set("rx_mode", Value::Str("mmsg".into()))
            .set("vnet_hdr", Value::Bool(true))
            .set("socket_buffer", Value::Int(1 << 20));
        p
    }

    /// A stand-in for the hpio driver: opens without touching anything and
    /// reports the queues and the `mode` parameter it was configured with.
    #[derive(Debug)]
    struct FakeHpio {
        queues: usize,
        mode: String,
    }

    struct NoRx;
    impl RxQueue for NoRx {
        fn recv(
            &mut self,
            _: &mut crate::packet::Pool,
            _: &mut crate::packet::Batch,
            _: usize,
        ) -> Result<crate::port::Recv, PortError> {
            Ok(crate::port::Recv::Got(0))
        }
        fn stats(&self) -> QueueStats {
            QueueStats::default()
        }
    }

    impl PortSpec for FakeHpio {
        fn rx_queues(&self) -> usize {
            self.queues
        }
        fn endless(&self) -> bool {
            true
        }
        fn describe(&self) -> String {
            "fake hpio".into()
        }
        fn open(&self, _: &str, _: usize, _: bool, _: bool) -> Result<OpenPort, PortError> {
            Ok(OpenPort {
                rx: (0..self.queues)
                    .map(|_| Box::new(NoRx) as Box<dyn RxQueue>)
                    .collect(),
                tx: Vec::new(),
                driver: format!("fake({})", self.mode),
                driver_stats: None,
                max_frame: crate::packet::DEFAULT_MAX_FRAME,
            })
        }
    }

    const FAKE_PARAMS: &[ParamSpec] = &[
        ParamSpec {
            name: "interface",
            ty: ParamType::Str,
            need: Need::Required,
            doc: "",
        },
        ParamSpec {
            name: "queues",
            ty: ParamType::UINT,
            need: Need::Default("1"),
            doc: "",
        },
        ParamSpec {
            name: "mode",
            ty: ParamType::Choice(&["copy", "zero"]),
            need: Need::Default("\"zero\""),
            doc: "",
        },
    ];

    fn fake_configure(p: &Params) -> Result<Box<dyn PortSpec>, ParamError> {
        Ok(Box::new(FakeHpio {
            queues: p.usize("queues")?,
            mode: p.str("mode")?.to_string(),
        }))
    }

    const FAKE: PortClass = PortClass {
        name: "hpio",
        summary: "",
        params: FAKE_PARAMS,
        configure: fake_configure,
    };

    /// A temporary directory standing in for /dev/hpio.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let d = std::env::temp_dir().join(format!("hpio-nf-auto-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&d).unwrap();
            TempDir(d)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn choice_needs_both_the_driver_and_the_device() {
        let dir = TempDir::new("choice");
        std::fs::write(dir.0.join("eth7"), b"").unwrap();
        assert_eq!(choose(true, &dir.0, "eth7"), Choice::Hpio);
        assert!(matches!(choose(false, &dir.0, "eth7"), Choice::AfPacket(_)));
        assert!(matches!(choose(true, &dir.0, "eth8"), Choice::AfPacket(_)));
    }

    #[test]
    fn picks_hpio_when_registered_and_the_device_exists() {
        let dir = TempDir::new("pick");
        // The interface need not exist for hpio (the fake opens nothing).
        std::fs::write(dir.0.join("hpfake0"), b"").unwrap();
        let spec = AutoSpec::new(&params("hpfake0"), Some(FAKE), &dir.0).unwrap();
        let open = spec.open("lan", 1, true, false).unwrap();
        assert_eq!(open.driver, "hpio");
        // Our queues were handed on, its own default filled in.
        assert_eq!(open.rx.len(), 3);
        let hp = spec.hpio_params(&FAKE);
        assert_eq!(hp.get("mode"), Some(&Value::Str("zero".into())));
        assert_eq!(hp.get("promisc"), None, "only parameters hpio declares");
    }

    #[test]
    fn falls_back_to_af_packet_without_device_or_driver() {
        let dir = TempDir::new("fallback");
        for hpio in [Some(FAKE), None] {
            let spec = AutoSpec::new(&params("hpnf-nosuch0"), hpio, &dir.0).unwrap();
            // af_packet's own check runs (and fails: no such interface).
            let e = spec.open("lan", 1, true, false).err().unwrap();
            assert_eq!(
                e.to_string(),
                "port `lan`: no interface `hpnf-nosuch0` (check `ip link`)"
            );
        }
        // On an interface that exists, with more queues than `lo` has for
        // AF_XDP, the port opens as af_packet.
        let spec = AutoSpec::new(&params("lo"), Some(FAKE), &dir.0).unwrap();
        let open = spec.open("lan", 2, true, true).unwrap();
        assert_eq!(open.driver, "af_packet");
        assert_eq!(open.rx.len(), 3);
        assert_eq!(open.tx.len(), 2);
    }

    /// Needs root: on a veth with one queue, `auto` opens af_xdp; while
    /// that port holds the queue, a second `auto` port falls back to
    /// af_packet.
    #[test]
    fn picks_af_xdp_where_it_opens() {
        let needs = [testkit::Need::Root, testkit::Need::Command("ip")];
        if !testkit::require("port::auto::picks_af_xdp_where_it_opens", &needs) {
            return;
        }
        let dir = TempDir::new("xdp");
        let (a, b) = (
            testkit::net::unique("afx", "u", ""),
            testkit::net::unique("afx", "v", ""),
        );
        let veth = testkit::net::Veth::new(&a, &b).up();
        let mut p = params(&veth.a);
        p.set("queues", Value::Int(1));
        let spec = AutoSpec::new(&p, Some(FAKE), &dir.0).unwrap();
        let open = spec.open("lan", 1, true, true).unwrap();
        assert_eq!(open.driver, "af_xdp");
        let second = spec.open("lan2", 1, true, true).unwrap();
        assert_eq!(second.driver, "af_packet");
    }

    #[test]
    fn configure_checks_af_packet_params_and_touches_nothing() {
        let spec = configure(&params("nosuch-if9")).unwrap();
        assert_eq!(spec.rx_queues(), 3);
        assert!(spec.endless());
        assert!(
            spec.describe().contains("/dev/hpio/nosuch-if9"),
            "{}",
            spec.describe()
        );
        let e = configure(&params("bad/name")).unwrap_err();
        assert_eq!(e.param, "interface");
    }

    #[test]
    fn defaults_parse_by_type() {
        assert_eq!(
            default_value("true", &ParamType::Bool),
            Some(Value::Bool(true))
        );
        assert_eq!(default_value("32", &ParamType::UINT), Some(Value::Int(32)));
        assert_eq!(
            default_value("1.5", &ParamType::Float),
            Some(Value::Float(1.5))
        );
        assert_eq!(
            default_value("\"10ms\"", &ParamType::Duration),
            Some(Value::Duration(std::time::Duration::from_millis(10)))
        );
        assert_eq!(default_value("[]", &ParamType::Str), None);
    }
}
