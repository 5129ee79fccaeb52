//! Loading: the top-level keys, `plugins`, `[runtime]`, `[ports]` and
//! `[elements]`, each checked into typed form; then
//! [`wiring`](super::wiring) wires the graph.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::element::{Configured, Registry, Value};
use crate::plugin::{self, Plugin};
use crate::port::PortRegistry;

use super::connection::{bad_name, is_ident};
use super::loader::{ElemDecl, Loader, PortDecl};
use super::source::{ConfigErrors, Diag, Sources, Span};
use super::tree::{apply_override, parse_document, Item, Node, Table};
use super::values::{check_params, did_you_mean, nearest, Owner};
use super::wiring;
use super::{Clock, Config, Idle, OnPanic, PortConfig, RuntimeConfig, RUNTIME_PARAMS};

/// The top-level tables and keys.
#[derive(Default)]
struct Top {
    connections: Option<Node>,
    plugins: Option<Node>,
    runtime: Option<(Table, Span)>,
    ports: Option<(Table, Span)>,
    elements: Option<(Table, Span)>,
}

const TOP_KEYS: [&str; 5] = ["plugins", "connections", "runtime", "ports", "elements"];

pub(crate) fn load(
    text: &str,
    file: &str,
    elements: &Registry,
    drivers: &PortRegistry,
    overrides: &[String],
) -> Result<Config, ConfigErrors> {
    let mut l = Loader {
        sources: Sources::new(),
        diags: Vec::new(),
        elements: Cow::Borrowed(elements),
        drivers,
    };
    let src = l.sources.add(file, text);
    let mut root = l.document(src)?;
    for (i, o) in overrides.iter().enumerate() {
        let src = l.sources.add(format!("<override {}>", i + 1), o.as_str());
        if let Err(d) = apply_override(&mut root, &l.sources, src) {
            l.diags.push(d);
        }
    }
    let top = l.top_level(root);
    let plugins = l.plugins(top.plugins.as_ref(), Path::new(file).parent());
    let runtime = l.runtime(top.runtime);
    let ports = l.ports(top.ports);
    let elems = l.elements(top.elements, &ports, runtime.workers);
    let wiring = wiring::wire(&mut l, &ports, elems, top.connections.as_ref());
    let ports: Option<Vec<PortConfig>> = ports
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let w = wiring.as_ref()?;
            Some(PortConfig {
                name: p.name,
                driver: p.driver,
                spec: p.spec?,
                rx_used: w.rx_used[i],
                tx_used: w.tx_used[i],
            })
        })
        .collect();
    match (wiring, ports) {
        (Some(w), Some(ports)) if l.diags.is_empty() => Ok(Config {
            path: file.to_string(),
            runtime,
            ports,
            graph: w.graph,
            declared_nodes: w.declared,
            plugins,
        }),
        _ => {
            if l.diags.is_empty() {
                // Wiring gave up without saying why: never let that pass silently.
                l.diags.push(Diag::new(
                    Span::new(src, 0, 0),
                    "the graph could not be built",
                ));
            }
            Err(ConfigErrors::from_diags(&l.sources, l.diags))
        }
    }
}

