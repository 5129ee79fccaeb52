//! The frames pktgen sends: resolved from the options, described for the
//! start message, and turned into the `generator` port that builds them.

use anyhow::bail;
use hpio_nf::element::parse_mac;

use super::args::{mac_str, IpRange, PktgenArgs, PortRange};
use super::GEN;
use crate::tool::toml_str;

/// The MAC address of interface `ifname`, from sysfs.
fn interface_mac(ifname: &str) -> Option<[u8; 6]> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address")).ok()?;
    parse_mac(s.trim()).filter(|m| *m != [0; 6])
}

/// The frames pktgen sends, resolved from the options.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Frames {
    pub(super) length: usize,
    pub(super) ipv6: bool,
    pub(super) src_mac: [u8; 6],
    pub(super) dst_mac: [u8; 6],
    pub(super) src_ip: IpRange,
    pub(super) dst_ip: IpRange,
    pub(super) src_port: PortRange,
    pub(super) dst_port: PortRange,
}

impl Frames {
    pub(super) fn new(a: &PktgenArgs) -> anyhow::Result<Frames> {
        let v6_given = [a.src_ip, a.dst_ip]
            .iter()
            .flatten()
            .any(|r| r.first.is_ipv6());
        let v4_given = [a.src_ip, a.dst_ip]
            .iter()
            .flatten()
            .any(|r| r.first.is_ipv4());
        if v6_given && v4_given {
            bail!("-s and -d are of different IP families: give both as IPv4 or both as IPv6");
        }
        if a.ipv6 && v4_given {
            bail!("-6 asks for IPv6 but -s/-d give IPv4 addresses");
        }
        let ipv6 = a.ipv6 || v6_given;
        let default = |v4: [u8; 4], v6: &str| IpRange {
            first: if ipv6 {
                v6.parse().expect("literal")
            } else {
                v4.into()
            },
            count: 1,
        };
        // Ethernet + IPv4/IPv6 + UDP headers.
        let min = 14 + if ipv6 { 40 } else { 20 } + 8;
        let length = a.length.unwrap_or(min.max(60));
        let max = hpio_nf::packet::MAX_FRAME_LIMIT;
        if !(min..=max).contains(&length) {
            bail!(
                "-l {length}: a UDP/IPv{} frame takes {min}..={max} bytes (without FCS)",
                if ipv6 { 6 } else { 4 }
            );
        }
        let src_mac = a
            .src_mac
            .or_else(|| a.port.interface.as_deref().and_then(interface_mac))
            .unwrap_or([0x02, 0, 0, 0, 0, 1]);
        Ok(Frames {
            length,
            ipv6,
            src_mac,
            dst_mac: a.dst_mac,
            src_ip: a
                .src_ip
                .unwrap_or_else(|| default([10, 0, 0, 1], "fd00::1")),
            dst_ip: a
                .dst_ip
                .unwrap_or_else(|| default([10, 0, 0, 2], "fd00::2")),
            src_port: a.src_port,
            dst_port: a.dst_port,
        })
    }

    /// Number of distinct flows.
    pub(super) fn flows(&self) -> u128 {
        [
            self.src_ip.count,
            self.dst_ip.count,
            self.src_port.count.into(),
            self.dst_port.count.into(),
        ]
        .iter()
        .map(|&c| u128::from(c))
        .product()
    }

    /// The `generator` port table that builds these frames, `queues` queues
    /// sending `count` packets in all.
    pub(super) fn generator_table(&self, queues: usize, count: Option<u64>) -> String {
        let mut t = format!(
            "[ports.{GEN}]\ndriver = \"generator\"\nproto = \"udp\"\nsize = {}\n\
             src_mac = \"{}\"\ndst_mac = \"{}\"\n\
             src_ip = {}\nsrc_ip_count = {}\ndst_ip = {}\ndst_ip_count = {}\n\
             src_port = {}\nsrc_port_count = {}\ndst_port = {}\ndst_port_count = {}\n\
             queues = {queues}\n",
            self.length,
            mac_str(self.src_mac),
            mac_str(self.dst_mac),
            toml_str(&self.src_ip.first.to_string()),
            self.src_ip.count,
            toml_str(&self.dst_ip.first.to_string()),
            self.dst_ip.count,
            self.src_port.first,
            self.src_port.count,
            self.dst_port.first,
            self.dst_port.count,
        );
        if let Some(c) = count {
            t += &format!("count = {c}\n");
        }
        t
    }

    /// One line for the start message.
    pub(super) fn describe(&self) -> String {
        let range = |r: &IpRange| match r.count {
            1 => r.first.to_string(),
            n => format!("{}(+{})", r.first, n - 1),
        };
        let ports = |r: &PortRange| match r.count {
            1 => r.first.to_string(),
            n => format!("{}-{}", r.first, u32::from(r.first) + n - 1),
        };
        format!(
            "{}-byte UDP/IPv{} frames {} > {}, {}:{} > {}:{}, {} flow(s)",
            self.length,
            if self.ipv6 { 6 } else { 4 },
            mac_str(self.src_mac),
            mac_str(self.dst_mac),
            range(&self.src_ip),
            ports(&self.src_port),
            range(&self.dst_ip),
            ports(&self.dst_port),
            self.flows()
        )
    }
}
