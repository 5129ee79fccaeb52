//! The rewrite plan: the checked parameters in the form the data path wants,
//! built once at configure time.

use std::net::IpAddr;

use crate::element::{ParamError, Params, Value};

/// What to do with the outer VLAN tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VlanOp {
    /// Leave tags alone.
    Keep,
    /// Push a new outer 802.1Q tag with this TCI (priority and id).
    Push {
        /// Tag control information of the new tag.
        tci: u16,
    },
    /// Remove the outer tag.
    Pop,
    /// Change the outer tag's id, and its priority when `pcp` is given.
    Set {
        /// New VLAN id.
        vid: u16,
        /// New priority; `None` keeps the tag's own.
        pcp: Option<u8>,
    },
}

/// New source and destination addresses of one IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Addrs<const N: usize> {
    /// New source address.
    pub src: Option<[u8; N]>,
    /// New destination address.
    pub dst: Option<[u8; N]>,
}

impl<const N: usize> Addrs<N> {
    /// True when either address changes.
    #[inline]
    pub fn any(&self) -> bool {
        self.src.is_some() || self.dst.is_some()
    }
}

/// Everything a `Rewrite` does, decided once at configure time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// New destination MAC.
    pub eth_dst: Option<[u8; 6]>,
    /// New source MAC.
    pub eth_src: Option<[u8; 6]>,
    /// Outer VLAN tag operation.
    pub vlan: VlanOp,
    /// IPv4 address rewrites.
    pub v4: Addrs<4>,
    /// IPv6 address rewrites.
    pub v6: Addrs<16>,
    /// New DSCP (both families).
    pub dscp: Option<u8>,
    /// Decrement TTL / hop limit (both families).
    pub dec_ttl: bool,
    /// New TCP/UDP source port.
    pub src_port: Option<u16>,
    /// New TCP/UDP destination port.
    pub dst_port: Option<u16>,
}

impl Plan {
    /// True when only MAC addresses change: the data path then never parses.
    #[inline]
    pub fn mac_only(&self) -> bool {
        self.vlan == VlanOp::Keep && !self.any_ip()
    }

    /// True when a port changes.
    #[inline]
    pub fn ports(&self) -> bool {
        self.src_port.is_some() || self.dst_port.is_some()
    }

    /// True when an operation applying to both IP families is set.
    #[inline]
    fn ip_common(&self) -> bool {
        self.dscp.is_some() || self.dec_ttl || self.ports()
    }

    /// True when some operation may apply to IPv4 packets.
    #[inline]
    pub fn v4_active(&self) -> bool {
        self.ip_common() || self.v4.any()
    }

    /// True when some operation may apply to IPv6 packets.
    #[inline]
    pub fn v6_active(&self) -> bool {
        self.ip_common() || self.v6.any()
    }

    /// True when some operation needs the IP header.
    #[inline]
    pub fn any_ip(&self) -> bool {
        self.v4_active() || self.v6_active()
    }

