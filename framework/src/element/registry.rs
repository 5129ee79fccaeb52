//! Element classes and the registry that finds them by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::guard::{self, ConfigureError, ConfigureFn};
use super::{Element, ParamError, ParamSpec, Params};

/// How many inputs an element accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inputs {
    /// Inputs `0..n`.
    Fixed(usize),
    /// Any number of inputs.
    Any,
}

/// How many inputs or outputs the elements of a class have, as the class
/// declares it in [`ClassInfo`]. The config loader checks what the class's
/// `configure` returns against it, and the manual shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortCount {
    /// Exactly this many.
    Fixed(usize),
    /// Any number: inputs `0..n` for whatever `n` the config wires
    /// ([`Inputs::Any`]), or outputs set by `configure` without a rule.
    Any,
    /// As many as the value of this integer parameter.
    Param(&'static str),
    /// Set by `configure` from the parameters, as the text says
    /// (`"one more than the largest output a rule names"`).
    Configured(&'static str),
}

impl PortCount {
    /// Whether `n` ports (`None`: any number, [`Inputs::Any`]) agree with
    /// this declaration, for an element configured from `params`.
    pub fn admits(&self, n: Option<usize>, params: &Params) -> bool {
        match *self {
            PortCount::Fixed(k) => n == Some(k),
            PortCount::Any => true,
            PortCount::Param(p) => params.usize(p).ok() == n,
            PortCount::Configured(_) => true,
        }
    }

    /// How the count reads in the manual.
    pub fn describe(&self) -> String {
        match *self {
            PortCount::Fixed(n) => n.to_string(),
            PortCount::Any => "any number".into(),
            PortCount::Param(p) => format!("`{p}` (the parameter)"),
            PortCount::Configured(how) => how.into(),
        }
    }
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
    /// What the element does, what its ports are for, and its notes (a few
    /// paragraphs; the port counts are in `inputs` and `outputs`).
    pub description: &'static str,
    /// Number of inputs.
    pub inputs: PortCount,
    /// Number of outputs.
    pub outputs: PortCount,
    /// Declared parameters.
    pub params: &'static [ParamSpec],
    /// Reasons for which the element drops packets, indexed by
    /// [`super::DropReason`] (declare them with [`drop_reasons!`](crate::drop_reasons)).
    pub drop_reasons: &'static [&'static str],
    /// Element-specific counters it reports, with a one-line doc each
    /// (declare them with [`counters!`](crate::counters)).
    pub counters: &'static [(&'static str, &'static str)],
    /// Handlers an operator can call while it runs (`hpio-nf ctl`); see
    /// [`super::handler`].
    pub handlers: &'static [super::HandlerSpec],
    /// A config snippet that uses the class: an `[elements.NAME]` table.
    pub example: &'static str,
    /// Related classes.
    pub see_also: &'static [&'static str],
}

#[cfg(test)]
impl ClassInfo {
    /// A test class named `name` and nothing else (no documentation,
    /// parameters, drop reasons or counters): what a test of the graph, the
    /// runtime or the loader needs. Set a field over it with
    /// `ClassInfo { drop_reasons: &["mine"], ..ClassInfo::bare("Touchy") }`.
    pub(crate) const fn bare(name: &'static str) -> ClassInfo {
        ClassInfo {
            name,
            summary: "",
            description: "",
            inputs: PortCount::Any,
            outputs: PortCount::Any,
            params: &[],
            drop_reasons: &[],
            counters: &[],
            handlers: &[],
            example: "",
            see_also: &[],
        }
    }
}

/// What the config loader knows while configuring an element.
pub struct ConfigCx<'a> {
    /// Names of the config's ports, in their index order.
    pub ports: &'a [String],
    /// Number of workers that will run the graph.
    pub workers: usize,
    /// The grace-period domain of the workers that will run the element
    /// (see [`super::grace`]): state the replicas share and that a writer
    /// changes while they read it is freed or reused once a grace started
    /// after its unpublishing has passed. The host's domain, the same
    /// across reloads (a dynamic plugin has its own copy of
    /// [`super::Grace::global`], with no worker in it: take this one).
    pub grace: std::sync::Arc<super::Grace>,
}

impl ConfigCx<'_> {
    /// Index of the port called `name`.
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p == name)
    }
}

type Factory = dyn Fn(usize) -> Box<dyn Element> + Send + Sync;

/// A configured element: its port counts and a factory for per-worker replicas.
///
/// Every replica the factory makes is guarded: a panic in its
/// [`Element::push`] is caught at the element's boundary, its batch is
/// dropped and counted as `panic`, and the run goes on or stops as
/// `[runtime] on_panic` says. A panic while building a replica is reported
/// the same way, on every batch that replica gets.
#[derive(Clone)]
pub struct Configured {
    /// Inputs it accepts.
    pub inputs: Inputs,
    /// Number of outputs.
    pub outputs: usize,
    /// Outputs wired by the element itself to a port's transmit side
    /// (`Forward`): (output, port index).
    pub port_outputs: Vec<(usize, usize)>,
    /// The replicas use the timer hook ([`Element::timer`]); set with
    /// [`Configured::with_timer`].
    pub timer: bool,
    factory: Arc<Factory>,
}

