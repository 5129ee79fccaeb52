//! Neighbour resolution: ARP (RFC 826) for IPv4 next hops, neighbour
//! discovery (RFC 4861) for IPv6 ones.
//!
//! `ArpResponder` answers requests for the router's address; `ArpQuerier`
//! resolves next hops (the annotation IpLookup writes, see
//! [`crate::elements::route`]) to Ethernet addresses, holding a bounded
//! number of packets per unresolved neighbour while it asks; `NdResponder`
//! and `NdQuerier` do the same for IPv6.

pub mod arp_querier;
pub mod arp_responder;
pub mod nd;
pub mod nd_querier;
pub mod nd_responder;
mod querier;
pub mod table;
#[cfg(test)]
mod tests_rig;

/// Length of an ARP message for IPv4 over Ethernet.
pub const ARP_LEN: usize = 28;
/// ARP operation: request.
pub const ARP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const ARP_REPLY: u16 = 2;

/// The fields of an IPv4-over-Ethernet ARP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// Operation: [`ARP_REQUEST`] or [`ARP_REPLY`].
    pub op: u16,
    /// Sender's Ethernet address.
    pub sender_mac: [u8; 6],
    /// Sender's IPv4 address.
    pub sender_ip: [u8; 4],
    /// Target's Ethernet address (zero in a request).
    pub target_mac: [u8; 6],
    /// Target's IPv4 address.
    pub target_ip: [u8; 4],
}

impl Arp {
    /// Reads the ARP message of an untagged Ethernet frame; `None` unless it
    /// is ARP for IPv4 over Ethernet.
    pub fn parse(frame: &[u8]) -> Option<Arp> {
        let a = frame.get(14..14 + ARP_LEN)?;
        if frame[12..14] != [0x08, 0x06] || a[..6] != [0, 1, 8, 0, 6, 4] {
            return None;
        }
        let six = |o: usize| <[u8; 6]>::try_from(&a[o..o + 6]).expect("six bytes");
        let four = |o: usize| <[u8; 4]>::try_from(&a[o..o + 4]).expect("four bytes");
        Some(Arp {
            op: u16::from_be_bytes([a[6], a[7]]),
            sender_mac: six(8),
            sender_ip: four(14),
            target_mac: six(18),
            target_ip: four(24),
        })
    }

    /// Writes the whole frame (Ethernet header to `eth_dst` from the sender,
    /// the message, padding to 60 bytes) into `frame`, which must hold 60 bytes.
    pub fn write(&self, eth_dst: [u8; 6], frame: &mut [u8]) {
        let f = &mut frame[..60];
        f.fill(0);
        f[..6].copy_from_slice(&eth_dst);
        f[6..12].copy_from_slice(&self.sender_mac);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        f[14..20].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
        f[20..22].copy_from_slice(&self.op.to_be_bytes());
        f[22..28].copy_from_slice(&self.sender_mac);
        f[28..32].copy_from_slice(&self.sender_ip);
        f[32..38].copy_from_slice(&self.target_mac);
        f[38..42].copy_from_slice(&self.target_ip);
    }
}

/// Formats a MAC address as `02:00:00:00:00:01`.
pub fn mac_string(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The IPv4 address parameter `name`, refusing an IPv6 one.
pub(crate) fn ipv4_param(
    p: &crate::element::Params,
    name: &str,
) -> Result<std::net::Ipv4Addr, crate::element::ParamError> {
    match p.ip(name)? {
        std::net::IpAddr::V4(a) => Ok(a),
        _ => Err(crate::element::ParamError::new(
            name,
            "expected an IPv4 address",
        )),
    }
}