pub(crate) fn configure_snippet(
    elements: &Registry,
    ports: &[String],
    class: &str,
    text: &str,
) -> Result<Configured, ConfigErrors> {
    let drivers = PortRegistry::default();
    let mut l = Loader {
        sources: Sources::new(),
        diags: Vec::new(),
        elements: Cow::Borrowed(elements),
        drivers: &drivers,
    };
    let src = l.sources.add("<snippet>", text);
    let mut root = l.document(src)?;
    let mut header = Span::new(src, 0, 0);
    // A whole `[elements.X]` table: take its body.
    if root.entries.len() == 1 && root.entries[0].key == "elements" {
        if let Item::Table(t) = &mut root.entries[0].value.item {
            if let [e] = t.entries.as_mut_slice() {
                if let Item::Table(body) = &mut e.value.item {
                    header = e.value.span;
                    root = std::mem::take(body);
                }
            }
        }
    }
    if let Some(e) = root.take("class") {
        match &e.value.item {
            Item::Str { s, .. } if s == class => {}
            other => {
                let msg = format!("expected `class = \"{class}\"`, found {}", other.describe());
                l.diags.push(Diag::new(e.value.span, msg));
            }
        }
    }
    let configured = match elements.get(class) {
        Some(c) => l.configure(*c, &root, header, ports, 1),
        None => {
            let msg = format!(
                "unknown element class `{class}`{}",
                did_you_mean(elements.suggest(class))
            );
            l.diags.push(Diag::new(header, msg));
            None
        }
    };
    match configured {
        Some(c) if l.diags.is_empty() => Ok(c),
        _ => Err(ConfigErrors::from_diags(&l.sources, l.diags)),
    }
}

