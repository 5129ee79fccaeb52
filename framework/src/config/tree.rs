//! The parsed TOML as an owned tree whose every key and value keeps its
//! [`Span`], and the `dotted.key=value` overrides applied on top of it.

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::source::{Diag, Sources, Span};

/// A TOML value and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The whole value (a table from a `[header]` spans the header).
    pub span: Span,
    /// The value.
    pub item: Item,
    /// For an override's bare value: its text, used when a string is expected
    /// (`ports.x.input=inf` means the file `inf`, not infinity).
    pub raw: Option<String>,
}

/// A TOML value.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// A string; `at` is the byte where its text starts in the source when
    /// the source holds it verbatim (no escapes), for positions inside it.
    Str { s: String, at: Option<usize> },
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A date or time (never valid in our configs; kept to say so).
    Datetime(String),
    /// An array.
    Array(Vec<Node>),
    /// A table.
    Table(Table),
}

impl Item {
    /// What a value is, for "found ..." in messages.
    pub fn describe(&self) -> String {
        match self {
            Item::Str { s, .. } => format!("the string {s:?}"),
            Item::Int(i) => format!("the integer {i}"),
            Item::Float(f) => format!("the number {f:?}"),
            Item::Bool(b) => format!("the boolean {b}"),
            Item::Datetime(d) => format!("the date-time {d}"),
            Item::Array(_) => "an array".into(),
            Item::Table(_) => "a table".into(),
        }
    }
}

/// A TOML table, keys in the order written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub entries: Vec<Entry>,
}

/// One key of a table.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

impl Table {
    /// The entry for `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Removes and returns the entry for `key`.
    pub fn take(&mut self, key: &str) -> Option<Entry> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(i))
    }
}

/// Parses a whole document of source `src`. A syntax error stops here.
pub(crate) fn parse_document(sources: &Sources, src: usize) -> Result<Node, Diag> {
    let text = sources.text(src);
    let root = DeTable::parse(text).map_err(|e| syntax_error(src, 0, text.len(), &e))?;
    let mut diags = Vec::new();
    let table = convert_table(root.get_ref(), &Conv { text, src, base: 0 }, &mut diags);
    match diags.into_iter().next() {
        Some(d) => Err(d),
        None => Ok(Node {
            span: Span::new(src, 0, 0),
            item: Item::Table(table),
            raw: None,
        }),
    }
}

/// Parses a TOML literal written into the program (a parameter default),
/// giving every part of it the span `at`.
pub(crate) fn parse_literal(literal: &str, at: Span) -> Result<Node, String> {
    let v = DeValue::parse(literal).map_err(|e| e.message().to_string())?;
    let mut diags = Vec::new();
    let mut node = convert(
        &v,
        &Conv {
            text: literal,
            src: at.src,
            base: 0,
        },
        &mut diags,
    );
    if let Some(d) = diags.pop() {
        return Err(d.message);
    }
    respan(&mut node, at);
    Ok(node)
}

fn respan(node: &mut Node, at: Span) {
    node.span = at;
    match &mut node.item {
        Item::Str { at: a, .. } => *a = None,
        Item::Array(items) => items.iter_mut().for_each(|n| respan(n, at)),
        Item::Table(t) => t.entries.iter_mut().for_each(|e| {
            e.key_span = at;
            respan(&mut e.value, at)
        }),
        _ => {}
    }
}

fn syntax_error(src: usize, base: usize, len: usize, e: &toml::de::Error) -> Diag {
    let r = e.span().unwrap_or(len..len);
    let msg = e.message().trim_end();
    Diag::new(
        Span::new(src, base + r.start, base + r.end),
        format!("invalid TOML: {msg}"),
    )
}

/// Where the text being converted sits.
struct Conv<'t> {
    text: &'t str,
    src: usize,
    base: usize,
}

impl Conv<'_> {
    fn span(&self, r: std::ops::Range<usize>) -> Span {
        Span::new(self.src, self.base + r.start, self.base + r.end)
    }
}

fn convert_table(t: &DeTable<'_>, cx: &Conv<'_>, diags: &mut Vec<Diag>) -> Table {
    let entries = t
        .iter()
        .map(|(k, v)| Entry {
            key: k.get_ref().to_string(),
            key_span: cx.span(k.span()),
            value: convert(v, cx, diags),
        })
        .collect();
    Table { entries }
}

fn convert(v: &Spanned<DeValue<'_>>, cx: &Conv<'_>, diags: &mut Vec<Diag>) -> Node {
    let r = v.span();
    let span = cx.span(r.clone());
    let item = match v.get_ref() {
        DeValue::String(s) => Item::Str {
            at: verbatim(cx.text.get(r).unwrap_or(""), s).map(|o| span.start + o),
            s: s.to_string(),
        },
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Item::Int(n),
            Err(_) => {
                diags.push(Diag::new(span, "integer out of range (64-bit signed)"));
                Item::Int(0)
            }
        },
        DeValue::Float(f) => Item::Float(f.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Item::Bool(*b),
        DeValue::Datetime(d) => Item::Datetime(d.to_string()),
        DeValue::Array(a) => Item::Array(a.iter().map(|n| convert(n, cx, diags)).collect()),
        DeValue::Table(t) => Item::Table(convert_table(t, cx, diags)),
    };
    Node {
        span,
        item,
        raw: None,
    }
}

