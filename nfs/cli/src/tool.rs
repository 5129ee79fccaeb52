//! What the traffic tools (`pktgen`, `dump`) share: a port opened from the
//! command line on any driver, the packet filter, stop conditions, and
//! rate formatting.
//!
//! A tool's ports are checked exactly as a config's are: the tool writes a
//! small config (its ports and one connection) and loads it with
//! [`Config::parse_str`], so driver parameters get the same checks, defaults
//! and messages as in a file; `--param KEY=VALUE` becomes the override
//! `ports.NAME.KEY=VALUE`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hpio_nf::config::{Config, ConfigErrors};
use hpio_nf::element::Registry;
use hpio_nf::elements::classify;
use hpio_nf::packet::Packet;
use hpio_nf::port::auto::HPIO_DEV_DIR;
use hpio_nf::port::{PortSpec, QueueStats};

/// The options that pick and configure a port.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct PortArgs {
    /// Network interface (the driver's `interface` parameter).
    #[arg(short = 'i', long, value_name = "IFNAME")]
    pub interface: Option<String>,
    /// Port driver: `auto` (hpio when the module serves the interface, else
    /// af_packet; never af_xdp, which takes the interface's frames away from
    /// the kernel), `af_packet`, `af_xdp`, or any other (`pcap`,
    /// `generator`) with --param.
    #[arg(long, value_name = "DRIVER", default_value = "auto")]
    pub driver: String,
    /// A driver parameter, as in a config's port table: `queues=2`,
    /// `rx_mode=ring`, `output=x.pcap` (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
}

impl PortArgs {
    /// The `[ports.NAME]` table of this port, with `extra` lines (driver
    /// parameters the tool sets itself, unless `--param` sets them).
    pub fn table(&self, name: &str, extra: &[(&str, String)]) -> String {
        let mut t = format!("[ports.{name}]\ndriver = {}\n", toml_str(self.driver()));
        if let Some(i) = &self.interface {
            let _ = writeln!(t, "interface = {}", toml_str(i));
        }
        for (k, v) in extra {
            if !self.sets(k) {
                let _ = writeln!(t, "{k} = {v}");
            }
        }
        t
    }

    /// The driver to open. For the tools `auto` means hpio when the module
    /// serves the interface, else AF_PACKET, never AF_XDP: its XDP program
    /// takes the interface's received frames away from the kernel's stack
    /// and it sees no outgoing frames, wrong for a capture (`dump`) and for
    /// a generator or sink beside other traffic. `--driver af_xdp` asks for it.
    fn driver(&self) -> &str {
        match (self.driver.as_str(), &self.interface) {
            ("auto", Some(i)) if !Path::new(HPIO_DEV_DIR).join(i).exists() => "af_packet",
            (d, _) => d,
        }
    }

    /// Fails when the driver needs an interface and neither `-i` nor
    /// `--param interface=...` gives one.
    pub fn check(&self) -> anyhow::Result<()> {
        let needs = crate::port_registry()
            .get(&self.driver)
            .and_then(|c| c.params.iter().find(|p| p.name == "interface"))
            .is_some_and(|p| p.need == hpio_nf::element::Need::Required);
        if needs && self.interface.is_none() && !self.sets("interface") {
            bail!(
                "no interface: give one with -i IFNAME (driver `{}` needs it)",
                self.driver
            );
        }
        Ok(())
    }

    /// Whether `--param` sets `key`.
    pub fn sets(&self, key: &str) -> bool {
        self.params
            .iter()
            .any(|p| p.split_once('=').is_some_and(|(k, _)| k.trim() == key))
    }

    /// The `--param`s as overrides of port `name`.
    pub fn overrides(&self, name: &str) -> Vec<String> {
        self.params
            .iter()
            .map(|p| format!("ports.{name}.{}", p.trim()))
            .collect()
    }

    /// Whether the driver declares parameter `param`.
    pub fn driver_has(&self, param: &str) -> bool {
        crate::port_registry()
            .get(&self.driver)
            .is_some_and(|c| c.params.iter().any(|p| p.name == param))
    }

    /// The interface, or the port's description when there is none (for messages).
    pub fn label(&self, spec: &dyn PortSpec) -> String {
        match &self.interface {
            Some(i) => format!("`{i}`"),
            None => spec.describe(),
        }
    }
}

