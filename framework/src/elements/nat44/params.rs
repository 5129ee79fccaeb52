//! Nat44's parameters: their declarations and the checks that turn them
//! into the configuration every replica shares.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use super::table::{Timeouts, TCP, UDP};
use super::{Forward, FwdProto, Nat44, NonIpv4, Shared};
use crate::element::{
    Choice, ConfigCx, Configured, Inputs, Need, ParamError, ParamSpec, ParamType, Params,
};

/// The fields of `timeouts` (RFC 5382, 4787 and 5508 minimums).
const TIMEOUT_FIELDS: &[ParamSpec] = &[
    ParamSpec {
        name: "tcp_established",
        ty: ParamType::Duration,
        need: Need::Default("\"124m\""),
        doc: "TCP mapping that has seen packets both ways and no FIN or RST (RFC 5382: 2h4m)",
    },
    ParamSpec {
        name: "tcp_transitory",
        ty: ParamType::Duration,
        need: Need::Default("\"4m\""),
        doc: "TCP mapping opening or closing (RFC 5382: 4 minutes)",
    },
    ParamSpec {
        name: "udp",
        ty: ParamType::Duration,
        need: Need::Default("\"5m\""),
        doc: "UDP mapping (RFC 4787: at least 2 minutes, 5 recommended)",
    },
    ParamSpec {
        name: "icmp",
        ty: ParamType::Duration,
        need: Need::Default("\"60s\""),
        doc: "ICMP query mapping (RFC 5508: 60 seconds)",
    },
];

const FORWARD_FIELDS: &[ParamSpec] = &[
    ParamSpec {
        name: "proto",
        ty: ParamType::Choice(FwdProto::NAMES),
        need: Need::Required,
        doc: "tcp or udp",
    },
    ParamSpec {
        name: "port",
        ty: ParamType::Int { min: 1, max: 65535 },
        need: Need::Required,
        doc: "external port",
    },
    ParamSpec {
        name: "to",
        ty: ParamType::Str,
        need: Need::Required,
        doc: "internal endpoint `ADDRESS:PORT`",
    },
    ParamSpec {
        name: "external",
        ty: ParamType::Ip,
        need: Need::Optional,
        doc: "external address (default: the first of `external`)",
    },
];

static FORWARD: ParamType = ParamType::Table(FORWARD_FIELDS);
static ADDRESS: ParamType = ParamType::Ip;

pub(super) const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "external",
        ty: ParamType::List(&ADDRESS),
        need: Need::Required,
        doc: "external IPv4 addresses; an internal address always maps to the same one",
    },
    ParamSpec {
        name: "ports",
        ty: ParamType::Str,
        need: Need::Default("\"1024-65535\""),
        doc: "external ports (and ICMP identifiers) handed out, `FIRST-LAST`, split evenly \
              between the workers",
    },
    ParamSpec {
        name: "max_mappings",
        ty: ParamType::Int {
            min: 1,
            max: 1 << 24,
        },
        need: Need::Default("65536"),
        doc: "most dynamic mappings per worker (about 100 bytes each, allocated at start); \
              beyond it new ones are dropped as `table-full`",
    },
    ParamSpec {
        name: "timeouts",
        ty: ParamType::Table(TIMEOUT_FIELDS),
        need: Need::Default("{}"),
        doc: "idle timeouts, e.g. `{ udp = \"2m\", tcp_established = \"1h\" }`",
    },
    ParamSpec {
        name: "forwards",
        ty: ParamType::List(&FORWARD),
        need: Need::Default("[]"),
        doc: "static port forwards `{ proto, port, to, external }` (DNAT)",
    },
    ParamSpec {
        name: "non_ipv4",
        ty: ParamType::Choice(NonIpv4::NAMES),
        need: Need::Default("\"pass\""),
        doc: "frames other than IPv4 (ARP, IPv6): pass unchanged, or drop as `non-ipv4`",
    },
    ParamSpec {
        name: "hash_seed",
        ty: ParamType::Int {
            min: 0,
            max: i64::MAX,
        },
        need: Need::Optional,
        doc: "seed of the mapping indexes' hash and of the port search; left out, each worker \
              picks a random one; set it to make runs reproducible",
    },
];

