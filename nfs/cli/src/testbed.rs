//! `hpio-nf testbed up|down [bridge|firewall|all]`: the network namespaces
//! and veth pairs behind the interfaces the shipped configs name.
//!
//! Each host is a network namespace with one veth interface `eth0` holding
//! its address; the other end of the pair lives in the root namespace
//! under the name the config's port uses, up and without an address:
//!
//! | topology | namespace | address | root-side interface |
//! |---|---|---|---|
//! | bridge | `hpnf-h1` | 10.0.0.1/24 | `hpnf-br0` |
//! | bridge | `hpnf-h2` | 10.0.0.2/24 | `hpnf-br1` |
//! | firewall | `hpnf-in` | 10.0.1.2/24 | `hpnf-fw-in` |
//! | firewall | `hpnf-out` | 10.0.1.3/24 | `hpnf-fw-out` |
//! | gateway | `hpnf-lan` | 192.168.1.2/24, 2001:db8:1::2/64 | `hpnf-gw-lan` |
//! | gateway | `hpnf-wan` | 203.0.113.1/24, 2001:db8:ff::1/64, fe80::ff:1 | `hpnf-gw-wan` |
//!
//! The gateway's hosts are routed through the NF (configs/gateway.toml):
//! the LAN host's default routes go to the router's LAN addresses
//! (192.168.1.1, fe80::1); the WAN host is the router's next hop and the
//! server behind it, with "internet" addresses on its loopback
//! (198.51.100.10, 2001:db8:100::10) reached by the router's default
//! routes, and a route back to the LAN's IPv6 prefix via 2001:db8:ff::2
//! (IPv4 needs none: the LAN is masqueraded behind 203.0.113.2). IPv6 is on
//! in those two namespaces, without duplicate address detection (addresses
//! usable at once) and without router advertisements.
//!
//! Elsewhere IPv6 is disabled in the namespaces, and it is on no root-side
//! interface, so that the only traffic is what the user sends (and ARP). Offloads are
//! left as Linux sets them (TSO, GSO and checksum offload on), like on any
//! stock host. Both commands
//! are idempotent: `up` creates what is missing and (re)applies addresses
//! and link state; `down` deletes what exists. Needs root and `ip`
//! (iproute2).

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context as _};

/// One host of a topology.
struct Host {
    /// Network namespace name.
    netns: &'static str,
    /// Address with prefix length, on `eth0` in the namespace.
    addr: &'static str,
    /// The veth end in the root namespace (a config's `interface`).
    root_if: &'static str,
    /// IPv6 on: addresses and routes set with `ip -n NETNS ARGS` after
    /// `addr` (empty: IPv6 disabled in the namespace).
    v6_and_routes: &'static [&'static [&'static str]],
}

/// The bridge topology (configs/bridge.toml).
const BRIDGE: [Host; 2] = [
    Host {
        netns: "hpnf-h1",
        addr: "10.0.0.1/24",
        root_if: "hpnf-br0",
        v6_and_routes: &[],
    },
    Host {
        netns: "hpnf-h2",
        addr: "10.0.0.2/24",
        root_if: "hpnf-br1",
        v6_and_routes: &[],
    },
];

/// The firewall topology (configs/firewall.toml).
const FIREWALL: [Host; 2] = [
    Host {
        netns: "hpnf-in",
        addr: "10.0.1.2/24",
        root_if: "hpnf-fw-in",
        v6_and_routes: &[],
    },
    Host {
        netns: "hpnf-out",
        addr: "10.0.1.3/24",
        root_if: "hpnf-fw-out",
        v6_and_routes: &[],
    },
];

/// The gateway topology (configs/gateway.toml).
const GATEWAY: [Host; 2] = [
    Host {
        netns: "hpnf-lan",
        addr: "192.168.1.2/24",
        root_if: "hpnf-gw-lan",
        v6_and_routes: &[
            &[
                "-6",
                "addr",
                "replace",
                "2001:db8:1::2/64",
                "dev",
                HOST_IF,
                "nodad",
            ],
            &["route", "replace", "default", "via", "192.168.1.1"],
            &[
                "-6", "route", "replace", "default", "via", "fe80::1", "dev", HOST_IF,
            ],
        ],
    },
    Host {
        netns: "hpnf-wan",
        addr: "203.0.113.1/24",
        root_if: "hpnf-gw-wan",
        v6_and_routes: &[
            &[
                "-6",
                "addr",
                "replace",
                "2001:db8:ff::1/64",
                "dev",
                HOST_IF,
                "nodad",
            ],
            &[
                "-6",
                "addr",
                "replace",
                "fe80::ff:1/64",
                "dev",
                HOST_IF,
                "nodad",
            ],
            &["addr", "replace", "198.51.100.10/32", "dev", "lo"],
            &["-6", "addr", "replace", "2001:db8:100::10/128", "dev", "lo"],
            &[
                "-6",
                "route",
                "replace",
                "2001:db8:1::/64",
                "via",
                "2001:db8:ff::2",
            ],
        ],
    },
];

/// Name of the host-side interface in every namespace.
const HOST_IF: &str = "eth0";

/// What to do.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Create the namespaces and veth pairs (what is missing).
    Up,
    /// Delete them (what exists).
    Down,
}

