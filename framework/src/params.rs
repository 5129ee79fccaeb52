//! Parameters of element classes and port drivers: their declaration
//! ([`ParamSpec`], [`ParamType`], [`Need`]), their checked values
//! ([`Params`], [`Value`]), and the errors a class or driver gives back
//! about them ([`ParamError`]).
//!
//! A layer of its own, below both `element` and `port`, which declare their
//! parameters the same way; [`crate::element`] re-exports it all, so element
//! authors find it there and in [`crate::prelude`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// The type of a parameter, checked by the config loader before any element is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamType {
    /// `true` or `false`.
    Bool,
    /// An integer in `min..=max`.
    Int {
        /// Smallest value accepted.
        min: i64,
        /// Largest value accepted.
        max: i64,
    },
    /// A number (integers accepted).
    Float,
    /// Any string.
    Str,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// A MAC address, `"02:00:00:00:00:01"`.
    Mac,
    /// An IPv4 or IPv6 address.
    Ip,
    /// An IPv4 or IPv6 prefix, `"10.0.0.0/8"` (a bare address is a host prefix).
    Prefix,
    /// A duration: a number of seconds, or a string such as `"250ms"`, `"10s"`, `"5m"`.
    Duration,
    /// The name of a port in `[ports]`.
    PortRef,
    /// An array of values of one type.
    List(&'static ParamType),
    /// A table (an inline table `{ key = value, ... }` in TOML, typically
    /// an item of a `List`) whose keys are declared like parameters: each
    /// field is type-checked, defaulted and reported on like a parameter,
    /// and unknown keys are errors.
    Table(&'static [ParamSpec]),
}

impl ParamType {
    /// A non-negative integer that fits in a `u16` (counts, indices, ports).
    pub const U16: ParamType = ParamType::Int {
        min: 0,
        max: u16::MAX as i64,
    };
    /// A non-negative integer.
    pub const UINT: ParamType = ParamType::Int {
        min: 0,
        max: i64::MAX,
    };

    /// How the type reads in messages and docs.
    pub fn describe(&self) -> String {
        match self {
            ParamType::Bool => "a boolean".into(),
            ParamType::Int { min, max } if *max == i64::MAX => format!("an integer >= {min}"),
            ParamType::Int { min, max } => format!("an integer in {min}..={max}"),
            ParamType::Float => "a number".into(),
            ParamType::Str => "a string".into(),
            ParamType::Choice(c) => format!("one of {}", c.join(", ")),
            ParamType::Mac => "a MAC address string like \"02:00:00:00:00:01\"".into(),
            ParamType::Ip => "an IP address string".into(),
            ParamType::Prefix => "an IP prefix string like \"10.0.0.0/8\"".into(),
            ParamType::Duration => "a duration (seconds, or a string like \"250ms\")".into(),
            ParamType::PortRef => "the name of a port".into(),
            ParamType::List(t) => format!("an array of {}", t.short()),
            ParamType::Table(fields) => {
                let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
                format!("a table with keys {}", names.join(", "))
            }
        }
    }

    /// A one-word name for the element reference.
    pub fn short(&self) -> String {
        match self {
            ParamType::Bool => "bool".into(),
            ParamType::Int { .. } => "int".into(),
            ParamType::Float => "number".into(),
            ParamType::Str => "string".into(),
            ParamType::Choice(c) => c.join("|"),
            ParamType::Mac => "mac".into(),
            ParamType::Ip => "ip".into(),
            ParamType::Prefix => "prefix".into(),
            ParamType::Duration => "duration".into(),
            ParamType::PortRef => "port".into(),
            ParamType::List(t) => format!("[{}]", t.short()),
            ParamType::Table(_) => "table".into(),
        }
    }

    /// Parses the string form of a scalar typed value (`Mac`, `Ip`, `Prefix`,
    /// `Duration`, `Str`, `Choice`); the error says what was expected.
    pub fn parse_str(&self, s: &str) -> Result<Value, String> {
        let expected = || format!("expected {}, found {s:?}", self.describe());
        match self {
            ParamType::Str => Ok(Value::Str(s.to_string())),
            ParamType::Choice(c) if c.contains(&s) => Ok(Value::Str(s.to_string())),
            ParamType::Mac => parse_mac(s).map(Value::Mac).ok_or_else(expected),
            ParamType::Ip => s.parse().map(Value::Ip).map_err(|_| expected()),
            ParamType::Prefix => parse_prefix(s)
                .map(|(a, l)| Value::Prefix(a, l))
                .ok_or_else(expected),
            ParamType::Duration => parse_duration(s).map(Value::Duration).ok_or_else(expected),
            ParamType::PortRef => Ok(Value::Str(s.to_string())),
            _ => Err(expected()),
        }
    }
}

/// Parses `"aa:bb:cc:dd:ee:ff"` (or with `-`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Parses `"10.0.0.0/8"`, `"2001:db8::/32"` or a bare address (full-length prefix).
/// Host bits beyond the prefix are cleared.
pub fn parse_prefix(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, Some(l.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    if len > max {
        return None;
    }
    Some((mask_addr(addr, len), len))
}

/// Clears the bits of `addr` beyond the first `len`.
pub fn mask_addr(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len as u32)
            };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len as u32)
            };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// Parses `"250ms"`, `"10s"`, `"1.5s"`, `"5m"`, `"2h"`, `"100us"` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" => n / 1e6,
        "ns" => n / 1e9,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// Whether a parameter must be given, may be left out, or has a default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Need {
    /// The config must set it.
    Required,
    /// It may be left out; the element then does without.
    Optional,
    /// Left out, it takes this value, written as a TOML literal (`"1s"`, `32`, `[]`).
    Default(&'static str),
}

