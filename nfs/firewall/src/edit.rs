//! The Firewall's handlers: the flow table (`flows`, `kill`) and the rule
//! list (`rules`, and `add`, `delete`, `replace` while it runs).
//!
//! A rule edit is checked as the config's rules are (the same syntax: the
//! inline table of one `rules` item, the same errors) and builds a new rule
//! list; the replica swaps it in between two bursts, so a packet sees the
//! old list or the new one, never half of each. Flows stay.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hpio_nf::element::{Answer, Combine, HandlerKind, HandlerSpec, Need, ParamError, Params};
use serde_json::json;

use crate::conntrack::{FlowInfo, FlowTable};
use crate::rules::{check_rule, parse_rule, Rule, RULE_FIELDS};
use crate::tuple::Tuple;

/// What `hpio-nf ctl read|write FIREWALL ...` can ask.
pub(crate) const HANDLERS: &[HandlerSpec] = &[
    HandlerSpec {
        name: "flows",
        kind: HandlerKind::Read,
        combine: Combine::Rows,
        arg: "",
        doc: "The tracked flows: `proto`, `src` (the originator) and `dst` (with ports, or the \
              echo `id`), `state`, `age` (seconds since its last packet), `packets` and `bytes` \
              (both directions)",
    },
    HandlerSpec {
        name: "rules",
        kind: HandlerKind::Read,
        combine: Combine::Same,
        arg: "",
        doc: "The rules in order: `index`, `from`, `state`, `action`, `match` and `name` (of \
              its hit counter, in the element's counters)",
    },
    HandlerSpec {
        name: "kill",
        kind: HandlerKind::Write,
        combine: Combine::Sum,
        arg: "PROTO SRC DST | all",
        doc: "Removes a flow, given as `flows` shows it: `tcp 10.0.0.1:4000 10.0.1.2:80`, \
              `udp [fd00::1]:53 [fd00::2]:5353`, `icmp 10.0.0.1 10.0.0.2 ID` (either direction); \
              `all` removes every flow. Answers `killed`",
    },
    HandlerSpec {
        name: "add",
        kind: HandlerKind::Write,
        combine: Combine::Same,
        arg: "[INDEX] RULE",
        doc: "Inserts RULE (an inline table as in `rules`: `{ from = \"outside\", match = \
              \"icmp\", action = \"deny\" }`) before rule INDEX (default 0: it decides before \
              every other rule); answers the new rule list",
    },
    HandlerSpec {
        name: "delete",
        kind: HandlerKind::Write,
        combine: Combine::Same,
        arg: "INDEX",
        doc: "Removes rule INDEX; answers the new rule list",
    },
    HandlerSpec {
        name: "replace",
        kind: HandlerKind::Write,
        combine: Combine::Same,
        arg: "INDEX RULE",
        doc: "Replaces rule INDEX with RULE; answers the new rule list",
    },
];

/// The `rules` answer.
pub(crate) fn rules_answer(rules: &[Rule]) -> Answer {
    let rows = rules.iter().enumerate().map(|(i, r)| {
        json!({
            "index": i,
            "from": r.side_text(),
            "state": r.state_text(),
            "action": if r.allow { "allow" } else { "deny" },
            "match": r.text,
            "name": r.name,
        })
    });
    Answer::Array(rows.collect())
}

/// The `flows` answer at `now`.
pub(crate) fn flows_answer(table: &FlowTable, now: u64) -> Answer {
    Answer::Array(table.flows(now).map(flow_row).collect())
}

fn flow_row(f: FlowInfo) -> Answer {
    let t = &f.tuple;
    let v6 = t.rest & 1 == 1;
    let proto = (t.rest >> 8) as u8;
    let (pa, pb) = ((t.rest >> 48) as u16, (t.rest >> 32) as u16);
    let ((src, sp), (dst, dp)) = if f.orig_is_a {
        ((addr(t.a, v6), pa), (addr(t.b, v6), pb))
    } else {
        ((addr(t.b, v6), pb), (addr(t.a, v6), pa))
    };
    let ends = match proto {
        6 | 17 => json!({ "src": endpoint(src, sp), "dst": endpoint(dst, dp) }),
        _ => json!({ "src": src.to_string(), "dst": dst.to_string(), "id": sp }),
    };
    let mut row = json!({ "proto": proto_name(proto, v6) });
    if let (Some(row), Some(ends)) = (row.as_object_mut(), ends.as_object()) {
        row.extend(ends.clone());
        row.insert("state".into(), f.state.name().into());
        row.insert("replied".into(), f.replied.into());
        row.insert("age".into(), ((f.idle / 1_000_000) as f64 / 1000.0).into());
        row.insert("packets".into(), f.packets.into());
        row.insert("bytes".into(), f.bytes.into());
    }
    row
}