/// An IPv4 address parameter value.
fn ipv4(v: IpAddr, param: &str, i: Option<usize>) -> Result<u32, ParamError> {
    match v {
        IpAddr::V4(a) => Ok(a.into()),
        IpAddr::V6(a) => {
            let msg = format!("expected an IPv4 address, found {a}");
            Err(match i {
                Some(i) => ParamError::item(param, i, msg),
                None => ParamError::new(param, msg),
            })
        }
    }
}

/// `ports = "FIRST-LAST"`.
fn port_range(s: &str) -> Result<(u16, u16), ParamError> {
    let bad = || {
        ParamError::new(
            "ports",
            format!("expected `FIRST-LAST` with 1 <= FIRST <= LAST <= 65535, found {s:?}"),
        )
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// A timeout field in nanoseconds; under a millisecond is refused.
fn timeout(t: &Params, name: &str) -> Result<u64, ParamError> {
    let d = t
        .duration(name)
        .map_err(|e| ParamError::nested("timeouts", None, e))?;
    if d < Duration::from_millis(1) {
        let e = ParamError::new(name, "must be at least 1ms");
        return Err(ParamError::nested("timeouts", None, e));
    }
    Ok(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The static forwards, checked against the external addresses.
fn forwards(p: &Params, externals: &[u32]) -> Result<Vec<Forward>, ParamError> {
    let mut v: Vec<Forward> = Vec::new();
    for (i, t) in p.table_list("forwards")?.into_iter().enumerate() {
        let nested = |e| ParamError::nested("forwards", Some(i), e);
        let proto = match t.choice::<FwdProto>("proto").map_err(nested)? {
            FwdProto::Tcp => TCP,
            FwdProto::Udp => UDP,
        };
        let to = t.str("to").map_err(nested)?;
        let sa: std::net::SocketAddrV4 = to.parse().map_err(|_| {
            nested(ParamError::new(
                "to",
                format!("expected `IPV4:PORT`, found {to:?}"),
            ))
        })?;
        let ext = match t.get("external") {
            Some(_) => ipv4(t.ip("external").map_err(nested)?, "external", None).map_err(nested)?,
            None => externals[0],
        };
        let ext_idx = externals.iter().position(|&a| a == ext).ok_or_else(|| {
            let msg = format!("{} is not one of `external`", Ipv4Addr::from(ext));
            nested(ParamError::new("external", msg))
        })?;
        let f = Forward {
            proto,
            ext_idx: ext_idx as u8,
            ext_port: t.int("port").map_err(nested)? as u16,
            addr: (*sa.ip()).into(),
            port: sa.port(),
        };
        let clash = v.iter().any(|o| {
            o.proto == f.proto
                && ((o.ext_idx, o.ext_port) == (f.ext_idx, f.ext_port)
                    || (o.addr, o.port) == (f.addr, f.port))
        });
        if clash {
            let msg = "another forward has the same external or internal endpoint";
            return Err(ParamError::item("forwards", i, msg));
        }
        v.push(f);
    }
    Ok(v)
}

pub(super) fn configure(p: &Params, cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let mut externals = Vec::new();
    for (i, v) in p.list("external")?.iter().enumerate() {
        let crate::element::Value::Ip(a) = v else {
            return Err(ParamError::item("external", i, "expected an IPv4 address"));
        };
        externals.push(ipv4(*a, "external", Some(i))?);
    }
    if externals.is_empty() || externals.len() > 255 {
        return Err(ParamError::new("external", "expected 1 to 255 addresses"));
    }
    let ports = port_range(p.str("ports")?)?;
    let workers = cx.workers.max(1);
    if ((ports.1 - ports.0) as usize + 1) < workers {
        let msg = format!("the range has fewer ports than the {workers} workers");
        return Err(ParamError::new("ports", msg));
    }
    let t = p.table("timeouts")?;
    let shared = Arc::new(Shared {
        forwards: forwards(p, &externals)?,
        externals,
        ports,
        max: p.usize("max_mappings")?,
        timeouts: Timeouts {
            tcp_established: timeout(t, "tcp_established")?,
            tcp_transitory: timeout(t, "tcp_transitory")?,
            udp: timeout(t, "udp")?,
            icmp: timeout(t, "icmp")?,
        },
        non_ipv4: p.choice::<NonIpv4>("non_ipv4")?,
        seed: match p.get("hash_seed") {
            Some(_) => Some(p.int("hash_seed")? as u64),
            None => None,
        },
        workers,
    });
    Ok(Configured::new(Inputs::Fixed(2), 2, move |w| {
        Box::new(Nat44::new(shared.clone(), w))
    }))
}
