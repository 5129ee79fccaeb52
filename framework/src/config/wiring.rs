//! Wiring: connections resolved against the declared ports and elements,
//! then the graph checked as a whole (every output connected exactly once,
//! every element fed, no cycles) and turned into a [`GraphSpec`].

use crate::element::Inputs;
use crate::graph::{GraphSpec, NodeSpec, Target};

use super::connection::{parse_path, Endpoint};
use super::loader::{ElemDecl, Loader, PortDecl};
use super::source::{Diag, Span};
use super::tree::{Item, Node, Table};
use super::values::{did_you_mean, nearest};

/// The checked graph and which port sides it uses.
pub(crate) struct Wiring {
    pub graph: GraphSpec,
    /// Number of declared elements (implicit ones follow).
    pub declared: usize,
    pub rx_used: Vec<bool>,
    pub tx_used: Vec<bool>,
}

/// What a name in a connection refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ref {
    Port(usize),
    Elem(usize),
    /// Something that did not check out (already reported).
    Broken,
}

struct Wirer<'a, 'l, 'r> {
    l: &'l mut Loader<'r>,
    ports: &'a [PortDecl],
    elems: Vec<ElemDecl>,
    declared: usize,
    /// The implicit `discard`: not needed yet, unavailable, or its index.
    discard: Option<Option<usize>>,
    /// Per element, per output: its target and the connection that set it.
    outputs: Vec<Vec<Option<(Target, Span)>>>,
    sources: Vec<Option<(Target, Span)>>,
    fed: Vec<bool>,
    /// Elements named in a connection that had an error: no further checks.
    tainted: Vec<bool>,
    tx_used: Vec<bool>,
    /// Element-to-element edges, for the cycle check.
    edges: Vec<(usize, usize, Span)>,
    syntax_failed: bool,
}

pub(crate) fn wire(
    l: &mut Loader<'_>,
    ports: &[PortDecl],
    elems: Vec<ElemDecl>,
    connections: Option<&Node>,
) -> Option<Wiring> {
    let n = elems.len();
    let mut w = Wirer {
        l,
        ports,
        declared: n,
        discard: None,
        outputs: Vec::new(),
        sources: vec![None; ports.len()],
        fed: Vec::new(),
        tainted: Vec::new(),
        tx_used: vec![false; ports.len()],
        edges: Vec::new(),
        syntax_failed: false,
        elems: Vec::with_capacity(n + 1),
    };
    for e in elems {
        w.push_elem(e);
    }
    match connections.map(|c| (&c.item, c.span)) {
        None => {}
        Some((Item::Array(items), _)) => {
            for item in items {
                match &item.item {
                    Item::Str { s, at } => w.path(s, *at, item.span),
                    other => {
                        let msg = format!(
                            "expected a connection string like \"a -> b\", found {}",
                            other.describe()
                        );
                        w.l.diags.push(Diag::new(item.span, msg));
                        w.syntax_failed = true;
                    }
                }
            }
        }
        Some((other, span)) => {
            let msg = format!(
                "`connections` must be an array of strings like [\"a -> b\"], found {}",
                other.describe()
            );
            w.l.diags.push(Diag::new(span, msg));
            w.syntax_failed = true;
        }
    }
    if !w.syntax_failed {
        w.check_connected();
    }
    w.check_cycles();
    w.build()
}