/// The offset of a string's text within its raw token, when the token holds
/// it verbatim (no escapes): `"..."`, `'...'`, `"""..."""` or `'''...'''`.
fn verbatim(raw: &str, decoded: &str) -> Option<usize> {
    let quote = ["\"\"\"", "'''", "\"", "'"]
        .iter()
        .find(|q| raw.len() >= 2 * q.len() && raw.starts_with(**q) && raw.ends_with(**q))?;
    let mut start = quote.len();
    let body = &raw[start..raw.len() - quote.len()];
    let body = if quote.len() == 3 {
        let trimmed = body
            .trim_start_matches('\r')
            .strip_prefix('\n')
            .unwrap_or(body);
        start += body.len() - trimmed.len();
        trimmed
    } else {
        body
    };
    (body == decoded).then_some(start)
}

/// Applies override number `n` (source `src`, text `dotted.key=value`) to `root`.
pub(crate) fn apply_override(root: &mut Table, sources: &Sources, src: usize) -> Result<(), Diag> {
    let text = sources.text(src);
    let whole = Span::new(src, 0, text.len());
    let eq = text
        .find('=')
        .ok_or_else(|| Diag::new(whole, "missing `=` in override").help(OVERRIDE_USAGE))?;
    let keys = override_keys(&text[..eq], src)?;
    let value = override_value(text, eq, src)?;
    set_dotted(root, &keys, value)
}

/// How an override is written, for the help of its errors.
const OVERRIDE_USAGE: &str = "an override is `dotted.key=value`, as in `runtime.workers=2` or `ports.left.input=\"in.pcap\"`";

/// The keys of an override's dotted path (`text`, before the `=`), each with its span.
fn override_keys(text: &str, src: usize) -> Result<Vec<(String, Span)>, Diag> {
    let mut keys = Vec::new();
    let mut at = 0;
    for part in text.split('.') {
        let lead = part.len() - part.trim_start().len();
        let key = part.trim();
        let span = Span::new(src, at + lead, at + lead + key.len());
        if key.is_empty() {
            let span = Span::new(src, at, at + part.len());
            return Err(Diag::new(span, "empty key in override").help(OVERRIDE_USAGE));
        }
        keys.push((key.to_string(), span));
        at += part.len() + 1;
    }
    Ok(keys)
}

/// The value of an override (`text` after the `=` at `eq`): a TOML value, or
/// else a bare string (`ports.left.input=in.pcap`).
fn override_value(text: &str, eq: usize, src: usize) -> Result<Node, Diag> {
    let vtext = text[eq + 1..].trim();
    let vstart = eq + 1 + (text[eq + 1..].len() - text[eq + 1..].trim_start().len());
    let vspan = Span::new(src, vstart, vstart + vtext.len());
    if vtext.is_empty() {
        return Err(
            Diag::new(Span::new(src, eq, eq + 1), "missing value after `=`").help(OVERRIDE_USAGE),
        );
    }
    let value = match DeValue::parse(vtext) {
        Ok(v) => {
            let mut diags = Vec::new();
            let cx = Conv {
                text: vtext,
                src,
                base: vstart,
            };
            let mut node = convert(&v, &cx, &mut diags);
            if let Some(d) = diags.pop() {
                return Err(d);
            }
            if !matches!(
                node.item,
                Item::Array(_) | Item::Table(_) | Item::Str { .. }
            ) {
                node.raw = Some(vtext.to_string());
            }
            node
        }
        // Not a TOML value: a bare string (`ports.left.input=in.pcap`).
        Err(_) => Node {
            span: vspan,
            item: Item::Str {
                s: vtext.to_string(),
                at: Some(vstart),
            },
            raw: None,
        },
    };
    Ok(value)
}