fn proto_name(proto: u8, v6: bool) -> &'static str {
    match (proto, v6) {
        (6, _) => "tcp",
        (17, _) => "udp",
        (_, false) => "icmp",
        (_, true) => "icmp6",
    }
}

fn addr(w: [u64; 2], v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from((w[0] as u128) << 64 | w[1] as u128))
    } else {
        IpAddr::V4(Ipv4Addr::from(w[1] as u32))
    }
}

fn words(a: IpAddr) -> [u64; 2] {
    match a {
        IpAddr::V4(a) => [0, u64::from(u32::from(a))],
        IpAddr::V6(a) => {
            let a = u128::from(a);
            [(a >> 64) as u64, a as u64]
        }
    }
}

fn endpoint(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// What `kill` removes: one flow, or all.
#[derive(Debug, PartialEq)]
pub(crate) enum Kill {
    One(Tuple),
    All,
}

/// Reads `kill`'s argument.
pub(crate) fn parse_kill(arg: &str) -> Result<Kill, String> {
    let usage = "expected `PROTO SRC DST` as `flows` shows a flow (`tcp 10.0.0.1:4000 \
                 10.0.1.2:80`, `icmp 10.0.0.1 10.0.0.2 ID`) or `all`";
    let words_of: Vec<&str> = arg.split_whitespace().collect();
    let port_of = |s: &str| -> Result<(IpAddr, u16), String> {
        let (a, p) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}`: expected ADDRESS:PORT ([ADDRESS]:PORT for IPv6)"))?;
        let a = a.trim_start_matches('[').trim_end_matches(']');
        let a: IpAddr = a
            .parse()
            .map_err(|_| format!("`{a}` is not an IP address"))?;
        let p: u16 = p.parse().map_err(|_| format!("`{p}` is not a port"))?;
        Ok((a, p))
    };
    let ip = |s: &str| -> Result<IpAddr, String> {
        s.parse().map_err(|_| format!("`{s}` is not an IP address"))
    };
    let (proto, (src, sp), (dst, dp)) = match words_of.as_slice() {
        ["all"] => return Ok(Kill::All),
        ["tcp", s, d] => (6, port_of(s)?, port_of(d)?),
        ["udp", s, d] => (17, port_of(s)?, port_of(d)?),
        [p @ ("icmp" | "icmp6"), s, d, id] => {
            let id: u16 = id
                .parse()
                .map_err(|_| format!("`{id}` is not an echo id"))?;
            let proto = if *p == "icmp" { 1 } else { 58 };
            (proto, (ip(s)?, id), (ip(d)?, id))
        }
        _ => return Err(format!("`{arg}`: {usage}")),
    };
    let v6 = src.is_ipv6();
    if v6 != dst.is_ipv6() {
        return Err(format!("`{arg}`: the two addresses are not of one family"));
    }
    let (tuple, _) = Tuple::new(words(src), sp, words(dst), dp, proto, v6);
    Ok(Kill::One(tuple))
}

/// A rule edit, read from its argument.
#[derive(Debug)]
pub(crate) enum Edit {
    Insert(usize, Rule),
    Delete(usize),
    Replace(usize, Rule),
}

/// Reads the argument of write handler `name` (`add`, `delete`, `replace`).
pub(crate) fn parse_edit(name: &str, arg: &str) -> Result<Edit, String> {
    let arg = arg.trim();
    let (index, rest) = match arg.split_once(char::is_whitespace) {
        Some((first, rest)) if first.parse::<usize>().is_ok() => (first.parse().ok(), rest),
        _ => match arg.parse::<usize>() {
            Ok(i) => (Some(i), ""),
            Err(_) => (None, arg),
        },
    };
    let need_index = || index.ok_or_else(|| format!("expected a rule INDEX first, found `{arg}`"));
    match name {
        "add" => Ok(Edit::Insert(index.unwrap_or(0), rule_from_text(rest)?)),
        "delete" if rest.is_empty() => Ok(Edit::Delete(need_index()?)),
        "delete" => Err(format!("expected a rule INDEX, found `{arg}`")),
        _ => Ok(Edit::Replace(need_index()?, rule_from_text(rest)?)),
    }
}

/// One rule from its inline table, `{ from = "inside", match = "tcp", action = "allow" }`.
fn rule_from_text(text: &str) -> Result<Rule, String> {
    let fields: Vec<&str> = RULE_FIELDS.iter().map(|f| f.name).collect();
    let expected = || {
        format!(
            "expected a rule as in the config, `{{ from = \"inside\", match = \"tcp\", action = \
             \"allow\" }}` (fields {})",
            fields.join(", ")
        )
    };
    if text.is_empty() {
        return Err(expected());
    }
    let doc: toml::Table = format!("rule = {text}")
        .parse()
        .map_err(|e: toml::de::Error| format!("`{text}`: {}; {}", e.message(), expected()))?;
    let Some(toml::Value::Table(t)) = doc.get("rule") else {
        return Err(format!("`{text}`: {}", expected()));
    };
    let mut p = Params::new();
    for (k, v) in t {
        let Some(spec) = RULE_FIELDS.iter().find(|f| f.name == k) else {
            return Err(format!(
                "unknown field `{k}`; expected one of {}",
                fields.join(", ")
            ));
        };
        let toml::Value::String(s) = v else {
            return Err(format!("field `{k}`: expected a string, found {v}"));
        };
        let value = spec
            .ty
            .parse_str(s)
            .map_err(|e| format!("field `{k}`: {e}"))?;
        p.set(spec.name, value);
    }
    for spec in RULE_FIELDS {
        match (p.get(spec.name), spec.need) {
            (None, Need::Default(d)) => {
                let d = d.trim_matches('"');
                p.set(spec.name, spec.ty.parse_str(d)?);
            }
            (None, Need::Required) => return Err(format!("field `{}` is missing", spec.name)),
            _ => {}
        }
    }
    parse_rule(&p).map_err(|e| param_message(&e))
}

/// `field `match`: ...` from a field's error.
fn param_message(e: &ParamError) -> String {
    let at = e
        .offset
        .map(|o| format!(" (at byte {o})"))
        .unwrap_or_default();
    format!("field `{}`: {}{at}", e.param, e.message)
}

/// Applies `edit` to `rules` and their `hits` (kept with their rules), and
/// checks the new list as the config's would be; nothing changes on error.
pub(crate) fn apply(
    rules: &[Rule],
    hits: &[u64],
    edit: Edit,
) -> Result<(Vec<Rule>, Vec<u64>), String> {
    let (mut rules, mut hits) = (rules.to_vec(), hits.to_vec());
    hits.resize(rules.len(), 0);
    let n = rules.len();
    let out_of_range = |i: usize, max: usize| format!("no rule {i}: there are {n} (0..={max})");
    match edit {
        Edit::Insert(i, r) if i <= n => {
            rules.insert(i, r);
            hits.insert(i, 0);
        }
        Edit::Insert(i, _) => return Err(out_of_range(i, n)),
        Edit::Delete(_) if n == 1 => {
            return Err("the last rule cannot be deleted (a firewall needs one)".into())
        }
        Edit::Delete(i) if i < n => {
            rules.remove(i);
            hits.remove(i);
        }
        Edit::Replace(i, r) if i < n => {
            rules[i] = r;
            hits[i] = 0;
        }
        Edit::Delete(i) | Edit::Replace(i, _) => return Err(out_of_range(i, n.saturating_sub(1))),
    }
    if rules.len() > u16::MAX as usize {
        return Err(format!("at most {} rules", u16::MAX));
    }
    for i in 0..rules.len() {
        check_rule(&mut rules, i).map_err(|e| match e.field {
            Some(f) => format!("rule {i}: field `{f}`: {}", e.message),
            None => format!("rule {i}: {}", e.message),
        })?;
    }
    Ok((rules, hits))
}