/// The declaration of one parameter of an element class (or of one field
/// of a [`ParamType::Table`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    /// Key in the element's TOML table.
    pub name: &'static str,
    /// Type, checked before the element is built.
    pub ty: ParamType,
    /// Required, optional or defaulted.
    pub need: Need,
    /// One-line description.
    pub doc: &'static str,
}

/// A parameter value after type checking.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number.
    Float(f64),
    /// A string (also `Choice` and `PortRef` values).
    Str(String),
    /// A MAC address.
    Mac([u8; 6]),
    /// An IP address.
    Ip(IpAddr),
    /// An IP prefix (address with host bits cleared, length).
    Prefix(IpAddr, u8),
    /// A duration.
    Duration(Duration),
    /// An array.
    List(Vec<Value>),
    /// A table: its fields, checked against their declarations, defaults
    /// filled in (read them with the [`Params`] getters).
    Table(Params),
}

/// An element's checked parameters (or a table's fields), defaults filled in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    values: BTreeMap<&'static str, Value>,
}

/// A problem with a parameter, found when an element is configured. The
/// config loader turns it into a message with file, line and column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "parameter `{param}`{}{}: {message}",
    .index.map(|i| format!(" item {i}")).unwrap_or_default(),
    .field.as_ref().map(|f| format!(" field `{f}`")).unwrap_or_default()
)]
pub struct ParamError {
    /// The parameter's name.
    pub param: String,
    /// The item of an array parameter, when the problem is in one item.
    pub index: Option<usize>,
    /// The field of a table parameter (or of a table item), when the problem
    /// is in one field.
    pub field: Option<String>,
    /// Byte offset of the problem inside the (string) value, when known: the
    /// loader then points at that byte rather than at the whole value.
    pub offset: Option<usize>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ParamError {
    /// A problem with parameter `param` as a whole.
    pub fn new(param: &str, message: impl Into<String>) -> ParamError {
        ParamError {
            param: param.to_string(),
            index: None,
            field: None,
            offset: None,
            message: message.into(),
        }
    }

    /// A problem with item `index` of array parameter `param`.
    pub fn item(param: &str, index: usize, message: impl Into<String>) -> ParamError {
        ParamError {
            param: param.to_string(),
            index: Some(index),
            field: None,
            offset: None,
            message: message.into(),
        }
    }

    /// Moves `inner`, a problem reported about a field of a table (its
    /// `param` is the field's name, as the [`Params`] getters of the table's
    /// fields report it), to table parameter `param`, or to item `index` of
    /// it when the table is an array item.
    ///
    /// ```
    /// # use hpio_nf::element::ParamError;
    /// let e = ParamError::nested("rules", Some(2), ParamError::new("match", "bad"));
    /// assert_eq!(e.to_string(), "parameter `rules` item 2 field `match`: bad");
    /// ```
    pub fn nested(param: &str, index: Option<usize>, inner: ParamError) -> ParamError {
        ParamError {
            param: param.to_string(),
            index,
            field: Some(inner.param),
            offset: inner.offset,
            message: inner.message,
        }
    }

    /// The same problem, located at byte `offset` inside the string value
    /// (a position in a rule, say).
    pub fn at_offset(mut self, offset: usize) -> ParamError {
        self.offset = Some(offset);
        self
    }
}

impl Params {
    /// Empty parameters (every parameter left out).
    pub fn new() -> Params {
        Params::default()
    }

