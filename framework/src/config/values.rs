//! Type checking of a TOML table against declared parameters
//! ([`ParamSpec`]): each value becomes a typed [`Value`], defaults are
//! filled in, and unknown keys are rejected.

use crate::element::{parse_duration, Need, ParamError, ParamSpec, ParamType, Params, Value};

use super::source::{Diag, Span};
use super::tree::{parse_literal, Item, Node, Table};

/// Parameters that passed their type check, with where each was written.
pub(crate) struct Checked {
    /// The typed values, defaults filled in.
    pub params: Params,
    /// The table (or its `[header]`), for problems with no value to point at.
    pub header: Span,
    /// Where each given value, its array items and its table fields were written.
    spans: Vec<(&'static str, Where)>,
}

/// Where a value was written, and its parts: array items, table fields.
struct Where {
    span: Span,
    /// Byte where a string's text starts in its source, when it is verbatim.
    text_at: Option<usize>,
    items: Vec<Where>,
    fields: Vec<(String, Where)>,
}

impl Where {
    fn of(node: &Node) -> Where {
        let (text_at, items, fields) = match &node.item {
            Item::Str { at, .. } => (*at, Vec::new(), Vec::new()),
            Item::Array(a) => (None, a.iter().map(Where::of).collect(), Vec::new()),
            Item::Table(t) => (
                None,
                Vec::new(),
                t.entries
                    .iter()
                    .map(|e| (e.key.clone(), Where::of(&e.value)))
                    .collect(),
            ),
            _ => (None, Vec::new(), Vec::new()),
        };
        Where {
            span: node.span,
            text_at,
            items,
            fields,
        }
    }
}

impl Checked {
    /// Where a parameter's value was written.
    pub fn span(&self, name: &str) -> Option<Span> {
        self.spans.iter().find(|s| s.0 == name).map(|s| s.1.span)
    }

    /// Where the problem an element or driver reported is: the byte inside
    /// a string, the field, the item, the value, or the header when the
    /// parameter was not written (the innermost part that was written).
    pub fn locate(&self, e: &ParamError) -> Span {
        let Some(mut w) = self.spans.iter().find(|s| s.0 == e.param).map(|s| &s.1) else {
            return self.header;
        };
        if let Some(item) = e.index.and_then(|i| w.items.get(i)) {
            w = item;
        } else if e.index.is_some() {
            return w.span;
        }
        if let Some(f) = &e.field {
            match w.fields.iter().find(|(k, _)| k == f) {
                Some((_, field)) => w = field,
                None => return w.span,
            }
        }
        match (w.text_at, e.offset) {
            (Some(at), Some(off)) if at + off < w.span.end => {
                Span::new(w.span.src, at + off, at + off + 1)
            }
            _ => w.span,
        }
    }

    /// A diagnostic for an error returned by a `configure` function.
    pub fn diag(&self, e: &ParamError) -> Diag {
        let what = match (e.index, &e.field) {
            (Some(i), Some(f)) => format!("invalid `{f}` in item {i} of `{}`", e.param),
            (None, Some(f)) => format!("invalid `{f}` in `{}`", e.param),
            (Some(i), None) => format!("invalid item {i} of `{}`", e.param),
            (None, None) => format!("invalid value for `{}`", e.param),
        };
        Diag::new(self.locate(e), format!("{what}: {}", e.message))
    }
}

/// Whose parameters are checked, for messages: "unknown {noun} `x` {of}".
pub(crate) struct Owner<'a> {
    /// `parameter` or `key`.
    pub noun: &'a str,
    /// `for class `Classify``, `in [runtime]`.
    pub of: String,
}

/// Checks `table` against `specs`. Every problem is pushed to `diags`;
/// `None` when there was any.
pub(crate) fn check_params(
    table: &Table,
    header: Span,
    specs: &'static [ParamSpec],
    owner: &Owner<'_>,
    ports: &[String],
    diags: &mut Vec<Diag>,
) -> Option<Checked> {
    check_fields(table, header, specs, owner, "", ports, diags)
}