impl Loader<'_> {
    fn document(&mut self, src: usize) -> Result<Table, ConfigErrors> {
        match parse_document(&self.sources, src) {
            Ok(Node {
                item: Item::Table(t),
                ..
            }) => Ok(t),
            Ok(_) => Ok(Table::default()),
            Err(d) => Err(ConfigErrors::from_diags(&self.sources, vec![d])),
        }
    }

    fn top_level(&mut self, root: Table) -> Top {
        let mut top = Top::default();
        for e in root.entries {
            let slot = match e.key.as_str() {
                "connections" => {
                    top.connections = Some(e.value);
                    continue;
                }
                "plugins" => {
                    top.plugins = Some(e.value);
                    continue;
                }
                "runtime" => &mut top.runtime,
                "ports" => &mut top.ports,
                "elements" => &mut top.elements,
                key => {
                    let hint = did_you_mean(nearest(key, TOP_KEYS.into_iter()));
                    let msg = format!(
                        "unknown top-level key `{key}`{hint}; expected one of: {}",
                        TOP_KEYS.join(", ")
                    );
                    let mut d = Diag::new(e.key_span, msg);
                    if RUNTIME_PARAMS.iter().any(|p| p.name == key) {
                        d = d.help(format!(
                            "`{key}` is a runtime setting: put it in the [runtime] table"
                        ));
                    }
                    self.diags.push(d);
                    continue;
                }
            };
            match e.value.item {
                Item::Table(t) => *slot = Some((t, e.value.span)),
                other => {
                    let msg = format!(
                        "`{}` must be a table ([{}] or [{}.NAME]), found {}",
                        e.key,
                        e.key,
                        e.key,
                        other.describe()
                    );
                    self.diags.push(Diag::new(e.value.span, msg));
                }
            }
        }
        top
    }

    /// Loads the libraries listed in `plugins` into a copy of the registry,
    /// before any class is looked up. Paths are relative to the config's
    /// directory (`dir`), or for an override to the current directory.
    fn plugins(&mut self, node: Option<&Node>, dir: Option<&Path>) -> Vec<Plugin> {
        let Some(node) = node else {
            return Vec::new();
        };
        let Item::Array(items) = &node.item else {
            let msg = format!(
                "`plugins` must be an array of plugin library paths, found {}",
                node.item.describe()
            );
            self.diags.push(Diag::new(node.span, msg));
            return Vec::new();
        };
        let mut loaded: Vec<(PathBuf, Span)> = Vec::new();
        let mut out = Vec::new();
        for item in items {
            let Item::Str { s, .. } = &item.item else {
                let msg = format!(
                    "a plugin must be the path of a library (a string), found {}",
                    item.item.describe()
                );
                self.diags.push(Diag::new(item.span, msg));
                continue;
            };
            let path = match dir {
                Some(d) if item.span.src == 0 => d.join(s),
                _ => PathBuf::from(s),
            };
            // A bare file name would make the system loader search its paths.
            let path = if path.parent().is_none_or(|p| p.as_os_str().is_empty()) {
                Path::new(".").join(path)
            } else {
                path
            };
            if let Ok(canonical) = std::fs::canonicalize(&path) {
                if let Some((_, first)) = loaded.iter().find(|(p, _)| *p == canonical) {
                    let msg = format!(
                        "plugin `{s}` is listed twice (first at {})",
                        self.sources.place(*first)
                    );
                    self.diags.push(Diag::new(item.span, msg));
                    continue;
                }
                loaded.push((canonical, item.span));
            }
            match plugin::load(&path, self.elements.to_mut()) {
                Ok(p) => {
                    log::debug!(
                        "plugin {}: classes {}",
                        p.path.display(),
                        p.classes.join(", ")
                    );
                    out.push(p);
                }
                Err(e) => {
                    let mut d = Diag::new(item.span, e.to_string());
                    if item.span.src == 0 && Path::new(s).is_relative() {
                        d = d.help(format!(
                            "a relative plugin path is taken from the config's directory: {}",
                            path.display()
                        ));
                    }
                    self.diags.push(d);
                }
            }
        }
        out
    }

    fn runtime(&mut self, table: Option<(Table, Span)>) -> RuntimeConfig {
        let (table, header) = table.unwrap_or_else(|| (Table::default(), Span::new(0, 0, 0)));
        let owner = Owner {
            noun: "key",
            of: "in [runtime]".into(),
        };
        let Some(c) = check_params(&table, header, RUNTIME_PARAMS, &owner, &[], &mut self.diags)
        else {
            return RuntimeConfig::default();
        };
        let int = |name| c.params.usize(name).unwrap_or(0);
        let (workers, burst, pool) = (int("workers"), int("burst"), int("pool"));
        let cores: Vec<usize> = match c.params.get("cores") {
            Some(Value::List(l)) => l
                .iter()
                .map(|v| match v {
                    Value::Int(i) => *i as usize,
                    _ => 0,
                })
                .collect(),
            _ => (0..workers).collect(),
        };
        if cores.len() != workers {
            let msg = format!(
                "`cores` lists {} core{} but `workers` is {workers}; give one core per worker",
                cores.len(),
                if cores.len() == 1 { "" } else { "s" }
            );
            self.diags
                .push(Diag::new(c.span("cores").unwrap_or(header), msg));
        }
        if pool < 2 * burst {
            let at = c.span("pool").or(c.span("burst")).unwrap_or(header);
            let msg = format!(
                "`pool` ({pool}) must be at least twice `burst` ({burst}): a worker holds one burst while it receives the next"
            );
            self.diags.push(Diag::new(at, msg));
        }
        RuntimeConfig {
            workers,
            cores,
            burst,
            pool,
            max_frame: c.params.get("max_frame").map(|_| int("max_frame")),
            // (Checked against their names above: never an error here.)
            clock: c.params.choice::<Clock>("clock").unwrap_or_default(),
            on_panic: c.params.choice::<OnPanic>("on_panic").unwrap_or_default(),
            idle: c.params.choice::<Idle>("idle").unwrap_or_default(),
        }
    }

    /// Checks a `[ports.NAME]` or `[elements.NAME]` entry: a valid name and a table.
    fn named_table(
        &mut self,
        kind: &str,
        key: &str,
        key_span: Span,
        value: Node,
    ) -> Option<(Table, Span)> {
        if !is_ident(key) {
            self.diags.push(Diag::new(key_span, bad_name(key)));
            return None;
        }
        match value.item {
            Item::Table(t) => Some((t, value.span)),
            other => {
                let msg = format!(
                    "{kind} `{key}` must be a table ([{kind}s.{key}]), found {}",
                    other.describe()
                );
                self.diags.push(Diag::new(value.span, msg));
                None
            }
        }
    }

    /// Takes the string under `key` (`driver`, `class`) out of a table.
    fn take_name(
        &mut self,
        t: &mut Table,
        key: &str,
        header: Span,
        missing: String,
    ) -> Option<(String, Span)> {
        let Some(e) = t.take(key) else {
            self.diags.push(Diag::new(header, missing));
            return None;
        };
        match e.value.item {
            Item::Str { s, .. } => Some((s, e.value.span)),
            other => {
                let msg = format!("`{key}` must be a string, found {}", other.describe());
                self.diags.push(Diag::new(e.value.span, msg));
                None
            }
        }
    }

    fn ports(&mut self, table: Option<(Table, Span)>) -> Vec<PortDecl> {
        let Some((table, _)) = table else {
            return Vec::new();
        };
        let names: Vec<String> = table.entries.iter().map(|e| e.key.clone()).collect();
        let drivers: Vec<&str> = self.drivers.classes().map(|c| c.name).collect();
        let mut out = Vec::new();
        for e in table.entries {
            let Some((mut t, header)) = self.named_table("port", &e.key, e.key_span, e.value)
            else {
                continue;
            };
            let missing = format!(
                "port `{}` has no `driver`; expected one of: {}",
                e.key,
                drivers.join(", ")
            );
            let mut decl = PortDecl {
                name: e.key,
                key_span: e.key_span,
                driver: String::new(),
                spec: None,
            };
            if let Some((driver, at)) = self.take_name(&mut t, "driver", header, missing) {
                match self.drivers.get(&driver) {
                    None => {
                        let hint = did_you_mean(nearest(&driver, drivers.iter().copied()));
                        let msg = format!(
                            "unknown port driver `{driver}`{hint}; expected one of: {}",
                            drivers.join(", ")
                        );
                        self.diags.push(Diag::new(at, msg));
                    }
                    Some(class) => {
                        let owner = Owner {
                            noun: "parameter",
                            of: format!("for driver `{driver}`"),
                        };
                        if let Some(c) =
                            check_params(&t, header, class.params, &owner, &names, &mut self.diags)
                        {
                            match (class.configure)(&c.params) {
                                Ok(spec) => decl.spec = Some(spec),
                                Err(pe) => self.diags.push(c.diag(&pe)),
                            }
                        }
                    }
                }
                decl.driver = driver;
            }
            out.push(decl);
        }
        out
    }

    fn elements(
        &mut self,
        table: Option<(Table, Span)>,
        ports: &[PortDecl],
        workers: usize,
    ) -> Vec<ElemDecl> {
        let Some((table, _)) = table else {
            return Vec::new();
        };
        let port_names: Vec<String> = ports.iter().map(|p| p.name.clone()).collect();
        let mut out = Vec::new();
        for e in table.entries {
            let port = ports.iter().find(|p| p.name == e.key);
            let Some((mut t, header)) = self.named_table("element", &e.key, e.key_span, e.value)
            else {
                continue;
            };
            if let Some(p) = port {
                let msg = format!(
                    "`{}` names both a port (at {}) and an element; names must be unique",
                    e.key,
                    self.sources.place(p.key_span)
                );
                self.diags.push(Diag::new(e.key_span, msg));
            }
            let mut decl = ElemDecl {
                name: e.key,
                header,
                class: None,
                configured: None,
            };
            let missing = format!("element `{}` has no `class`", decl.name);
            if let Some((class, at)) = self.take_name(&mut t, "class", header, missing) {
                match self.elements.get(&class) {
                    None => {
                        let hint = did_you_mean(self.elements.suggest(&class));
                        self.diags.push(Diag::new(
                            at,
                            format!("unknown element class `{class}`{hint}"),
                        ));
                    }
                    Some(c) => {
                        decl.class = Some(*c);
                        decl.configured = self.configure(*c, &t, header, &port_names, workers);
                    }
                }
            }
            if port.is_some() {
                decl.configured = None;
            }
            out.push(decl);
        }
        out
    }
}
