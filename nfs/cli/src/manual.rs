//! `hpio-nf elements`: the element manual, rendered from the classes' own declarations.

use std::fmt::Write as _;
use std::process::ExitCode;

use hpio_nf::element::{ClassInfo, HandlerKind, Need, ParamSpec, ParamType, Registry};
use hpio_nf::port::{PortClass, PortRegistry};

pub fn cmd_elements(
    registry: &Registry,
    name: Option<String>,
    markdown: bool,
) -> anyhow::Result<ExitCode> {
    if markdown {
        print!("{}", manual_markdown(registry, &crate::port_registry()));
        return Ok(ExitCode::SUCCESS);
    }
    match name {
        None => {
            for c in registry.classes() {
                println!("{:<14} {}", c.info.name, c.info.summary);
            }
            println!("\n`hpio-nf elements NAME` shows one class in full.");
        }
        Some(n) => match registry.get(&n) {
            Some(c) => print!("{}", class_page(&c.info, false)),
            None => {
                let hint = registry
                    .suggest(&n)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                eprintln!("error: no element class `{n}`{hint}");
                return Ok(ExitCode::from(2));
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn need_text(p: &ParamSpec) -> String {
    match p.need {
        Need::Required => "required".into(),
        Need::Optional => "optional".into(),
        Need::Default(d) => format!("default {d}"),
    }
}

/// The parameters of a class, each followed by its fields when it is a
/// table or an array of tables (`rules[].action`, `timeouts.udp`).
fn param_rows(params: &'static [ParamSpec]) -> Vec<(String, &'static ParamSpec)> {
    let mut rows = Vec::new();
    for p in params {
        rows.push((p.name.to_string(), p));
        let (fields, sep) = match p.ty {
            ParamType::Table(f) => (f, "."),
            ParamType::List(ParamType::Table(f)) => (*f, "[]."),
            _ => continue,
        };
        for f in fields {
            rows.push((format!("{}{sep}{}", p.name, f.name), f));
        }
    }
    rows
}

/// A class's signature, Click style: `Tee(outputs?)`.
fn signature(info: &ClassInfo) -> String {
    let params: Vec<String> = info
        .params
        .iter()
        .map(|p| match p.need {
            Need::Required => p.name.to_string(),
            _ => format!("{}?", p.name),
        })
        .collect();
    format!("{}({})", info.name, params.join(", "))
}

/// One class's manual page, as text for the terminal or as Markdown.
pub fn class_page(info: &ClassInfo, markdown: bool) -> String {
    let mut s = String::new();
    let h = |s: &mut String, title: &str| {
        if markdown {
            let _ = writeln!(s, "\n**{title}**\n");
        } else {
            let _ = writeln!(s, "\n{}", title.to_uppercase());
        }
    };
    if markdown {
        let _ = writeln!(
            s,
            "## {}\n\n`{}`: {}",
            info.name,
            signature(info),
            info.summary
        );
    } else {
        let _ = writeln!(s, "{}: {}", signature(info), info.summary);
    }
    h(&mut s, "Description");
    let _ = writeln!(s, "{}", info.description.trim());
    h(&mut s, "Ports");
    let bullet = if markdown { "- " } else { "  " };
    let _ = writeln!(s, "{bullet}inputs: {}", info.inputs.describe());
    let _ = writeln!(s, "{bullet}outputs: {}", info.outputs.describe());
    if !info.params.is_empty() {
        h(&mut s, "Parameters");
        if markdown {
            let _ = writeln!(s, "| name | type | need | description |\n|---|---|---|---|");
        }
        let rows = param_rows(info.params);
        let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(14);
        for (name, p) in rows {
            if markdown {
                let _ = writeln!(
                    s,
                    "| `{}` | {} | {} | {} |",
                    name,
                    p.ty.short(),
                    need_text(p),
                    p.doc
                );
            } else {
                let _ = writeln!(
                    s,
                    "  {:<width$} {:<10} {:<16} {}",
                    name,
                    p.ty.short(),
                    need_text(p),
                    p.doc
                );
            }
        }
    }
    h(&mut s, "Counters");
    counter_rows(&mut s, info, bullet);
    if !info.handlers.is_empty() {
        h(&mut s, "Handlers");
        handler_rows(&mut s, info, markdown);
    }
    h(&mut s, "Example");
    if markdown {
        let _ = writeln!(s, "```toml\n{}\n```", info.example.trim());
    } else {
        for line in info.example.trim().lines() {
            let _ = writeln!(s, "  {line}");
        }
    }
    if !info.see_also.is_empty() {
        h(&mut s, "See also");
        let _ = writeln!(s, "{}", info.see_also.join(", "));
    }
    s
}

/// The drop reasons and counters of a class.
fn counter_rows(s: &mut String, info: &ClassInfo, bullet: &str) {
    let _ = writeln!(
        s,
        "{bullet}packets in, out and dropped (by reason) are kept for every element"
    );
    for r in info.drop_reasons {
        let _ = writeln!(s, "{bullet}drop reason `{r}`");
    }
    for (name, doc) in info.counters {
        let _ = writeln!(s, "{bullet}`{name}`: {doc}");
    }
}

/// The handlers of a class (`hpio-nf ctl read|write ELEMENT NAME`).
fn handler_rows(s: &mut String, info: &ClassInfo, markdown: bool) {
    let kind = |k: HandlerKind| match k {
        HandlerKind::Read => "read",
        HandlerKind::Write => "write",
    };
    if markdown {
        let _ = writeln!(
            s,
            "`hpio-nf ctl read|write ELEMENT NAME [ARG]` (docs/control.md)\n\n\
             | name | kind | argument | description |\n|---|---|---|---|"
        );
    }
    let width = info
        .handlers
        .iter()
        .map(|h| h.name.len())
        .max()
        .unwrap_or(0);
    for hd in info.handlers {
        let arg = if hd.arg.is_empty() { "-" } else { hd.arg };
        if markdown {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} |",
                hd.name,
                kind(hd.kind),
                arg.replace('|', "\\|"),
                hd.doc
            );
        } else {
            let _ = writeln!(
                s,
                "  {:<width$} {:<5} {:<20} {}",
                hd.name,
                kind(hd.kind),
                arg,
                hd.doc
            );
        }
    }
}

fn port_page(class: &PortClass) -> String {
    let mut s = format!("### `{}`\n\n{}\n\n", class.name, class.summary);
    if !class.params.is_empty() {
        s.push_str("| name | type | need | description |\n|---|---|---|---|\n");
        for p in class.params {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} |",
                p.name,
                p.ty.short(),
                need_text(p),
                p.doc
            );
        }
    }
    s
}

/// The whole manual (docs/elements.md).
pub fn manual_markdown(registry: &Registry, ports: &PortRegistry) -> String {
    let mut s = String::from(
        "# Element and port reference\n\n\
         Generated by `hpio-nf elements --markdown` from the classes' own declarations; \
         a test fails when this file is out of date.\n\n",
    );
    for c in registry.classes() {
        let _ = writeln!(
            s,
            "- [{}](#{}): {}",
            c.info.name,
            c.info.name.to_lowercase(),
            c.info.summary
        );
    }
    s.push('\n');
    for c in registry.classes() {
        s.push_str(&class_page(&c.info, true));
        s.push('\n');
    }
    s.push_str("# Port drivers\n\n");
    for p in ports.classes() {
        s.push_str(&port_page(p));
        s.push('\n');
    }
    s
}