/// [`check_params`] for parameters (`within` empty) or for the fields of a
/// table value (`within` is " in item 2 of `rules`", appended to "invalid
/// value for `x`").
fn check_fields(
    table: &Table,
    header: Span,
    specs: &'static [ParamSpec],
    owner: &Owner<'_>,
    within: &str,
    ports: &[String],
    diags: &mut Vec<Diag>,
) -> Option<Checked> {
    let before = diags.len();
    let mut cx = ValueCx {
        ports,
        diags,
        of: within,
    };
    let mut out = Checked {
        params: Params::new(),
        header,
        spans: Vec::new(),
    };
    for e in &table.entries {
        let Some(spec) = specs.iter().find(|s| s.name == e.key) else {
            cx.diags.push(unknown_key(&e.key, e.key_span, specs, owner));
            continue;
        };
        if let Some(v) = cx.value(spec.name, None, &e.value, &spec.ty) {
            out.params.set(spec.name, v);
        }
        out.spans.push((spec.name, Where::of(&e.value)));
    }
    for spec in specs.iter().filter(|s| table.get(s.name).is_none()) {
        match spec.need {
            Need::Optional => {}
            Need::Required => cx.diags.push(Diag::new(
                header,
                format!(
                    "missing required {} `{}` {} ({}: {})",
                    owner.noun,
                    spec.name,
                    owner.of,
                    describe(&spec.ty),
                    spec.doc
                ),
            )),
            Need::Default(lit) => {
                let mut sub = Vec::new();
                let v = parse_literal(lit, header)
                    .map_err(|m| sub.push(Diag::new(header, m)))
                    .ok()
                    .and_then(|n| {
                        ValueCx {
                            ports,
                            diags: &mut sub,
                            of: within,
                        }
                        .value(spec.name, None, &n, &spec.ty)
                    });
                match (v, sub.first()) {
                    (Some(v), None) => {
                        out.params.set(spec.name, v);
                    }
                    (_, d) => cx.diags.push(Diag::new(
                        header,
                        format!(
                            "the default `{lit}` of `{}` {} is invalid (a bug in its declaration): {}",
                            spec.name,
                            owner.of,
                            d.map_or("", |d| d.message.as_str())
                        ),
                    )),
                }
            }
        }
    }
    (diags.len() == before).then_some(out)
}

fn unknown_key(key: &str, at: Span, specs: &[ParamSpec], owner: &Owner<'_>) -> Diag {
    let names = specs.iter().map(|s| s.name);
    let expected = if specs.is_empty() {
        "it takes none".to_string()
    } else {
        format!(
            "expected one of: {}",
            names.clone().collect::<Vec<_>>().join(", ")
        )
    };
    let d = Diag::new(
        at,
        format!(
            "unknown {} `{key}` {}{}; {expected}",
            owner.noun,
            owner.of,
            did_you_mean(nearest(key, names))
        ),
    );
    if key == "connections" {
        d.help("top-level keys such as `connections` must come before the first [table] header")
    } else {
        d
    }
}

struct ValueCx<'a> {
    ports: &'a [String],
    diags: &'a mut Vec<Diag>,
    /// Appended to "invalid value for `x`" (see [`Owner::within`]).
    of: &'a str,
}

