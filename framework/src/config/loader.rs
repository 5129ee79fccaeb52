//! The state a load shares with wiring: the texts read, the problems found,
//! the classes and drivers, and the ports and elements as declared.

use std::borrow::Cow;

use crate::element::{ConfigCx, ConfigureError, Configured, ElementClass, Registry};
use crate::port::{PortRegistry, PortSpec};

use super::params::{check_params, Checked, Owner};
use super::source::{Diag, Sources, Span};
use super::tree::Table;

/// State of one load: the texts read and the problems found so far.
pub(crate) struct Loader<'r> {
    pub sources: Sources,
    pub diags: Vec<Diag>,
    /// The caller's classes, plus (in a copy) those of the config's plugins.
    pub elements: Cow<'r, Registry>,
    pub drivers: &'r PortRegistry,
}

/// A port as declared (its spec is `None` when it did not check out).
pub(crate) struct PortDecl {
    pub name: String,
    pub key_span: Span,
    pub driver: String,
    pub spec: Option<Box<dyn PortSpec>>,
}

/// An element as declared (`configured` is `None` when it did not check out).
pub(crate) struct ElemDecl {
    pub name: String,
    /// Its `[elements.NAME]` header (or table), where whole-element problems point.
    pub header: Span,
    pub class: Option<ElementClass>,
    pub configured: Option<Configured>,
}

impl Loader<'_> {
    /// Type-checks `t` against `class` and runs its `configure`.
    pub(crate) fn configure(
        &mut self,
        class: ElementClass,
        t: &Table,
        header: Span,
        ports: &[String],
        workers: usize,
    ) -> Option<Configured> {
        let owner = Owner {
            noun: "parameter",
            of: format!("for class `{}`", class.info.name),
        };
        let c: Checked =
            check_params(t, header, class.info.params, &owner, ports, &mut self.diags)?;
        let cx = ConfigCx { ports, workers };
        let configured = match self.elements.configure(&class, &c.params, &cx) {
            Ok(cfg) => cfg,
            Err(ConfigureError::Param(pe)) => {
                self.diags.push(c.diag(&pe));
                return None;
            }
            Err(ConfigureError::Panicked(msg)) => {
                let msg = format!(
                    "class `{}` panicked while configuring this element (a bug in the class): {msg}",
                    class.info.name
                );
                self.diags.push(Diag::new(header, msg));
                return None;
            }
        };
        for &(out, port) in &configured.port_outputs {
            if out >= configured.outputs || port >= ports.len() {
                let msg = format!(
                    "class `{}` wired output {out} to port {port}, which does not exist (a bug in the class)",
                    class.info.name
                );
                self.diags.push(Diag::new(header, msg));
                return None;
            }
        }
        Some(configured)
    }
}
