//! Nat44's handlers (`mappings`, `stats`, `flush`) and its hot-reload
//! hand-over: the dynamic mappings move to the new replica with their
//! external ports, so that a reload breaks no translated flow.

use std::any::Any;
use std::net::Ipv4Addr;

use super::table::{Mapping, Table, PROTO_NAMES, TCP};
use super::Nat44;
use crate::element::{handler, Combine, HandlerCx, HandlerKind, HandlerResult, HandlerSpec};
use serde_json::json;

/// What `hpio-nf ctl read|write NAT ...` can ask.
pub(super) const HANDLERS: &[HandlerSpec] = &[
    HandlerSpec {
        name: "mappings",
        kind: HandlerKind::Read,
        combine: Combine::Rows,
        arg: "",
        doc: "The mappings: `proto`, `internal` and `external` (ADDRESS:PORT, the ICMP \
              identifier as the port), `state` (TCP: established or transitory), `age` \
              (seconds since its last packet), `timeout` (seconds), `packets` (both ways), \
              `static`",
    },
    HandlerSpec {
        name: "stats",
        kind: HandlerKind::Read,
        combine: Combine::Sum,
        arg: "",
        doc: "Counts: `mappings` live, `capacity` (slots), `created`, `expired`, `by_proto` \
              (live mappings per protocol)",
    },
    HandlerSpec {
        name: "flush",
        kind: HandlerKind::Write,
        combine: Combine::Sum,
        arg: "",
        doc: "Removes every dynamic mapping (static forwards stay); answers `flushed`",
    },
];

fn endpoint(addr: u32, port: u16) -> String {
    format!("{}:{port}", Ipv4Addr::from(addr))
}

impl Nat44 {
    pub(super) fn read_handler(&self, name: &str, cx: &HandlerCx) -> HandlerResult {
        let t = &self.table;
        match name {
            "mappings" => {
                let rows: Vec<_> = t
                    .iter()
                    .map(|m| {
                        let state = match m.proto {
                            TCP if m.established() => "established",
                            TCP => "transitory",
                            _ => "-",
                        };
                        let age = cx.now().saturating_sub(m.last) as f64 / 1e9;
                        json!({
                            "proto": PROTO_NAMES[m.proto as usize],
                            "internal": endpoint(m.in_addr, m.in_port),
                            "external": endpoint(t.ext_addr(m), m.ext_port),
                            "state": state,
                            "age": if m.is_static() { 0.0 } else { age },
                            "timeout": m.timeout(&t.timeouts) as f64 / 1e9,
                            "packets": m.packets,
                            "static": m.is_static(),
                        })
                    })
                    .collect();
                Ok(json!(rows))
            }
            "stats" => {
                let mut by = [0u64; 3];
                for m in t.iter() {
                    by[m.proto as usize] += 1;
                }
                Ok(json!({
                    "mappings": t.live,
                    "capacity": t.capacity(),
                    "created": t.created,
                    "expired": t.expired,
                    "by_proto": { "tcp": by[0], "udp": by[1], "icmp": by[2] },
                }))
            }
            _ => Err(handler::no_such_handler(name)),
        }
    }

    pub(super) fn write_handler(&mut self, name: &str, arg: &str) -> HandlerResult {
        match name {
            "flush" if arg.trim().is_empty() => Ok(json!({ "flushed": self.table.flush() })),
            "flush" => Err(format!("flush takes no argument, found {arg:?}")),
            _ => Err(handler::no_such_handler(name)),
        }
    }

    /// Gives up the dynamic mappings and counters (the replica is dropped next).
    pub(super) fn hand_over(&mut self) -> Box<dyn Any + Send> {
        let t = &self.table;
        let mappings: Vec<(Mapping, u32)> = t
            .iter()
            .filter(|m| !m.is_static())
            .map(|m| (*m, t.ext_addr(m)))
            .collect();
        Box::new(State {
            mappings,
            created: t.created,
            expired: t.expired,
            icmp_errors: self.icmp_errors,
            passed_non_ipv4: self.passed_non_ipv4,
        })
    }

    /// Takes over a replaced replica's mappings: each keeps its external
    /// address and port when the new configuration still gives them to this
    /// worker and the table has room; the others are counted as expired.
    pub(super) fn take_over(&mut self, state: Box<dyn Any + Send>) {
        let Ok(old) = state.downcast::<State>() else {
            return;
        };
        let t: &mut Table = &mut self.table;
        let mut lost = 0;
        for (m, ext) in &old.mappings {
            if !t.restore(m, *ext) {
                lost += 1;
            }
        }
        t.created += old.created;
        t.expired += old.expired + lost;
        self.icmp_errors += old.icmp_errors;
        self.passed_non_ipv4 += old.passed_non_ipv4;
    }
}

/// What a replica hands over.
struct State {
    /// Dynamic mappings with their external address.
    mappings: Vec<(Mapping, u32)>,
    created: u64,
    expired: u64,
    icmp_errors: u64,
    passed_non_ipv4: u64,
}