/// Sets `keys` (a dotted path) in `root` to `value`, creating the tables on
/// the way; an error if one of them is not a table.
fn set_dotted(root: &mut Table, keys: &[(String, Span)], value: Node) -> Result<(), Diag> {
    let (last, parents) = keys.split_last().expect("split yields at least one part");
    let mut table = root;
    let mut path = String::new();
    for (key, span) in parents {
        path += if path.is_empty() { "" } else { "." };
        path += key;
        let i = match table.entries.iter().position(|e| &e.key == key) {
            Some(i) => i,
            None => {
                table.entries.push(Entry {
                    key: key.clone(),
                    key_span: *span,
                    value: Node {
                        span: *span,
                        item: Item::Table(Table::default()),
                        raw: None,
                    },
                });
                table.entries.len() - 1
            }
        };
        table = match &mut table.entries[i].value.item {
            Item::Table(t) => t,
            other => {
                let msg = format!(
                    "cannot set a key inside `{path}`: it is {}, not a table",
                    other.describe()
                );
                return Err(Diag::new(*span, msg));
            }
        };
    }
    let entry = Entry {
        key: last.0.clone(),
        key_span: last.1,
        value,
    };
    match table.entries.iter_mut().find(|e| e.key == last.0) {
        Some(e) => *e = entry,
        None => table.entries.push(entry),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> (Sources, Table) {
        let mut s = Sources::new();
        s.add("f", text);
        let n = parse_document(&s, 0).unwrap();
        match n.item {
            Item::Table(t) => (s, t),
            _ => unreachable!(),
        }
    }

    #[test]
    fn keeps_spans_and_verbatim_offsets() {
        let text = "a = \"x -> y\"\nb = 'lit'\nc = \"e\\u0041\"\nd = \"\"\"\nm\"\"\"\n[t.u]\nn = 0x10\nm = -5\nk = 1_000\nf = 1_000.5";
        let (s, t) = doc(text);
        let a = &t.get("a").unwrap().value;
        assert_eq!(s.slice(a.span), "\"x -> y\"");
        assert!(matches!(a.item, Item::Str { at: Some(5), .. }));
        assert!(matches!(
            t.get("b").unwrap().value.item,
            Item::Str { at: Some(18), .. }
        ));
        assert!(matches!(
            t.get("c").unwrap().value.item,
            Item::Str { at: None, .. }
        ));
        let d = &t.get("d").unwrap().value;
        match &d.item {
            Item::Str {
                s: body,
                at: Some(at),
            } => assert_eq!(&text[*at..*at + body.len()], "m"),
            other => panic!("{other:?}"),
        }
        let Item::Table(tt) = &t.get("t").unwrap().value.item else {
            panic!()
        };
        let u = &tt.get("u").unwrap().value;
        assert_eq!(s.slice(u.span), "[t.u]");
        let Item::Table(ut) = &u.item else { panic!() };
        assert!(matches!(ut.get("n").unwrap().value.item, Item::Int(16)));
        assert!(matches!(ut.get("m").unwrap().value.item, Item::Int(-5)));
        assert!(matches!(ut.get("k").unwrap().value.item, Item::Int(1000)));
        assert!(matches!(ut.get("f").unwrap().value.item, Item::Float(f) if f == 1000.5));
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let mut s = Sources::new();
        s.add("f", "a = 1\nb = [1,\n");
        let d = parse_document(&s, 0).unwrap_err();
        assert!(d.message.starts_with("invalid TOML"), "{}", d.message);
        let mut s = Sources::new();
        s.add("f", "a = 1\na = 2\n");
        let d = parse_document(&s, 0).unwrap_err();
        assert_eq!(s.line_col(d.span), (2, 1));
        let mut s = Sources::new();
        s.add("f", "a = 99999999999999999999\n");
        let d = parse_document(&s, 0).unwrap_err();
        assert!(d.message.contains("out of range"), "{}", d.message);
    }

    #[test]
    fn overrides_replace_insert_and_fall_back_to_strings() {
        let (mut s, mut t) = doc("[runtime]\nworkers = 1\n[ports.left]\ninput = \"a.pcap\"\n");
        for o in [
            "runtime.workers=2",
            "ports.left.input = b.pcap",
            "elements.x.rules=[\"a\", 'b']",
            "runtime.clock=inf",
        ] {
            let src = s.add("<override>", o);
            apply_override(&mut t, &s, src).unwrap();
        }
        let Item::Table(rt) = &t.get("runtime").unwrap().value.item else {
            panic!()
        };
        assert!(matches!(
            rt.get("workers").unwrap().value.item,
            Item::Int(2)
        ));
        let clock = &rt.get("clock").unwrap().value;
        assert_eq!(clock.raw.as_deref(), Some("inf"));
        let Item::Table(pt) = &t.get("ports").unwrap().value.item else {
            panic!()
        };
        let Item::Table(left) = &pt.get("left").unwrap().value.item else {
            panic!()
        };
        let input = &left.get("input").unwrap().value;
        assert!(matches!(&input.item, Item::Str { s, at: Some(19) } if s == "b.pcap"));
        assert_eq!(input.span, Span::new(2, 19, 25));
        let Item::Table(et) = &t.get("elements").unwrap().value.item else {
            panic!()
        };
        let Item::Table(x) = &et.get("x").unwrap().value.item else {
            panic!()
        };
        let Item::Array(rules) = &x.get("rules").unwrap().value.item else {
            panic!()
        };
        assert_eq!(s.slice(rules[1].span), "'b'");

        for (o, msg, col) in [
            ("runtime", "missing `=`", 1),
            ("runtime..x=1", "empty key", 9),
            ("runtime.workers=", "missing value", 16),
            ("runtime.workers.x=1", "not a table", 9),
        ] {
            let src = s.add("<override>", o);
            let d = apply_override(&mut t, &s, src).unwrap_err();
            assert!(d.message.contains(msg), "{o}: {}", d.message);
            assert_eq!(s.line_col(d.span).1, col, "{o}");
        }
    }
}