impl Wirer<'_, '_, '_> {
    fn push_elem(&mut self, e: ElemDecl) -> usize {
        let outputs = e.configured.as_ref().map_or(0, |c| c.outputs);
        self.outputs.push(vec![None; outputs]);
        self.fed.push(false);
        self.tainted.push(false);
        for &(_, p) in e.configured.iter().flat_map(|c| &c.port_outputs) {
            self.tx_used[p] = true;
        }
        self.elems.push(e);
        self.elems.len() - 1
    }

    fn diag(&mut self, at: Span, message: String) {
        self.l.diags.push(Diag::new(at, message));
    }

    /// Resolves a name, reporting unknown ones.
    fn lookup(&mut self, name: &str, at: Span) -> Option<Ref> {
        let port = self.ports.iter().position(|p| p.name == name);
        let elem = self.elems[..self.declared]
            .iter()
            .position(|e| e.name == name);
        match (port, elem) {
            (Some(_), Some(_)) => Some(Ref::Broken),
            (Some(p), None) => Some(Ref::Port(p)),
            (None, Some(e)) if self.elems[e].configured.is_some() => Some(Ref::Elem(e)),
            (None, Some(_)) => Some(Ref::Broken),
            (None, None) if name == "discard" => Some(self.discard(at)),
            (None, None) => {
                let names = self.ports.iter().map(|p| p.name.as_str());
                let names =
                    names.chain(self.elems[..self.declared].iter().map(|e| e.name.as_str()));
                let hint = did_you_mean(nearest(name, names.chain(["discard"])));
                self.diag(at, format!("unknown element or port `{name}`{hint}"));
                None
            }
        }
    }

    /// The implicit shared `discard` element, made on first use.
    fn discard(&mut self, at: Span) -> Ref {
        if let Some(d) = self.discard {
            return d.map_or(Ref::Broken, Ref::Elem);
        }
        let Some(class) = self.l.elements.get("Discard").copied() else {
            self.diag(
                at,
                "`discard` needs the element class `Discard`, which is not registered".into(),
            );
            self.discard = Some(None);
            return Ref::Broken;
        };
        let names: Vec<String> = self.ports.iter().map(|p| p.name.clone()).collect();
        let configured = self.l.configure(class, &Table::default(), at, &names, 1);
        let ok = configured.is_some();
        let i = self.push_elem(ElemDecl {
            name: "discard".into(),
            header: at,
            class: Some(class),
            configured,
        });
        self.discard = Some(ok.then_some(i));
        if ok {
            Ref::Elem(i)
        } else {
            Ref::Broken
        }
    }

    /// Resolves and records one connection string.
    fn path(&mut self, s: &str, at: Option<usize>, whole: Span) {
        let map = |r: std::ops::Range<usize>| match at {
            Some(a) => Span::new(whole.src, a + r.start, a + r.end),
            None => whole,
        };
        let eps = match parse_path(s) {
            Ok(eps) => eps,
            Err(e) => {
                self.diag(map(e.at), e.message);
                self.syntax_failed = true;
                return;
            }
        };
        let last = eps.len() - 1;
        let mut ok = true;
        if last == 0 {
            let name = &eps[0].name;
            let msg = format!("a connection needs at least two endpoints, as in \"{name} -> b\"");
            self.diag(map(eps[0].at.clone()), msg);
            ok = false;
        }
        let mut refs = Vec::with_capacity(eps.len());
        for (i, ep) in eps.iter().enumerate() {
            let r = self.lookup(&ep.name, map(ep.name_at.clone()));
            if let Some(r) = r {
                ok &= self.check_endpoint(ep, r, i == 0, i == last, &map);
            }
            ok &= r.is_some();
            refs.push(r.unwrap_or(Ref::Broken));
        }
        if !ok {
            for r in refs {
                if let Ref::Elem(e) = r {
                    self.tainted[e] = true;
                }
            }
            return;
        }
        for i in 0..last {
            let span = map(eps[i].at.start..eps[i + 1].at.end);
            self.connect((&eps[i], refs[i]), (&eps[i + 1], refs[i + 1]), span, &map);
        }
    }

    /// Checks an endpoint's place in its connection and its numbers.
    fn check_endpoint(
        &mut self,
        ep: &Endpoint,
        r: Ref,
        first: bool,
        last: bool,
        map: &dyn Fn(std::ops::Range<usize>) -> Span,
    ) -> bool {
        match r {
            Ref::Broken => false,
            Ref::Port(p) => self.check_port_endpoint(ep, p, first, last, map),
            Ref::Elem(e) => self.check_element_endpoint(ep, e, first, last, map),
        }
    }

    /// A port starts a connection (and can receive) or ends one, and takes no `[n]`.
    fn check_port_endpoint(
        &mut self,
        ep: &Endpoint,
        p: usize,
        first: bool,
        last: bool,
        map: &dyn Fn(std::ops::Range<usize>) -> Span,
    ) -> bool {
        let name = &ep.name;
        let mut ok = true;
        let port = &self.ports[p];
        if let (true, false, Some(spec)) = (first, last, &port.spec) {
            if spec.rx_queues() == 0 {
                let msg = format!(
                    "port `{name}` cannot receive: as configured ({}, {}) it has no receive queues",
                    port.driver,
                    spec.describe()
                );
                self.diag(map(ep.name_at.clone()), msg);
                ok = false;
            }
        }
        if !first && !last {
            let msg = format!("port `{name}` in the middle of a connection: a port can only start one (its receive side) or end one (its transmit side)");
            self.diag(map(ep.name_at.clone()), msg);
            ok = false;
        }
        if let Some((_, at)) = ep.input.as_ref().or(ep.output.as_ref()) {
            let msg = format!(
                "port `{name}` takes no `[n]`: a port has one receive side and one transmit side"
            );
            self.diag(map(at.clone()), msg);
            ok = false;
        }
        ok
    }

    /// An element's input and output numbers stand where something is
    /// connected and exist on its class.
    fn check_element_endpoint(
        &mut self,
        ep: &Endpoint,
        e: usize,
        first: bool,
        last: bool,
        map: &dyn Fn(std::ops::Range<usize>) -> Span,
    ) -> bool {
        let name = &ep.name;
        let mut ok = true;
        if let (true, Some((_, at))) = (first, &ep.input) {
            let msg = format!("input number before `{name}`, but nothing precedes it in this connection; write it on the receiving end, as in \"a -> [1] {name}\"");
            self.diag(map(at.clone()), msg);
            ok = false;
        }
        if let (true, Some((_, at))) = (last, &ep.output) {
            let msg = format!("output number after `{name}`, but nothing follows it in this connection; write it on the sending end, as in \"{name}[1] -> b\"");
            self.diag(map(at.clone()), msg);
            ok = false;
        }
        let el = &self.elems[e];
        let class = el.class.map_or("", |c| c.info.name);
        let Some(c) = &el.configured else {
            return false;
        };
        let (outputs, inputs) = (c.outputs, c.inputs);
        let out = ep.output.as_ref().map_or(0, |o| o.0);
        if !last && out >= outputs {
            let at = ep
                .output
                .as_ref()
                .map_or(ep.name_at.clone(), |o| o.1.clone());
            let msg = no_such_port(name, class, Side::Output, outputs, out);
            self.diag(map(at), msg);
            ok = false;
        }
        let input = ep.input.as_ref().map_or(0, |i| i.0);
        if let (false, Inputs::Fixed(n)) = (first, inputs) {
            if input >= n {
                let at = ep
                    .input
                    .as_ref()
                    .map_or(ep.name_at.clone(), |i| i.1.clone());
                self.diag(map(at), no_such_port(name, class, Side::Input, n, input));
                ok = false;
            }
        }
        ok
    }

    /// Records `a -> b` (both checked).
    fn connect(
        &mut self,
        (a, ra): (&Endpoint, Ref),
        (b, rb): (&Endpoint, Ref),
        span: Span,
        map: &dyn Fn(std::ops::Range<usize>) -> Span,
    ) {
        let target = match rb {
            Ref::Port(p) => {
                self.tx_used[p] = true;
                Target::Port(p)
            }
            Ref::Elem(e) => {
                self.fed[e] = true;
                Target::Element {
                    node: e,
                    input: b.input.as_ref().map_or(0, |i| i.0),
                }
            }
            Ref::Broken => return,
        };
        let at = map(a.output.as_ref().map_or(a.name_at.clone(), |o| o.1.clone()));
        match ra {
            Ref::Port(p) => match self.sources[p] {
                Some((_, prev)) => {
                    let msg = format!(
                        "the receive side of port `{}` is already connected (at {}); a port feeds one place",
                        a.name,
                        self.l.sources.place(prev)
                    );
                    self.diag(at, msg);
                }
                None => self.sources[p] = Some((target, span)),
            },
            Ref::Elem(e) => {
                let out = a.output.as_ref().map_or(0, |o| o.0);
                let c = self.elems[e].configured.as_ref().expect("checked endpoint");
                if let Some(&(_, p)) = c.port_outputs.iter().find(|po| po.0 == out) {
                    let class = self.elems[e].class.map_or("", |c| c.info.name);
                    let msg = format!(
                        "output {out} of `{}` is already wired to port `{}` by the element (class `{class}`); remove this connection",
                        a.name, self.ports[p].name
                    );
                    self.diag(at, msg);
                } else if let Some((_, prev)) = self.outputs[e][out] {
                    let msg = format!(
                        "output {out} of `{}` is already connected (at {}); an output goes to exactly one place",
                        a.name,
                        self.l.sources.place(prev)
                    );
                    self.diag(at, msg);
                } else {
                    self.outputs[e][out] = Some((target, span));
                    if let Target::Element { node, .. } = target {
                        self.edges.push((e, node, span));
                    }
                }
            }
            Ref::Broken => {}
        }
    }

    /// Every output connected, every element with inputs fed.
    fn check_connected(&mut self) {
        for e in 0..self.elems.len() {
            let el = &self.elems[e];
            let Some(c) = &el.configured else { continue };
            if self.tainted[e] {
                continue;
            }
            let name = &el.name;
            let class = el.class.map_or("", |c| c.info.name);
            let open: Vec<usize> = (0..c.outputs)
                .filter(|&o| {
                    self.outputs[e][o].is_none() && !c.port_outputs.iter().any(|p| p.0 == o)
                })
                .collect();
            let mut diags = Vec::new();
            if !open.is_empty() {
                let list: Vec<String> = open.iter().map(|o| o.to_string()).collect();
                let (s, verb) = if open.len() == 1 {
                    ("", "is")
                } else {
                    ("s", "are")
                };
                let example: Vec<String> = open
                    .iter()
                    .map(|o| format!("\"{name}[{o}] -> discard\""))
                    .collect();
                let msg = format!(
                    "output{s} {} of `{name}` (class `{class}`) {verb} not connected",
                    list.join(", ")
                );
                let help = format!(
                    "connect every output; to drop what it sends there, add {}",
                    example.join(", ")
                );
                diags.push(Diag::new(el.header, msg).help(help));
            }
            if c.inputs != Inputs::Fixed(0) && !self.fed[e] {
                let msg =
                    format!("nothing feeds `{name}` (class `{class}`): no connection leads to it");
                diags.push(Diag::new(el.header, msg).help(format!(
                    "connect something to it, as in \"a -> {name}\", or remove it"
                )));
            }
            self.l.diags.extend(diags);
        }
    }

    /// Any cycle would loop a packet forever: report each, at the
    /// connection that closes it.
    fn check_cycles(&mut self) {
        let n = self.elems.len();
        let mut adj: Vec<Vec<(usize, Span)>> = vec![Vec::new(); n];
        for &(a, b, span) in &self.edges {
            adj[a].push((b, span));
        }
        // 0: unvisited, 1: on the current path, 2: done.
        let mut state = vec![0u8; n];
        let mut found = Vec::new();
        for start in 0..n {
            if state[start] == 0 {
                let mut path = Vec::new();
                dfs(start, &adj, &mut state, &mut path, &mut found);
            }
        }
        for (cycle, span) in found {
            let names: Vec<&str> = cycle.iter().map(|&i| self.elems[i].name.as_str()).collect();
            let msg = format!(
                "cycle `{}`: a packet would loop forever",
                names.join(" -> ")
            );
            self.diag(span, msg);
        }
    }

    fn build(self) -> Option<Wiring> {
        let mut nodes = Vec::with_capacity(self.elems.len());
        for (e, outs) in self.elems.into_iter().zip(self.outputs) {
            let configured = e.configured?;
            let outputs = outs
                .iter()
                .enumerate()
                .map(|(o, t)| match t {
                    Some((t, _)) => Some(*t),
                    None => configured
                        .port_outputs
                        .iter()
                        .find(|p| p.0 == o)
                        .map(|p| Target::Port(p.1)),
                })
                .collect::<Option<Vec<_>>>()?;
            nodes.push(NodeSpec {
                name: e.name,
                class: e.class?.info,
                configured,
                outputs,
            });
        }
        let rx_used = self.sources.iter().map(Option::is_some).collect();
        Some(Wiring {
            graph: GraphSpec {
                nodes,
                ports: self.ports.iter().map(|p| p.name.clone()).collect(),
                sources: self.sources.iter().map(|s| s.map(|s| s.0)).collect(),
            },
            declared: self.declared,
            rx_used,
            tx_used: self.tx_used,
        })
    }
}

