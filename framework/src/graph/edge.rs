//! Edges of a graph as an operator names them (`br[1]`, `fw[0] -> outside`,
//! a port's receive or transmit side) and as a replica finds them.

use std::fmt;

use super::{Graph, Target};

/// One end of an [`Edge`] as written: a name and the number in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeEnd {
    /// Element or port name.
    pub name: String,
    /// For the upstream end, the output (`br[1]`); for the downstream end,
    /// the input (`-> [1]fw`).
    pub index: Option<usize>,
}

/// An edge as written, names unresolved (the config layer's `parse_edge` reads it).
///
/// `from` alone is an element's output or a port's receive side; `from`
/// and `to` is the same, checked to lead to `to`; `to` alone is a port's
/// transmit side (everything sent on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Where the packets come from.
    pub from: Option<EdgeEnd>,
    /// Where they go.
    pub to: Option<EdgeEnd>,
}

/// An edge of one graph, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EdgeId {
    /// Output `output` of element `node`.
    Output {
        /// Element index.
        node: usize,
        /// Output number.
        output: usize,
    },
    /// What a port receives, before the graph.
    Rx(usize),
    /// What is sent on a port, from any element.
    Tx(usize),
}

impl fmt::Display for EdgeEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match self.index {
            Some(i) => write!(f, "[{i}]"),
            None => Ok(()),
        }
    }
}

impl Graph {
    /// Finds `edge` in this graph; the error says what does not exist.
    pub fn resolve(&self, edge: &Edge) -> Result<EdgeId, String> {
        match (&edge.from, &edge.to) {
            (Some(from), to) => {
                let (id, target) = self.upstream(from)?;
                if let Some(to) = to {
                    self.check_leads(from, target, to)?;
                }
                Ok(id)
            }
            (None, Some(to)) => {
                if let Some(p) = self.port_index(&to.name) {
                    if to.index.is_some() {
                        return Err(format!("`{to}`: a port has no numbered inputs"));
                    }
                    return Ok(EdgeId::Tx(p));
                }
                if self.node_index(&to.name).is_some() {
                    return Err(format!(
                        "`-> {to}` is an element's input: tap the output that feeds it \
                         (`x[0] -> {}`)",
                        to.name
                    ));
                }
                Err(self.unknown(&to.name))
            }
            (None, None) => Err("empty edge: write `element[output]` or a port name".into()),
        }
    }

    /// The edge out of `from` and where it leads.
    fn upstream(&self, from: &EdgeEnd) -> Result<(EdgeId, Option<Target>), String> {
        if let Some(node) = self.node_index(&from.name) {
            let targets = &self.nodes[node].targets;
            let output = match (from.index, targets.len()) {
                (Some(o), n) if o < n => o,
                (_, 0) => return Err(format!("element `{}` has no outputs", from.name)),
                (Some(o), n) => {
                    return Err(format!(
                        "element `{}` has no output {o} (it has {n}: 0..={})",
                        from.name,
                        n - 1
                    ))
                }
                (None, 1) => 0,
                (None, n) => {
                    return Err(format!(
                        "element `{}` has {n} outputs: name one, `{}[0]` to `{}[{}]`",
                        from.name,
                        from.name,
                        from.name,
                        n - 1
                    ))
                }
            };
            return Ok((EdgeId::Output { node, output }, Some(targets[output])));
        }
        if let Some(p) = self.port_index(&from.name) {
            if from.index.is_some() {
                return Err(format!("`{from}`: a port has no numbered outputs"));
            }
            return match self.sources[p] {
                Some(t) => Ok((EdgeId::Rx(p), Some(t))),
                None => Err(format!(
                    "port `{}` receives nothing into the graph (no connection starts at it); \
                     tap its transmit side with `-> {}`",
                    from.name, from.name
                )),
            };
        }
        Err(self.unknown(&from.name))
    }

    /// Checks that the edge out of `from` goes to `to`.
    fn check_leads(
        &self,
        from: &EdgeEnd,
        target: Option<Target>,
        to: &EdgeEnd,
    ) -> Result<(), String> {
        let Some(target) = target else {
            return Ok(());
        };
        let named = self.target_name(target);
        let same = match target {
            Target::Port(p) => to.name == self.port_names[p] && to.index.is_none(),
            Target::Element { node, input } => {
                to.name == self.nodes[node].name && to.index.unwrap_or(0) == input
            }
        };
        if !same {
            if self.node_index(&to.name).is_none() && self.port_index(&to.name).is_none() {
                return Err(self.unknown(&to.name));
            }
            return Err(format!("`{from}` goes to `{named}`, not to `{to}`"));
        }
        Ok(())
    }

    /// `name`, or `[input]name` for an element input other than 0.
    pub(crate) fn target_name(&self, target: Target) -> String {
        match target {
            Target::Port(p) => self.port_names[p].clone(),
            Target::Element { node, input: 0 } => self.nodes[node].name.clone(),
            Target::Element { node, input } => format!("[{input}]{}", self.nodes[node].name),
        }
    }

    /// How the edge is written back (`fw[1] -> outside`, `left rx`, `right tx`).
    pub fn edge_name(&self, edge: EdgeId) -> String {
        match edge {
            EdgeId::Output { node, output } => format!(
                "{}[{output}] -> {}",
                self.nodes[node].name,
                self.target_name(self.nodes[node].targets[output])
            ),
            EdgeId::Rx(p) => format!("{} rx", self.port_names[p]),
            EdgeId::Tx(p) => format!("{} tx", self.port_names[p]),
        }
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    fn port_index(&self, name: &str) -> Option<usize> {
        self.port_names.iter().position(|n| n == name)
    }

    fn unknown(&self, name: &str) -> String {
        let names = self
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .chain(self.port_names.iter().map(String::as_str));
        let all: Vec<&str> = names.collect();
        match all.iter().find(|n| strsim::levenshtein(n, name) <= 2) {
            Some(n) => format!("no element or port `{name}` (did you mean `{n}`?)"),
            None => format!(
                "no element or port `{name}` (there are: {})",
                all.join(", ")
            ),
        }
    }
}