impl Configured {
    /// An element with `outputs` outputs whose replicas come from
    /// `factory(worker)`: for elements whose replicas differ per worker
    /// (a share of a table, say) or cannot be cloned.
    ///
    /// ```
    /// use hpio_nf::prelude::*;
    ///
    /// #[derive(Default)]
    /// struct PerWorker { seen: u64 }
    ///
    /// impl Element for PerWorker {
    ///     fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
    ///         self.seen += batch.len() as u64;
    ///         out.push_all(0, batch);
    ///     }
    /// }
    ///
    /// let c = Configured::new(Inputs::Fixed(1), 1, |_worker| Box::new(PerWorker::default()));
    /// let _replica_for_worker_0 = c.instantiate(0);
    /// ```
    pub fn new<F>(inputs: Inputs, outputs: usize, factory: F) -> Configured
    where
        F: Fn(usize) -> Box<dyn Element> + Send + Sync + 'static,
    {
        Configured::guarded(inputs, outputs, move |w| guard::replica(w, || factory(w)))
    }

    /// An element whose replicas are clones of `element` (the usual case:
    /// configure once, clone per worker).
    pub fn cloning<E>(inputs: Inputs, outputs: usize, element: E) -> Configured
    where
        E: Element + Clone + Sync + 'static,
    {
        Configured::guarded(inputs, outputs, move |w| {
            guard::replica(w, || element.clone())
        })
    }

    /// A `Configured` whose `factory` already guards its replicas.
    fn guarded<F>(inputs: Inputs, outputs: usize, factory: F) -> Configured
    where
        F: Fn(usize) -> Box<dyn Element> + Send + Sync + 'static,
    {
        guard::install_hook();
        Configured {
            inputs,
            outputs,
            port_outputs: Vec::new(),
            timer: false,
            factory: Arc::new(factory),
        }
    }

    /// Declares that output `output` goes to the transmit side of port `port`.
    pub fn with_port_output(mut self, output: usize, port: usize) -> Configured {
        self.port_outputs.push((output, port));
        self
    }

    /// Declares that the replicas use the timer hook: the graph lists them
    /// and calls their [`Element::timer`] when due (see there); the
    /// timers of elements not declared are never called.
    pub fn with_timer(mut self) -> Configured {
        self.timer = true;
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
            .field("timer", &self.timer)
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

/// A registered class and how to run its `configure`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    class: ElementClass,
    /// [`guard::configure_guarded`] of the crate copy that registered the
    /// class: a plugin's own, so that a panic in its `configure` is caught by
    /// the standard library that raised it.
    configure: fn(ConfigureFn, &Params, &ConfigCx<'_>) -> Result<Configured, ConfigureError>,
}

/// Element classes by name.
///
/// ```
/// use hpio_nf::prelude::*;
///
/// let mut r = Registry::builtin();
/// assert!(r.get("Counter").is_some());
/// assert_eq!(r.suggest("Countr"), Some("Counter"));
/// // An NF crate or plugin adds its classes with `r.register(my_crate::CLASS)`.
/// ```
#[derive(Debug, Clone, Default)]
pub struct Registry {
    classes: BTreeMap<&'static str, Entry>,
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// Adds `class`; a class of the same name is replaced and returned.
    pub fn register(&mut self, class: ElementClass) -> Option<ElementClass> {
        let entry = Entry {
            class,
            configure: guard::configure_guarded,
        };
        self.classes.insert(class.info.name, entry).map(|e| e.class)
    }

    /// The class called `name`.
    pub fn get(&self, name: &str) -> Option<&ElementClass> {
        self.classes.get(name).map(|e| &e.class)
    }

    /// All classes, sorted by name.
    pub fn classes(&self) -> impl Iterator<Item = &ElementClass> {
        self.classes.values().map(|e| &e.class)
    }

    /// Runs `class.configure`, catching a panic in it (with the guard of the
    /// crate that registered a class of that name, else this crate's own).
    pub(crate) fn configure(
        &self,
        class: &ElementClass,
        params: &Params,
        cx: &ConfigCx<'_>,
    ) -> Result<Configured, ConfigureError> {
        let run = self
            .classes
            .get(class.info.name)
            .map_or(guard::configure_guarded as _, |e| e.configure);
        run(class.configure, params, cx)
    }

    /// Moves every class of `other` into `self`. Fails without changing
    /// `self` when a class of the same name is already there, and returns
    /// the names moved.
    pub(crate) fn absorb(&mut self, other: Registry) -> Result<Vec<&'static str>, &'static str> {
        if let Some(dup) = other.classes.keys().find(|k| self.classes.contains_key(*k)) {
            return Err(dup);
        }
        let names = other.classes.keys().copied().collect();
        self.classes.extend(other.classes);
        Ok(names)
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
