//! The resolved config as text, for `hpio-nf check`: runtime settings, each
//! port with its driver and use, each element with its class and where each
//! output goes.

use std::fmt;

use crate::element::Inputs;
use crate::graph::Target;

use super::Config;
use crate::params::Choice;

fn plural(n: usize, one: &str, many: &str) -> String {
    match n {
        0 => format!("no {many}"),
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

impl Config {
    /// How a target reads: `cnt`, `[1] cnt`, `port right`.
    fn target_name(&self, t: Target) -> String {
        match t {
            Target::Element { node, input: 0 } => self.graph.nodes[node].name.clone(),
            Target::Element { node, input } => format!("[{input}] {}", self.graph.nodes[node].name),
            Target::Port(p) => format!("port {}", self.graph.ports[p]),
        }
    }

    /// Who sends to port `p`: `cnt[0]`, `left`.
    fn senders(&self, p: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (i, s) in self.graph.sources.iter().enumerate() {
            if *s == Some(Target::Port(p)) {
                out.push(self.graph.ports[i].clone());
            }
        }
        for n in &self.graph.nodes {
            for (o, t) in n.outputs.iter().enumerate() {
                if *t == Target::Port(p) {
                    out.push(format!("{}[{o}]", n.name));
                }
            }
        }
        out
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_runtime(f)?;
        self.write_ports(f)?;
        self.write_elements(f)
    }
}

impl Config {
    /// The config's path, the runtime settings and the plugins loaded.
    fn write_runtime(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.runtime;
        let cores: Vec<String> = r.cores.iter().map(|c| c.to_string()).collect();
        let (clock, on_panic, idle) = (r.clock.name(), r.on_panic.name(), r.idle.name());
        writeln!(f, "config {}", self.path)?;
        writeln!(
            f,
            "runtime: {} (cores {}), burst {}, pool {}, clock {clock}, on_panic {on_panic}, idle {idle}",
            plural(r.workers, "worker", "workers"),
            cores.join(", "),
            r.burst,
            r.pool
        )?;
        if let Some(m) = r.max_frame {
            writeln!(f, "runtime: packet slots of {m} bytes of frame (max_frame)")?;
        }
        for p in &self.plugins {
            writeln!(
                f,
                "plugin {} ({}): classes {}",
                p.path.display(),
                p.crate_name,
                p.classes.join(", ")
            )?;
        }
        Ok(())
    }

    /// Each port: its driver, where its frames go and who sends to it.
    fn write_ports(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ports:")?;
        if self.ports.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for (i, p) in self.ports.iter().enumerate() {
            // Drivers usually name themselves in their description.
            let describe = p.spec.describe();
            if describe.starts_with(&p.driver) {
                writeln!(f, "  {}: {describe}", p.name)?;
            } else {
                writeln!(f, "  {}: {}, {describe}", p.name, p.driver)?;
            }
            let queues = plural(p.spec.rx_queues(), "queue", "queues");
            match self.graph.sources.get(i).copied().flatten() {
                Some(t) => writeln!(f, "    rx: {queues} -> {}", self.target_name(t))?,
                None => writeln!(f, "    rx: unused")?,
            }
            let senders = self.senders(i);
            if senders.is_empty() {
                writeln!(f, "    tx: unused")?;
            } else {
                writeln!(f, "    tx: from {}", senders.join(", "))?;
            }
        }
        Ok(())
    }

    /// Each element: its class, ports and where each output goes.
    fn write_elements(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "elements:")?;
        if self.graph.nodes.is_empty() {
            writeln!(f, "  (none)")?;
        }
        for (i, n) in self.graph.nodes.iter().enumerate() {
            let c = &n.configured;
            let implicit = if i >= self.declared_nodes {
                " (implicit)"
            } else {
                ""
            };
            let inputs = match c.inputs {
                Inputs::Any => "any inputs".to_string(),
                Inputs::Fixed(k) => plural(k, "input", "inputs"),
            };
            let outputs = plural(c.outputs, "output", "outputs");
            writeln!(
                f,
                "  {}: {}{implicit}, {inputs}, {outputs}",
                n.name, n.class.name
            )?;
            for (o, t) in n.outputs.iter().enumerate() {
                let by = if c.port_outputs.iter().any(|p| p.0 == o) {
                    " (wired by the element)"
                } else {
                    ""
                };
                writeln!(f, "    [{o}] -> {}{by}", self.target_name(*t))?;
            }
        }
        Ok(())
    }
}
