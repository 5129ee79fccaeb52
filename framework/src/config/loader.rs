//! The state a load shares with wiring: the texts read, the problems found,
//! the classes and drivers, and the ports and elements as declared.

use std::borrow::Cow;

use crate::element::{
    ConfigCx, ConfigureError, Configured, ElementClass, Inputs, Params, PortCount, Registry,
};
use crate::port::{PortRegistry, PortSpec};

use super::source::{Diag, Sources, Span};
use super::tree::Table;
use super::values::{check_params, Checked, Owner};

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
        let cx = ConfigCx {
            ports,
            workers,
            grace: crate::element::Grace::global(),
        };
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
        if let Some(msg) = port_count_mismatch(&class, &configured, &c.params) {
            self.diags.push(Diag::new(header, msg));
            return None;
        }
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

/// What is wrong when the port counts `configure` returned differ from those
/// the class declares (a bug in the class).
fn port_count_mismatch(class: &ElementClass, c: &Configured, params: &Params) -> Option<String> {
    let info = &class.info;
    let inputs = match c.inputs {
        Inputs::Fixed(n) => Some(n),
        Inputs::Any => None,
    };
    let shown = |n: Option<usize>| n.map_or("any number of".to_string(), |n| n.to_string());
    let wrong = |what: &str, n: Option<usize>, declared: PortCount| {
        let declared = match declared {
            PortCount::Param(p) => match params.usize(p) {
                Ok(v) => format!("`{p}` = {v}"),
                Err(_) => declared.describe(),
            },
            _ => declared.describe(),
        };
        format!(
            "class `{}` configured {} {what} but declares {declared} (a bug in the class)",
            info.name,
            shown(n),
        )
    };
    if !info.inputs.admits(inputs, params) {
        return Some(wrong("inputs", inputs, info.inputs));
    }
    if !info.outputs.admits(Some(c.outputs), params) {
        return Some(wrong("outputs", Some(c.outputs), info.outputs));
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::config::configure_element;
    use crate::element::{
        ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Need, Output,
        ParamError, ParamSpec, ParamType, Params, PortCount, Registry,
    };
    use crate::packet::Batch;

    #[derive(Clone)]
    struct Nop;

    impl Element for Nop {
        fn push(&mut self, _: &mut Context<'_>, _: usize, _: &mut Batch, _: &mut Output) {}
    }

    /// Declares 1 input and `outputs` outputs; configures `inputs` inputs
    /// and `outputs + extra` outputs.
    const LIAR: ElementClass = ElementClass {
        info: ClassInfo {
            name: "Liar",
            summary: "",
            description: "",
            inputs: PortCount::Fixed(1),
            outputs: PortCount::Param("outputs"),
            params: &[
                ParamSpec {
                    name: "outputs",
                    ty: ParamType::U16,
                    need: Need::Default("2"),
                    doc: "",
                },
                ParamSpec {
                    name: "extra",
                    ty: ParamType::U16,
                    need: Need::Default("0"),
                    doc: "",
                },
                ParamSpec {
                    name: "any_inputs",
                    ty: ParamType::Bool,
                    need: Need::Default("false"),
                    doc: "",
                },
            ],
            drop_reasons: &[],
            counters: &[],
            handlers: &[],
            example: "",
            see_also: &[],
        },
        configure: liar,
    };

    fn liar(p: &Params, _: &ConfigCx<'_>) -> Result<Configured, ParamError> {
        let inputs = match p.bool("any_inputs")? {
            true => Inputs::Any,
            false => Inputs::Fixed(1),
        };
        let outputs = p.usize("outputs")? + p.usize("extra")?;
        Ok(Configured::cloning(inputs, outputs, Nop))
    }

    fn configure(params: &str) -> Result<Configured, String> {
        let mut r = Registry::empty();
        r.register(LIAR);
        configure_element(&r, &[], "Liar", params).map_err(|e| e.0[0].message.clone())
    }

    #[test]
    fn port_counts_are_checked_against_the_declaration() {
        let c = configure("outputs = 3").expect("as declared");
        assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(1), 3));
        assert_eq!(
            configure("outputs = 3\nextra = 1").unwrap_err(),
            "class `Liar` configured 4 outputs but declares `outputs` = 3 (a bug in the class)"
        );
        assert_eq!(
            configure("any_inputs = true").unwrap_err(),
            "class `Liar` configured any number of inputs but declares 1 (a bug in the class)"
        );
    }
}