impl ValueCx<'_> {
    /// Checks one value (or item `index` of a list) against `ty`.
    fn value(
        &mut self,
        name: &str,
        index: Option<usize>,
        node: &Node,
        ty: &ParamType,
    ) -> Option<Value> {
        match self.check(name, index, node, ty) {
            Ok(v) => v,
            Err(message) => {
                let what = match index {
                    Some(i) => format!("invalid item {i} of `{name}`{}", self.of),
                    None => format!("invalid value for `{name}`{}", self.of),
                };
                self.diags
                    .push(Diag::new(node.span, format!("{what}: {message}")));
                None
            }
        }
    }

    /// The value of `node` as a `ty`: `Err` says what is wrong with it;
    /// `Ok(None)` when items of a list or fields of a table were wrong (and
    /// reported).
    fn check(
        &mut self,
        name: &str,
        index: Option<usize>,
        node: &Node,
        ty: &ParamType,
    ) -> Result<Option<Value>, String> {
        let expected = || format!("expected {}, found {}", describe(ty), node.item.describe());
        let text = text_of(node, ty);
        let value = match (ty, &node.item) {
            (ParamType::Bool, Item::Bool(b)) => Value::Bool(*b),
            (ParamType::Int { min, max }, Item::Int(i)) if (min..=max).contains(&i) => {
                Value::Int(*i)
            }
            (ParamType::Float, Item::Int(i)) => Value::Float(*i as f64),
            (ParamType::Float, Item::Float(f)) => Value::Float(*f),
            (ParamType::Duration, Item::Int(i)) if *i >= 0 => {
                Value::Duration(std::time::Duration::from_secs(*i as u64))
            }
            (ParamType::Duration, Item::Float(f)) => {
                Value::Duration(std::time::Duration::try_from_secs_f64(*f).map_err(|_| expected())?)
            }
            (ParamType::Duration, Item::Str { s, .. }) => {
                Value::Duration(parse_duration(s).ok_or_else(expected)?)
            }
            (ParamType::Choice(choices), _) if text.is_some() => {
                choice(text.unwrap_or_default(), choices, ty)?
            }
            (ParamType::PortRef, _) if text.is_some() => self.port_ref(text.unwrap_or_default())?,
            (ParamType::List(item_ty), Item::Array(items)) => {
                let before = self.diags.len();
                let values: Vec<Value> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| self.value(name, Some(i), n, item_ty))
                    .collect();
                return Ok((self.diags.len() == before).then_some(Value::List(values)));
            }
            (ParamType::Table(fields), Item::Table(t)) => {
                return Ok(self.table(name, index, node, t, fields));
            }
            (_, _) if is_stringy(ty) && text.is_some() => ty.parse_str(text.unwrap_or_default())?,
            _ => return Err(expected()),
        };
        Ok(Some(value))
    }

    /// A declared port's name.
    fn port_ref(&self, s: &str) -> Result<Value, String> {
        if self.ports.iter().any(|p| p == s) {
            return Ok(Value::Str(s.to_string()));
        }
        let declared = if self.ports.is_empty() {
            "no ports are declared".to_string()
        } else {
            format!("declared ports: {}", self.ports.join(", "))
        };
        let hint = did_you_mean(nearest(s, self.ports.iter().map(|p| p.as_str())));
        Err(format!("unknown port `{s}`{hint}; {declared}"))
    }

    /// A table value (or item `index` of a list of tables): its keys checked
    /// against `fields`, each reported where it is wrong.
    fn table(
        &mut self,
        name: &str,
        index: Option<usize>,
        node: &Node,
        t: &Table,
        fields: &'static [ParamSpec],
    ) -> Option<Value> {
        let place = match index {
            Some(i) => format!("item {i} of `{name}`"),
            None => format!("`{name}`"),
        };
        let owner = Owner {
            noun: "key",
            of: format!("in {place}"),
        };
        let within = format!(" in {place}");
        check_fields(
            t, node.span, fields, &owner, &within, self.ports, self.diags,
        )
        .map(|c| Value::Table(c.params))
    }
}

/// Types whose value may be written as a bare word (a string, or what the
/// TOML reader took for another type, such as `10.0.0.1`).
fn is_stringy(ty: &ParamType) -> bool {
    matches!(
        ty,
        ParamType::Str
            | ParamType::Choice(_)
            | ParamType::Mac
            | ParamType::Ip
            | ParamType::Prefix
            | ParamType::PortRef
    )
}

/// The text of `node` if it is a string, or for a string-like `ty` the raw
/// text of whatever it was read as.
fn text_of<'n>(node: &'n Node, ty: &ParamType) -> Option<&'n str> {
    match (&node.item, &node.raw) {
        (Item::Str { s, .. }, _) => Some(s.as_str()),
        (_, Some(raw)) if is_stringy(ty) => Some(raw.as_str()),
        _ => None,
    }
}

/// One of `choices`, or the nearest as a hint.
fn choice(s: &str, choices: &[&str], ty: &ParamType) -> Result<Value, String> {
    if choices.contains(&s) {
        return Ok(Value::Str(s.to_string()));
    }
    let hint = did_you_mean(nearest(s, choices.iter().copied()));
    Err(format!("expected {}, found {s:?}{hint}", describe(ty)))
}