/// Which topology.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Topology {
    /// hpnf-h1 and hpnf-h2 behind hpnf-br0/hpnf-br1 (configs/bridge.toml).
    Bridge,
    /// hpnf-in and hpnf-out behind hpnf-fw-in/hpnf-fw-out (configs/firewall.toml).
    Firewall,
    /// hpnf-lan and hpnf-wan behind hpnf-gw-lan/hpnf-gw-wan (configs/gateway.toml).
    Gateway,
    /// All three.
    #[default]
    All,
}

/// `hpio-nf testbed`'s options.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Topologies (host namespace, address, interface in the root namespace):
  bridge:   hpnf-h1 10.0.0.1/24 hpnf-br0,  hpnf-h2 10.0.0.2/24 hpnf-br1
  firewall: hpnf-in 10.0.1.2/24 hpnf-fw-in, hpnf-out 10.0.1.3/24 hpnf-fw-out
  gateway:  hpnf-lan 192.168.1.2/24 2001:db8:1::2/64 hpnf-gw-lan (via 192.168.1.1, fe80::1),
            hpnf-wan 203.0.113.1/24 2001:db8:ff::1/64 hpnf-gw-wan (server 198.51.100.10,
            2001:db8:100::10 on its lo)

Examples:
  hpio-nf testbed up bridge
  ip netns exec hpnf-h1 ping 10.0.0.2
  hpio-nf testbed up gateway
  ip netns exec hpnf-lan ping 198.51.100.10
  hpio-nf testbed down")]
pub(crate) struct TestbedArgs {
    /// up or down.
    #[arg(value_enum)]
    pub action: Action,
    /// bridge, firewall, gateway or all.
    #[arg(value_enum, default_value_t = Topology::All)]
    pub topology: Topology,
}

/// Runs `hpio-nf testbed`.
pub(crate) fn cmd_testbed(a: &TestbedArgs) -> anyhow::Result<ExitCode> {
    let hosts: Vec<&Host> = match a.topology {
        Topology::Bridge => BRIDGE.iter().collect(),
        Topology::Firewall => FIREWALL.iter().collect(),
        Topology::Gateway => GATEWAY.iter().collect(),
        Topology::All => BRIDGE.iter().chain(&FIREWALL).chain(&GATEWAY).collect(),
    };
    for h in hosts {
        match a.action {
            Action::Up => up(h)?,
            Action::Down => down(h)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn netns_exists(name: &str) -> bool {
    Path::new("/var/run/netns").join(name).exists()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Runs `ip ARGS`, failing with its error output.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            if not_root() {
                " (the testbed needs root)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Whether we are probably not root (for the error hint).
fn not_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u != "0"))
        })
        .unwrap_or(false)
}

/// Writes a sysctl under /proc/sys in namespace `netns` (or the root one).
fn sysctl(netns: Option<&str>, key: &str, value: &str) -> anyhow::Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    match netns {
        None => std::fs::write(&path, value).with_context(|| format!("writing {path}")),
        Some(ns) => ip(&[
            "netns",
            "exec",
            ns,
            "sh",
            "-c",
            &format!("echo {value} > {path}"),
        ]),
    }
}

fn up(h: &Host) -> anyhow::Result<()> {
    if !netns_exists(h.netns) {
        ip(&["netns", "add", h.netns])?;
    }
    let ns = Some(h.netns);
    let v6 = if h.v6_and_routes.is_empty() { "1" } else { "0" };
    sysctl(ns, "net.ipv6.conf.all.disable_ipv6", v6)?;
    sysctl(ns, "net.ipv6.conf.default.disable_ipv6", v6)?;
    if !h.v6_and_routes.is_empty() {
        // Set before the interface exists, so that it inherits them: no
        // duplicate address detection, no autoconfiguration from router
        // advertisements, no solicitations.
        for key in [
            "accept_dad",
            "accept_ra",
            "router_solicitations",
            "dad_transmits",
        ] {
            sysctl(ns, &format!("net.ipv6.conf.default.{key}"), "0")?;
            sysctl(ns, &format!("net.ipv6.conf.all.{key}"), "0")?;
        }
    }
    if !link_exists(h.root_if) {
        ip(&[
            "link", "add", h.root_if, "type", "veth", "peer", "name", HOST_IF, "netns", h.netns,
        ])?;
    }
    // Interface names are not dotted, so the sysctl path is plain.
    let _ = sysctl(
        None,
        &format!("net.ipv6.conf.{}.disable_ipv6", h.root_if),
        "1",
    );
    ip(&["-n", h.netns, "addr", "replace", h.addr, "dev", HOST_IF])?;
    ip(&["-n", h.netns, "link", "set", "lo", "up"])?;
    ip(&["-n", h.netns, "link", "set", HOST_IF, "up"])?;
    ip(&["link", "set", h.root_if, "up"])?;
    for args in h.v6_and_routes {
        let mut all = vec!["-n", h.netns];
        all.extend_from_slice(args);
        ip(&all)?;
    }
    // Offloads stay as Linux sets them (TSO/GSO/checksum on): a host's
    // TCP sends reach the root-side interface as super-frames of up to
    // 64 KiB, which the af_packet driver cuts into wire-sized segments.
    println!(
        "testbed: {} ({} on {HOST_IF}) <-> {} up",
        h.netns, h.addr, h.root_if
    );
    Ok(())
}

fn down(h: &Host) -> anyhow::Result<()> {
    if link_exists(h.root_if) {
        // Deleting one end of a veth pair deletes both.
        ip(&["link", "del", h.root_if])?;
    }
    if netns_exists(h.netns) {
        ip(&["netns", "del", h.netns])?;
    }
    println!("testbed: {} and {} removed", h.netns, h.root_if);
    Ok(())
}