fn dfs(
    v: usize,
    adj: &[Vec<(usize, Span)>],
    state: &mut [u8],
    path: &mut Vec<usize>,
    found: &mut Vec<(Vec<usize>, Span)>,
) {
    state[v] = 1;
    path.push(v);
    for &(w, span) in &adj[v] {
        match state[w] {
            0 => dfs(w, adj, state, path, found),
            1 => {
                let from = path.iter().position(|&x| x == w).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(w);
                found.push((cycle, span));
            }
            _ => {}
        }
    }
    path.pop();
    state[v] = 2;
}

/// Which end of an element a port number names.
#[derive(Clone, Copy)]
enum Side {
    Output,
    Input,
}

/// The error of a port number `asked` that element `name` (of `class`,
/// with `n` ports on that `side`) does not have.
fn no_such_port(name: &str, class: &str, side: Side, n: usize, asked: usize) -> String {
    let (port, none) = match side {
        Side::Output => ("output", "it cannot send to anything"),
        Side::Input => ("input", "nothing can send to it"),
    };
    match n {
        0 => format!("`{name}` (class `{class}`) has no {port}s; {none}"),
        1 => format!("`{name}` (class `{class}`) has 1 {port} (0); {port} {asked} does not exist"),
        n => format!(
            "`{name}` (class `{class}`) has {n} {port}s (0..={}); {port} {asked} does not exist",
            n - 1
        ),
    }
}