/// How a type reads in messages (choices quoted, as they are written in TOML).
fn describe(ty: &ParamType) -> String {
    match ty {
        ParamType::Choice(c) => {
            let list: Vec<String> = c.iter().map(|c| format!("\"{c}\"")).collect();
            format!("one of {}", list.join(", "))
        }
        ty => ty.describe(),
    }
}

/// " (did you mean `x`?)" or nothing.
pub(crate) fn did_you_mean(s: Option<&str>) -> String {
    s.map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// The candidate closest to `name`, if it is close enough to be a typo.
pub(crate) fn nearest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .map(|c| (strsim::levenshtein(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d > 0 || c != &name)
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < c.len().min(name.len()).max(1))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::Sources;
    use crate::config::tree::parse_document;
    use std::time::Duration;

    static LIST: ParamType = ParamType::Prefix;
    static SPECS: &[ParamSpec] = &[
        ParamSpec {
            name: "flag",
            ty: ParamType::Bool,
            need: Need::Default("false"),
            doc: "",
        },
        ParamSpec {
            name: "n",
            ty: ParamType::Int { min: 1, max: 10 },
            need: Need::Required,
            doc: "count",
        },
        ParamSpec {
            name: "rate",
            ty: ParamType::Float,
            need: Need::Optional,
            doc: "",
        },
        ParamSpec {
            name: "mode",
            ty: ParamType::Choice(&["fast", "slow"]),
            need: Need::Default("\"fast\""),
            doc: "",
        },
        ParamSpec {
            name: "mac",
            ty: ParamType::Mac,
            need: Need::Optional,
            doc: "",
        },
        ParamSpec {
            name: "ip",
            ty: ParamType::Ip,
            need: Need::Optional,
            doc: "",
        },
        ParamSpec {
            name: "nets",
            ty: ParamType::List(&LIST),
            need: Need::Default("[]"),
            doc: "",
        },
        ParamSpec {
            name: "timeout",
            ty: ParamType::Duration,
            need: Need::Default("\"1s\""),
            doc: "",
        },
        ParamSpec {
            name: "out",
            ty: ParamType::PortRef,
            need: Need::Optional,
            doc: "",
        },
    ];

    fn check(text: &str) -> (Sources, Result<Checked, Vec<Diag>>) {
        check_with(text, SPECS)
    }

    fn check_with(
        text: &str,
        specs: &'static [ParamSpec],
    ) -> (Sources, Result<Checked, Vec<Diag>>) {
        let mut s = Sources::new();
        s.add("f", text);
        let root = parse_document(&s, 0).unwrap();
        let Item::Table(t) = root.item else {
            unreachable!()
        };
        let owner = Owner {
            noun: "parameter",
            of: "for class `T`".into(),
        };
        let mut diags = Vec::new();
        let ports = ["left".to_string(), "right".to_string()];
        let r = check_params(&t, root.span, specs, &owner, &ports, &mut diags);
        (s, r.ok_or(diags))
    }

    fn errors(text: &str) -> Vec<(usize, usize, String)> {
        errors_with(text, SPECS)
    }

    fn errors_with(text: &str, specs: &'static [ParamSpec]) -> Vec<(usize, usize, String)> {
        let (s, r) = check_with(text, specs);
        let diags = r.err().expect("expected errors");
        diags
            .iter()
            .map(|d| {
                let (l, c) = s.line_col(d.span);
                (l, c, d.message.clone())
            })
            .collect()
    }

    #[test]
    fn typed_values_and_defaults() {
        let (_, r) = check("n = 3\nrate = 2\nnets = [\"10.1.0.0/16\", \"::1\"]\ntimeout = 0.25\nout = \"right\"\nmac = \"02:00:00:00:00:01\"");
        let p = r.ok().unwrap().params;
        assert_eq!(p.int("n"), Ok(3));
        assert_eq!(p.float("rate"), Ok(2.0));
        assert_eq!(p.bool("flag"), Ok(false));
        assert_eq!(p.str("mode"), Ok("fast"));
        assert_eq!(p.duration("timeout"), Ok(Duration::from_millis(250)));
        assert_eq!(p.str("out"), Ok("right"));
        assert_eq!(p.list("nets").unwrap().len(), 2);
        assert_eq!(p.mac("mac"), Ok([2, 0, 0, 0, 0, 1]));
        assert!(p.get("ip").is_none());
    }

    #[test]
    fn wrong_values_point_at_the_value_or_item() {
        let e = errors("n = 11\nmode = \"fats\"\nnets = [\"10.0.0.0/8\", \"bad\"]\nflag = 1\nout = \"rigth\"\nbogus = 2\nip = \"1.2.3\"\ntimeout = -1");
        let want = [
            (1, 5, "invalid value for `n`: expected an integer in 1..=10, found the integer 11"),
            (2, 8, "invalid value for `mode`: expected one of \"fast\", \"slow\", found \"fats\" (did you mean `fast`?)"),
            (3, 23, "invalid item 1 of `nets`: expected an IP prefix string like \"10.0.0.0/8\", found \"bad\""),
            (4, 8, "invalid value for `flag`: expected a boolean, found the integer 1"),
            (5, 7, "invalid value for `out`: unknown port `rigth` (did you mean `right`?); declared ports: left, right"),
            (6, 1, "unknown parameter `bogus` for class `T`; expected one of: flag, n, rate, mode, mac, ip, nets, timeout, out"),
            (7, 6, "invalid value for `ip`: expected an IP address string, found \"1.2.3\""),
            (8, 11, "invalid value for `timeout`: expected a duration (seconds, or a string like \"250ms\"), found the integer -1"),
        ];
        assert_eq!(e.len(), want.len(), "{e:#?}");
        for (got, want) in e.iter().zip(want) {
            assert_eq!((got.0, got.1, got.2.as_str()), want);
        }
    }

    #[test]
    fn durations_out_of_range_are_errors_not_panics() {
        let e = errors("n = 1\ntimeout = 1e300");
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].0, e[0].1), (2, 11));
        assert!(e[0].2.contains("found the number 1e300"), "{}", e[0].2);
        let e = errors("n = 1\ntimeout = nan");
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn missing_required_points_at_the_table() {
        let e = errors("");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].2.starts_with(
                "missing required parameter `n` for class `T` (an integer in 1..=10: count)"
            ),
            "{}",
            e[0].2
        );
    }

    #[test]
    fn nearest_finds_typos_only() {
        let c = ["Classify", "Counter", "Discard"];
        assert_eq!(nearest("Clasify", c.iter().copied()), Some("Classify"));
        assert_eq!(nearest("counter", c.iter().copied()), Some("Counter"));
        assert_eq!(nearest("xyz", c.iter().copied()), None);
        assert_eq!(nearest("cnt2", ["cnt", "cls"].iter().copied()), Some("cnt"));
    }

    static RULE_FIELDS: &[ParamSpec] = &[
        ParamSpec {
            name: "action",
            ty: ParamType::Choice(&["allow", "deny"]),
            need: Need::Required,
            doc: "what to do",
        },
        ParamSpec {
            name: "match",
            ty: ParamType::Str,
            need: Need::Default("\"any\""),
            doc: "",
        },
        ParamSpec {
            name: "port",
            ty: ParamType::PortRef,
            need: Need::Optional,
            doc: "",
        },
    ];
    static RULE: ParamType = ParamType::Table(RULE_FIELDS);
    static LIMIT_FIELDS: &[ParamSpec] = &[
        ParamSpec {
            name: "udp",
            ty: ParamType::Duration,
            need: Need::Default("\"30s\""),
            doc: "",
        },
        ParamSpec {
            name: "tcp",
            ty: ParamType::Duration,
            need: Need::Default("7200"),
            doc: "",
        },
    ];
    static TABLE_SPECS: &[ParamSpec] = &[
        ParamSpec {
            name: "rules",
            ty: ParamType::List(&RULE),
            need: Need::Required,
            doc: "",
        },
        ParamSpec {
            name: "limits",
            ty: ParamType::Table(LIMIT_FIELDS),
            need: Need::Default("{}"),
            doc: "",
        },
    ];

    #[test]
    fn tables_are_checked_field_by_field_with_defaults() {
        let text = "rules = [\n  { action = \"allow\", match = \"tcp\" },\n  { action = \"deny\", port = \"left\" },\n]\nlimits = { udp = \"1m\" }";
        let (_, r) = check_with(text, TABLE_SPECS);
        let p = r.expect("valid").params;
        let rules = p.table_list("rules").unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].str("action"), Ok("allow"));
        assert_eq!(rules[0].str("match"), Ok("tcp"));
        assert_eq!(rules[1].str("match"), Ok("any"), "field default");
        assert_eq!(rules[1].str("port"), Ok("left"));
        assert!(rules[0].get("port").is_none());
        let limits = p.table("limits").unwrap();
        assert_eq!(limits.duration("udp"), Ok(Duration::from_secs(60)));
        assert_eq!(limits.duration("tcp"), Ok(Duration::from_secs(7200)));
        // Left out entirely, the table default `{}` fills in every field's default.
        let (_, r) = check_with("rules = []", TABLE_SPECS);
        let p = r.expect("valid").params;
        assert_eq!(
            p.table("limits").unwrap().duration("udp"),
            Ok(Duration::from_secs(30))
        );
    }

    #[test]
    fn table_errors_name_the_field_and_item() {
        let e = errors_with(
            "rules = [\n  { action = \"alow\" },\n  { acton = \"deny\" },\n  { action = \"deny\", port = \"up\" },\n  \"tcp\",\n]\nlimits = { udp = \"soon\", icmp = 3 }",
            TABLE_SPECS,
        );
        let want = [
            (2, 14, "invalid value for `action` in item 0 of `rules`: expected one of \"allow\", \"deny\", found \"alow\" (did you mean `allow`?)"),
            (3, 5, "unknown key `acton` in item 1 of `rules` (did you mean `action`?); expected one of: action, match, port"),
            (3, 3, "missing required key `action` in item 1 of `rules` (one of \"allow\", \"deny\": what to do)"),
            (4, 29, "invalid value for `port` in item 2 of `rules`: unknown port `up`; declared ports: left, right"),
            (5, 3, "invalid item 3 of `rules`: expected a table with keys action, match, port, found the string \"tcp\""),
            (7, 18, "invalid value for `udp` in `limits`: expected a duration (seconds, or a string like \"250ms\"), found the string \"soon\""),
            (7, 26, "unknown key `icmp` in `limits` (did you mean `tcp`?); expected one of: udp, tcp"),
        ];
        assert_eq!(e.len(), want.len(), "{e:#?}");
        for (got, want) in e.iter().zip(want) {
            assert_eq!((got.0, got.1, got.2.as_str()), want);
        }
    }

    #[test]
    fn element_errors_locate_fields_and_bytes_inside_strings() {
        let text = "rules = [\n  { action = \"allow\" },\n  { action = \"deny\", match = \"tcp and dst prot 1\" },\n]";
        let (s, r) = check_with(text, TABLE_SPECS);
        let c = r.expect("valid");
        let at = |e: &ParamError| {
            let d = c.diag(e);
            let (l, col) = s.line_col(d.span);
            (l, col, d.message)
        };
        // A field of an item, at a byte inside its string.
        let e = ParamError::nested(
            "rules",
            Some(1),
            ParamError::new("match", "at byte 8: unknown term").at_offset(8),
        );
        assert_eq!(
            at(&e),
            (
                3,
                39,
                "invalid `match` in item 1 of `rules`: at byte 8: unknown term".into()
            )
        );
        assert_eq!(&text[c.locate(&e).start..][..4], "dst ");
        // The same field without an offset: the whole value.
        let e = ParamError::nested("rules", Some(1), ParamError::new("match", "no"));
        assert_eq!(at(&e).1, 30);
        // A field that was defaulted (not written): the item.
        let e = ParamError::nested("rules", Some(0), ParamError::new("match", "no"));
        assert_eq!(at(&e).1, 3);
        // A table parameter that was not written: the header.
        let e = ParamError::nested("limits", None, ParamError::new("udp", "too short"));
        assert_eq!(at(&e).2, "invalid `udp` in `limits`: too short");
        assert_eq!(c.locate(&e), c.header);
        // An offset past the string falls back to the value.
        let e = ParamError::nested(
            "rules",
            Some(1),
            ParamError::new("match", "x").at_offset(99),
        );
        assert_eq!(at(&e).1, 30);
    }
}
