//! The gateway NF: an IPv4 NAT gateway and IPv6 router between a LAN and a
//! WAN, like a home or edge router, built from the framework's elements
//! with no element of its own. The NF is the configuration
//! `configs/gateway.toml`; this crate names what it needs and what it
//! promises, so that tests (here, the live test `nfs/cli/tests/gateway_live.rs`
//! and the golden tests) share one description of it.
//!
//! The graph (docs/gateway.md draws it), per direction:
//!
//! ```text
//! lan -> Classify -> IpLookup -> DecIpTtl -> Nat44 (IPv4) / Firewall (IPv6)
//!                                        -> ArpQuerier / NdQuerier -> Policer -> wan
//! wan -> Classify -> DecIpTtl -> Nat44 (IPv4) -> IpLookup -> ArpQuerier -> lan
//!                 -> IpLookup -> DecIpTtl -> Firewall (IPv6) -> NdQuerier -> lan
//! ```
//!
//! LAN packets to the router's WAN address go into Nat44, which hairpins
//! TCP and UDP to the port forward (or a mapping) back to the LAN.
//!
//! with ArpResponder, NdResponder and IcmpEchoResponder answering for the
//! router's addresses on each side, and IcmpError sending time-exceeded,
//! destination-unreachable and fragmentation-needed / packet-too-big from
//! the router's address on the side the offending packet came from, and
//! refusing the rest of what is sent to the router itself (UDP: port
//! unreachable, TCP: a reset).
//!
//! ```
//! let registry = hpio_nf_gateway::registry();
//! for class in ["IpLookup", "Nat44", "Firewall", "IcmpEchoResponder"] {
//!     assert!(registry.get(class).is_some());
//! }
//! ```
#![deny(unsafe_code)]

use hpio_nf::element::Registry;

/// The config, relative to the workspace root.
pub const CONFIG: &str = "configs/gateway.toml";

/// The router's addresses and the testbed's hosts (`hpio-nf testbed up
/// gateway`), as the config writes them.
pub mod addr {
    /// The router's Ethernet address on the LAN.
    pub const LAN_MAC: &str = "02:00:00:00:01:01";
    /// The router's Ethernet address on the WAN.
    pub const WAN_MAC: &str = "02:00:00:00:02:01";
    /// The router's IPv4 address on the LAN (the hosts' default gateway).
    pub const LAN_V4: &str = "192.168.1.1";
    /// The router's global IPv6 address on the LAN.
    pub const LAN_V6: &str = "2001:db8:1::1";
    /// The router's link-local address on the LAN (the hosts' default router).
    pub const LAN_LL: &str = "fe80::1";
    /// The router's IPv4 address on the WAN: the LAN is masqueraded behind it.
    pub const WAN_V4: &str = "203.0.113.2";
    /// The router's global IPv6 address on the WAN.
    pub const WAN_V6: &str = "2001:db8:ff::2";
    /// The router's link-local address on the WAN.
    pub const WAN_LL: &str = "fe80::2";
    /// The WAN next hop (the testbed's server namespace `hpnf-wan`).
    pub const NEXT_HOP_V4: &str = "203.0.113.1";
    /// The WAN next hop's link-local address (the IPv6 default route's).
    pub const NEXT_HOP_LL: &str = "fe80::ff:1";
    /// The LAN host (namespace `hpnf-lan`), where the port forward leads.
    pub const LAN_HOST_V4: &str = "192.168.1.2";
    /// The LAN host's IPv6 address.
    pub const LAN_HOST_V6: &str = "2001:db8:1::2";
    /// A server "on the internet", behind the next hop (reached by the
    /// default routes).
    pub const SERVER_V4: &str = "198.51.100.10";
    /// Its IPv6 address.
    pub const SERVER_V6: &str = "2001:db8:100::10";
    /// The port forward: TCP to WAN_V4 at this port reaches LAN_HOST_V4 at it.
    pub const FORWARD_PORT: u16 = 8080;
}

/// The element classes the config uses: the built-in ones and the
/// Firewall (nfs/firewall).
pub fn registry() -> Registry {
    let mut r = Registry::builtin();
    hpio_nf_firewall::register(&mut r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpio_nf::config::Config;
    use hpio_nf::port::PortRegistry;

    fn text() -> String {
        std::fs::read_to_string(testkit::workspace_root().join(CONFIG)).unwrap()
    }

    #[test]
    fn the_config_loads_with_these_classes() {
        let c = Config::parse_str(&text(), CONFIG, &registry(), &PortRegistry::builtin(), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.runtime.workers, 1, "NAT and firewall state: one worker");
    }

    #[test]
    fn the_config_uses_these_addresses() {
        let t = text();
        let quoted = |s: &str| format!("\"{s}\"");
        for a in [
            addr::LAN_MAC,
            addr::WAN_MAC,
            addr::LAN_V4,
            addr::LAN_V6,
            addr::LAN_LL,
            addr::WAN_V4,
            addr::WAN_V6,
            addr::WAN_LL,
        ] {
            assert!(t.contains(&quoted(a)), "{a} not in {CONFIG}");
        }
        assert!(t.contains(&format!("\"0.0.0.0/0 -> 0 via {}\"", addr::NEXT_HOP_V4)));
        assert!(t.contains(&format!("\"::/0 -> 1 via {}\"", addr::NEXT_HOP_LL)));
        assert!(t.contains(&format!(
            "port = {}, to = \"{}:{}\"",
            addr::FORWARD_PORT,
            addr::LAN_HOST_V4,
            addr::FORWARD_PORT
        )));
    }
}