    /// Sets a value (the config loader, and tests).
    pub fn set(&mut self, name: &'static str, v: Value) -> &mut Params {
        self.values.insert(name, v);
        self
    }

    /// The value of `name`, if given or defaulted.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    fn need(&self, name: &str) -> Result<&Value, ParamError> {
        self.get(name)
            .ok_or_else(|| ParamError::new(name, "missing (required)"))
    }

    fn wrong(name: &str, what: &str) -> ParamError {
        ParamError::new(name, format!("expected {what}"))
    }

    /// A boolean parameter.
    pub fn bool(&self, name: &str) -> Result<bool, ParamError> {
        match self.need(name)? {
            Value::Bool(b) => Ok(*b),
            _ => Err(Self::wrong(name, "a boolean")),
        }
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> Result<i64, ParamError> {
        match self.need(name)? {
            Value::Int(i) => Ok(*i),
            _ => Err(Self::wrong(name, "an integer")),
        }
    }

    /// A non-negative integer parameter as `usize`.
    pub fn usize(&self, name: &str) -> Result<usize, ParamError> {
        usize::try_from(self.int(name)?).map_err(|_| Self::wrong(name, "a non-negative integer"))
    }

    /// A number parameter.
    pub fn float(&self, name: &str) -> Result<f64, ParamError> {
        match self.need(name)? {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            _ => Err(Self::wrong(name, "a number")),
        }
    }

    /// A string, choice or port-name parameter.
    pub fn str(&self, name: &str) -> Result<&str, ParamError> {
        match self.need(name)? {
            Value::Str(s) => Ok(s),
            _ => Err(Self::wrong(name, "a string")),
        }
    }

    /// A choice parameter as its enum (declared with
    /// `ParamType::Choice(T::NAMES)`; see [`Choice`](super::Choice)).
    pub fn choice<T: Choice>(&self, name: &str) -> Result<T, ParamError> {
        let s = self.str(name)?;
        T::from_name(s).ok_or_else(|| {
            ParamError::new(
                name,
                format!(
                    "expected {}, found {s:?}",
                    ParamType::Choice(T::NAMES).describe()
                ),
            )
        })
    }

    /// A MAC address parameter.
    pub fn mac(&self, name: &str) -> Result<[u8; 6], ParamError> {
        match self.need(name)? {
            Value::Mac(m) => Ok(*m),
            _ => Err(Self::wrong(name, "a MAC address")),
        }
    }

    /// An IP address parameter.
    pub fn ip(&self, name: &str) -> Result<IpAddr, ParamError> {
        match self.need(name)? {
            Value::Ip(a) => Ok(*a),
            _ => Err(Self::wrong(name, "an IP address")),
        }
    }

    /// A duration parameter.
    pub fn duration(&self, name: &str) -> Result<Duration, ParamError> {
        match self.need(name)? {
            Value::Duration(d) => Ok(*d),
            _ => Err(Self::wrong(name, "a duration")),
        }
    }

    /// An array parameter (empty when left out and optional).
    pub fn list(&self, name: &str) -> Result<&[Value], ParamError> {
        match self.get(name) {
            None => Ok(&[]),
            Some(Value::List(l)) => Ok(l),
            Some(_) => Err(Self::wrong(name, "an array")),
        }
    }

    /// A table parameter: its fields.
    pub fn table(&self, name: &str) -> Result<&Params, ParamError> {
        match self.need(name)? {
            Value::Table(t) => Ok(t),
            _ => Err(Self::wrong(name, "a table")),
        }
    }

    /// An array of tables parameter: each item's fields (empty when left
    /// out and optional).
    pub fn table_list(&self, name: &str) -> Result<Vec<&Params>, ParamError> {
        self.list(name)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Table(t) => Ok(t),
                _ => Err(ParamError::item(name, i, "expected a table")),
            })
            .collect()
    }

    /// An array of strings parameter.
    pub fn str_list(&self, name: &str) -> Result<Vec<&str>, ParamError> {
        self.list(name)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Str(s) => Ok(s.as_str()),
                _ => Err(ParamError::item(name, i, "expected a string")),
            })
            .collect()
    }
}