/// A TOML basic string holding `s`. JSON string escapes (`\"`, `\\`, `\n`,
/// `\uXXXX`, ...) are a subset of TOML's, so JSON's quoting serves.
pub(crate) fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// Loads a tool's generated config (`connections` plus port tables) with
/// the built-in drivers. Errors become one line each, naming the tool's
/// options rather than a file position.
pub(crate) fn load_config(
    tool: &str,
    connections: &[&str],
    tables: &[String],
    overrides: &[String],
) -> anyhow::Result<Config> {
    let conns: Vec<String> = connections.iter().map(|c| toml_str(c)).collect();
    let mut text = format!("connections = [{}]\n", conns.join(", "));
    for t in tables {
        text += t;
    }
    Config::parse_str(
        &text,
        &format!("<{tool}>"),
        &Registry::builtin(),
        &crate::port_registry(),
        overrides,
    )
    .map_err(|e| anyhow::anyhow!(one_line(&e)))
}

/// The problems of a generated config, one per line, without positions in
/// a text the user never wrote.
fn one_line(errors: &ConfigErrors) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|e| match &e.help {
            Some(h) => format!("{} ({h})", e.message),
            None => e.message.clone(),
        })
        .collect();
    lines.join("\nerror: ")
}

/// A packet filter in the Classify rule language (`tcp and dst port 80`);
/// frames whose headers do not parse never pass.
#[derive(Clone)]
pub(crate) struct Filter(classify::Filter);

impl Filter {
    /// Parses `text`; the error points at the offending word.
    pub fn parse(text: &str) -> anyhow::Result<Filter> {
        classify::Filter::parse(text)
            .map(Filter)
            .map_err(|e| anyhow::anyhow!(classify::Filter::explain("--filter", text, &e)))
    }

    /// Whether packet `p` passes (its header parse is cached in the slot).
    #[inline]
    pub fn pass(&self, p: &mut Packet) -> bool {
        self.0.matches(p)
    }
}

/// Parses a duration for clap: `10us`, `250ms`, `5s`, `1.5`, `2m`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    hpio_nf::element::parse_duration(s).ok_or_else(|| {
        format!("expected a duration such as 10us, 250ms, 5s or 1.5 (seconds), got `{s}`")
    })
}

/// Sets `stop` on SIGINT or SIGTERM; a second signal exits at once.
pub(crate) fn stop_on_signals(stop: &Arc<AtomicBool>) -> anyhow::Result<()> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .context("installing signal handler")?;
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    Ok(())
}

/// Counters one thread publishes (a cache line of its own, so threads do
/// not share lines); written once per batch, read by the main thread.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Live {
    packets: AtomicU64,
    bytes: AtomicU64,
    drops: AtomicU64,
    errors: AtomicU64,
    done: AtomicBool,
}

impl Live {
    /// Publishes the thread's counters so far.
    #[inline]
    pub fn publish(&self, s: &QueueStats) {
        self.packets.store(s.packets, Ordering::Relaxed);
        self.bytes.store(s.bytes, Ordering::Relaxed);
        self.drops.store(s.drops, Ordering::Relaxed);
        self.errors.store(s.errors, Ordering::Relaxed);
    }

    /// Marks the thread finished (after its last [`Live::publish`]).
    pub fn finish(&self) {
        self.done.store(true, Ordering::Release);
    }

    /// Whether the thread has finished.
    pub fn done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// The counters published so far.
    pub fn read(&self) -> QueueStats {
        QueueStats {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            drops: self.drops.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            ..QueueStats::default()
        }
    }
}

