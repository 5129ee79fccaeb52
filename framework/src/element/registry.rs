//! Element classes and the registry that finds them by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Element, ParamError, ParamSpec, Params};

/// How many inputs an element accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inputs {
    /// Inputs `0..n`.
    Fixed(usize),
    /// Any number of inputs.
    Any,
}

/// The documentation and declarations of an element class: everything known
/// before a packet flows. The same text feeds `hpio-nf elements` and
/// docs/elements.md.
#[derive(Debug, Clone, Copy)]
pub struct ClassInfo {
    /// Class name used in configs (`class = "Classify"`).
    pub name: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// What the element does, its ports and its notes (a few paragraphs).
    pub description: &'static str,
    /// Declared parameters.
    pub params: &'static [ParamSpec],
    /// Reasons for which the element drops packets, indexed by [`super::DropReason`].
    pub drop_reasons: &'static [&'static str],
    /// Element-specific counters it reports, with a one-line doc each.
    pub counters: &'static [(&'static str, &'static str)],
    /// A config snippet that uses the class: an `[elements.NAME]` table.
    pub example: &'static str,
    /// Related classes.
    pub see_also: &'static [&'static str],
}

/// What the config loader knows while configuring an element.
pub struct ConfigCx<'a> {
    /// Names of the config's ports, in their index order.
    pub ports: &'a [String],
    /// Number of workers that will run the graph.
    pub workers: usize,
}

impl ConfigCx<'_> {
    /// Index of the port called `name`.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p == name)
    }
}

type Factory = dyn Fn(usize) -> Box<dyn Element> + Send + Sync;

/// A configured element: its port counts and a factory for per-worker replicas.
pub struct Configured {
    /// Inputs it accepts.
    pub inputs: Inputs,
    /// Number of outputs.
    pub outputs: usize,
    /// Outputs wired by the element itself to a port's transmit side
    /// (`Forward`): (output, port index).
    pub port_outputs: Vec<(usize, usize)>,
    factory: Arc<Factory>,
}

impl Configured {
    /// An element with `outputs` outputs whose replicas come from `factory(worker)`.
    pub fn new<F>(inputs: Inputs, outputs: usize, factory: F) -> Configured
    where
        F: Fn(usize) -> Box<dyn Element> + Send + Sync + 'static,
    {
        Configured {
            inputs,
            outputs,
            port_outputs: Vec::new(),
            factory: Arc::new(factory),
        }
    }

    /// An element whose replicas are clones of `element`.
    pub fn cloning<E>(inputs: Inputs, outputs: usize, element: E) -> Configured
    where
        E: Element + Clone + Sync + 'static,
    {
        Configured::new(inputs, outputs, move |_| Box::new(element.clone()))
    }

    /// Declares that output `output` goes to the transmit side of port `port`.
    pub fn with_port_output(mut self, output: usize, port: usize) -> Configured {
        self.port_outputs.push((output, port));
        self
    }

    /// A replica for worker `worker`.
    pub fn instantiate(&self, worker: usize) -> Box<dyn Element> {
        (self.factory)(worker)
    }
}

impl std::fmt::Debug for Configured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configured")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("port_outputs", &self.port_outputs)
            .finish()
    }
}

/// An element class: its declarations and how to configure it.
#[derive(Clone, Copy)]
pub struct ElementClass {
    /// Documentation and declarations.
    pub info: ClassInfo,
    /// Builds the element from checked parameters, or says which parameter is wrong.
    pub configure: fn(&Params, &ConfigCx<'_>) -> Result<Configured, ParamError>,
}

impl std::fmt::Debug for ElementClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElementClass")
            .field("name", &self.info.name)
            .finish()
    }
}

/// Element classes by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    classes: BTreeMap<&'static str, ElementClass>,
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// A registry holding the built-in classes.
    pub fn builtin() -> Registry {
        let mut r = Registry::empty();
        crate::elements::register_builtins(&mut r);
        r
    }

    /// Adds `class`; a class of the same name is replaced and returned.
    pub fn register(&mut self, class: ElementClass) -> Option<ElementClass> {
        self.classes.insert(class.info.name, class)
    }

    /// The class called `name`.
    pub fn get(&self, name: &str) -> Option<&ElementClass> {
        self.classes.get(name)
    }

    /// All classes, sorted by name.
    pub fn classes(&self) -> impl Iterator<Item = &ElementClass> {
        self.classes.values()
    }

    /// The registered name closest to `name`, if any is reasonably close.
    pub fn suggest(&self, name: &str) -> Option<&'static str> {
        let lower = name.to_ascii_lowercase();
        self.classes
            .keys()
            .map(|k| (strsim::levenshtein(&lower, &k.to_ascii_lowercase()), *k))
            .filter(|(d, k)| *d <= 3.max(k.len() / 3))
            .min()
            .map(|(_, k)| k)
    }
}