    /// Builds the plan from checked parameters; contradictions are errors.
    pub fn from_params(p: &Params) -> Result<Plan, ParamError> {
        let vlan_push = opt_int(p, "vlan_push", 0, VID_MAX)?;
        let vlan_set = opt_int(p, "vlan_set", 0, VID_MAX)?;
        let vlan_pcp = opt_int(p, "vlan_pcp", 0, 7)?;
        let vlan_pop = opt_bool(p, "vlan_pop")?;
        let vlan = match (vlan_push, vlan_pop, vlan_set) {
            (None, false, None) => {
                if vlan_pcp.is_some() {
                    return Err(ParamError::new(
                        "vlan_pcp",
                        "sets the priority of a pushed or set tag: give it with `vlan_push` or `vlan_set`",
                    ));
                }
                VlanOp::Keep
            }
            (Some(vid), false, None) => VlanOp::Push {
                tci: (vlan_pcp.unwrap_or(0) << 13) | vid,
            },
            (None, true, None) => {
                if vlan_pcp.is_some() {
                    return Err(ParamError::new(
                        "vlan_pcp",
                        "has no tag to apply to when `vlan_pop` removes it",
                    ));
                }
                VlanOp::Pop
            }
            (None, false, Some(vid)) => VlanOp::Set {
                vid,
                pcp: vlan_pcp.map(|v| v as u8),
            },
            (Some(_), true, _) => {
                return Err(ParamError::new(
                    "vlan_pop",
                    "contradicts `vlan_push`: a Rewrite pushes or pops a tag, not both (chain two Rewrites)",
                ))
            }
            (Some(_), false, Some(_)) => {
                return Err(ParamError::new(
                    "vlan_set",
                    "contradicts `vlan_push`, which already gives the new outer tag its id",
                ))
            }
            (None, true, Some(_)) => {
                return Err(ParamError::new(
                    "vlan_set",
                    "contradicts `vlan_pop`: the outer tag is removed (chain two Rewrites to change the inner one)",
                ))
            }
        };

        let mut v4 = Addrs::default();
        let mut v6 = Addrs::default();
        for (any, six, src) in [("ip_src", "ip6_src", true), ("ip_dst", "ip6_dst", false)] {
            let (a4, a6) = family_pair(p, any, six)?;
            if src {
                (v4.src, v6.src) = (a4, a6);
            } else {
                (v4.dst, v6.dst) = (a4, a6);
            }
        }

        Ok(Plan {
            eth_dst: opt_mac(p, "eth_dst")?,
            eth_src: opt_mac(p, "eth_src")?,
            vlan,
            v4,
            v6,
            dscp: opt_int(p, "dscp", 0, 63)?.map(|d| d as u8),
            dec_ttl: opt_bool(p, "dec_ttl")?,
            src_port: opt_int(p, "src_port", 0, u16::MAX)?,
            dst_port: opt_int(p, "dst_port", 0, u16::MAX)?,
        })
    }
}

/// Largest VLAN id a tag may carry (4095 is reserved).
pub(super) const VID_MAX: u16 = 4094;

/// An optional integer parameter in `min..=max`.
fn opt_int(p: &Params, name: &str, min: u16, max: u16) -> Result<Option<u16>, ParamError> {
    if p.get(name).is_none() {
        return Ok(None);
    }
    let v = p.int(name)?;
    match u16::try_from(v) {
        Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
        _ => Err(ParamError::new(
            name,
            format!("expected an integer in {min}..={max}, found {v}"),
        )),
    }
}

/// An optional boolean parameter, false when left out.
fn opt_bool(p: &Params, name: &str) -> Result<bool, ParamError> {
    match p.get(name) {
        None => Ok(false),
        Some(_) => p.bool(name),
    }
}

/// An optional MAC address parameter.
fn opt_mac(p: &Params, name: &str) -> Result<Option<[u8; 6]>, ParamError> {
    p.get(name).map(|_| p.mac(name)).transpose()
}

/// The IPv4 and IPv6 addresses set by `any` (either family) and `six` (IPv6
/// only, alongside an IPv4 `any`).
#[allow(clippy::type_complexity)]
fn family_pair(
    p: &Params,
    any: &str,
    six: &str,
) -> Result<(Option<[u8; 4]>, Option<[u8; 16]>), ParamError> {
    let (mut a4, mut a6) = (None, None);
    match p.get(any).map(|_| p.ip(any)).transpose()? {
        Some(IpAddr::V4(a)) => a4 = Some(a.octets()),
        Some(IpAddr::V6(a)) => a6 = Some(a.octets()),
        None => {}
    }
    match p.get(six) {
        None => {}
        Some(Value::Ip(IpAddr::V6(a))) if a6.is_none() => a6 = Some(a.octets()),
        Some(Value::Ip(IpAddr::V6(_))) => {
            return Err(ParamError::new(
                six,
                format!(
                    "`{any}` already sets the IPv6 address; give `{six}` only with an IPv4 `{any}`"
                ),
            ))
        }
        Some(_) => {
            return Err(ParamError::new(
                six,
                format!("expected an IPv6 address (put an IPv4 address in `{any}`)"),
            ))
        }
    }
    Ok((a4, a6))
}