/// Waits until `deadline`: sleeps while it is far, spins for the last
/// stretch (a sleep overshoots by tens of microseconds). Returns early when
/// `stop` is set.
pub(crate) fn wait_until(deadline: Instant, stop: &AtomicBool) {
    const SPIN: Duration = Duration::from_micros(150);
    const NAP: Duration = Duration::from_millis(50);
    loop {
        let now = Instant::now();
        if now >= deadline || stop.load(Ordering::Relaxed) {
            return;
        }
        let left = deadline - now;
        if left > SPIN {
            std::thread::sleep((left - SPIN).min(NAP));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// `1.235 Mpps`, `12.3 kpps`, `7 pps`.
pub(crate) fn fmt_pps(pps: f64) -> String {
    scaled(pps, "pps")
}

/// `9.41 Gbit/s`, `480.0 kbit/s`.
pub(crate) fn fmt_bps(bps: f64) -> String {
    scaled(bps, "bit/s")
}

fn scaled(x: f64, unit: &str) -> String {
    if x >= 1e9 {
        format!("{:.3} G{unit}", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.3} M{unit}", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k{unit}", x / 1e3)
    } else {
        format!("{x:.0} {unit}")
    }
}

/// The cores threads are pinned to: `cores` when given (one per thread),
/// else 0, 1, ... (wrapping at the number of cores).
pub(crate) fn pick_cores(cores: &[usize], threads: usize) -> anyhow::Result<Vec<usize>> {
    if cores.is_empty() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        return Ok((0..threads).map(|t| t % n).collect());
    }
    if cores.len() != threads {
        bail!(
            "--cores lists {} core(s) for {threads} thread(s): give one core per thread",
            cores.len()
        );
    }
    Ok(cores.to_vec())
}

/// Pins the calling thread to `core`, warning when that fails.
pub(crate) fn pin(core: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        log::warn!("could not pin a thread to core {core}; it runs unpinned");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(driver: &str, interface: Option<&str>, params: &[&str]) -> PortArgs {
        PortArgs {
            interface: interface.map(str::to_string),
            driver: driver.into(),
            params: params.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn toml_strings_are_quoted_and_escaped() {
        assert_eq!(toml_str("eth0"), "\"eth0\"");
        assert_eq!(toml_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }

    #[test]
    fn port_tables_check_like_configs() {
        let a = args("af_packet", Some("veth-x\"1"), &["queues=2"]);
        let t = a.table("p", &[("queues", "4".into()), ("promisc", "false".into())]);
        assert!(!t.contains("queues = 4"), "--param wins: {t}");
        let c = load_config("test", &["p -> discard"], &[t], &a.overrides("p")).unwrap();
        assert_eq!(c.ports[0].spec.rx_queues(), 2);

        let e = load_config(
            "test",
            &["p -> discard"],
            &[args("af_packet", None, &[]).table("p", &[])],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing required parameter `interface`"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        let e = args("af_packet", None, &[])
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("-i IFNAME"), "{e}");
        assert!(args("af_packet", None, &["interface=lo"]).check().is_ok());
        assert!(args("pcap", None, &[]).check().is_ok());

        let e = load_config(
            "test",
            &["p -> discard"],
            &[args("nosuch", Some("x"), &[]).table("p", &[])],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("nosuch"), "{e}");
    }

    #[test]
    fn driver_params_are_known() {
        assert!(args("auto", None, &[]).driver_has("queues"));
        assert!(!args("pcap", None, &[]).driver_has("queues"));
    }

    #[test]
    fn filters_match_packets() {
        let f = Filter::parse("udp and dst port 9").unwrap();
        let v = testkit::frame::Frame::udp(
            testkit::frame::Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]),
            1024,
            9,
        )
        .payload(&[0; 18])
        .build();
        assert!(f.pass(&mut Packet::from_bytes(&v)));
        let f = Filter::parse("tcp").unwrap();
        assert!(!f.pass(&mut Packet::from_bytes(&v)));
        let e = Filter::parse("udp and dst prot 9")
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("--filter: "), "{e}");
        assert!(
            e.ends_with("\n  udp and dst prot 9\n              ^"),
            "caret under `prot`: {e}"
        );
    }

    #[test]
    fn rates_scale() {
        assert_eq!(fmt_pps(1_234_567.0), "1.235 Mpps");
        assert_eq!(fmt_pps(12_345.0), "12.3 kpps");
        assert_eq!(fmt_pps(7.0), "7 pps");
        assert_eq!(fmt_bps(9.41e9), "9.410 Gbit/s");
    }

    #[test]
    fn cores_default_and_count() {
        assert_eq!(pick_cores(&[3, 5], 2).unwrap(), vec![3, 5]);
        assert!(pick_cores(&[1], 2).is_err());
        assert_eq!(pick_cores(&[], 1).unwrap(), vec![0]);
    }
}