/// A parameter whose value is one of a fixed list of names, read as an enum
/// with [`Params::choice`]. Declare the enum with
/// [`choice!`](crate::choice), and the parameter with
/// `ParamType::Choice(MyEnum::NAMES)`, so that the names accepted and the
/// names matched cannot drift apart.
pub trait Choice: Sized + Copy + 'static {
    /// The names, one per variant, in the order of the variants.
    const NAMES: &'static [&'static str];
    /// The variant called `name`.
    fn from_name(name: &str) -> Option<Self>;
    /// The name of this variant.
    fn name(self) -> &'static str;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_string_forms() {
        assert_eq!(parse_mac("02:00:0a:ff:00:01"), Some([2, 0, 10, 255, 0, 1]));
        assert_eq!(parse_mac("02:00:0a:ff:00"), None);
        assert_eq!(parse_mac("02:00:0a:ff:00:01:07"), None);
        assert_eq!(
            parse_prefix("10.1.2.3/8"),
            Some(("10.0.0.0".parse().unwrap(), 8))
        );
        assert_eq!(parse_prefix("10.0.0.0/33"), None);
        assert_eq!(
            parse_prefix("2001:db8::1"),
            Some(("2001:db8::1".parse().unwrap(), 128))
        );
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("2 weeks"), None);
    }

    #[test]
    fn getters_report_missing_and_mistyped() {
        let mut p = Params::new();
        p.set("n", Value::Int(3));
        assert_eq!(p.usize("n"), Ok(3));
        assert!(p
            .str("n")
            .unwrap_err()
            .to_string()
            .contains("expected a string"));
        assert!(p.int("x").unwrap_err().to_string().contains("missing"));
        assert_eq!(p.list("absent").unwrap().len(), 0);
    }

    #[test]
    fn tables_and_nested_errors() {
        let mut item = Params::new();
        item.set("action", Value::Str("allow".into()));
        let mut p = Params::new();
        p.set(
            "rules",
            Value::List(vec![Value::Table(item.clone()), Value::Int(1)]),
        );
        p.set("t", Value::Table(item.clone()));
        assert_eq!(p.table("t"), Ok(&item));
        assert!(p.table("rules").is_err());
        let e = p.table_list("rules").unwrap_err();
        assert_eq!((e.param.as_str(), e.index), ("rules", Some(1)));
        let e = ParamError::nested("rules", Some(0), item.int("action").unwrap_err());
        assert_eq!(e.field.as_deref(), Some("action"));
        assert_eq!(
            e.to_string(),
            "parameter `rules` item 0 field `action`: expected an integer"
        );
        let e = ParamError::nested("t", None, ParamError::new("m", "x").at_offset(4));
        assert_eq!(
            (e.to_string().as_str(), e.offset),
            ("parameter `t` field `m`: x", Some(4))
        );
        assert_eq!(ParamType::Table(&[]).short(), "table");
    }
}
