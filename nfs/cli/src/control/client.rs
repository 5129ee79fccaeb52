//! `hpio-nf ctl`: one HTTP request on a run's control socket, its answer
//! printed as text (tables) or as the JSON it is.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use super::http::{escape, request};
use super::render::{stats_text, table, text};
use super::{watch, SOCKET_DIR};

/// Arguments of `hpio-nf ctl`.
#[derive(clap::Args)]
pub(crate) struct CtlArgs {
    /// The control socket (default: the only `*.sock` in /run/hpio-nf).
    #[arg(long, value_name = "PATH", global = true)]
    socket: Option<PathBuf>,
    /// The run of config CONFIGNAME: /run/hpio-nf/CONFIGNAME.sock.
    #[arg(
        long,
        value_name = "CONFIGNAME",
        global = true,
        conflicts_with = "socket"
    )]
    name: Option<String>,
    /// Print the answer as the server's JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(clap::Subcommand)]
enum CtlCommand {
    /// The live report: ports, elements, workers and drops by reason, with
    /// rates since the previous `stats` (since the start the first time).
    Stats,
    /// The elements, their classes and handlers.
    Elements,
    /// Every read handler of ELEMENT.
    Show {
        /// Element name.
        element: String,
    },
    /// Read handler HANDLER of ELEMENT.
    Read {
        /// Element name.
        element: String,
        /// Handler name.
        handler: String,
    },
    /// Write handler HANDLER of ELEMENT, with ARG (words joined by spaces).
    Write {
        /// Element name.
        element: String,
        /// Handler name.
        handler: String,
        /// The argument (a rule, an index, a flow); after `--` when it
        /// starts with `-`.
        arg: Vec<String>,
    },
    /// Every port: link state and counters.
    Ports,
    /// One port: link state, counters and driver counters.
    Port {
        /// Port name.
        name: String,
    },
    /// Re-read the run's config (or load CONFIG instead) and swap it in,
    /// keeping element state; prints what was kept, added and removed, or
    /// the config's errors (the running graph is then untouched).
    Reload {
        /// The config to load instead of the running one's file.
        config: Option<PathBuf>,
    },
    /// Copies of the packets crossing an edge, as pcap (`-w -`) or a line
    /// per packet; the lost copies are counted on standard error at the end.
    Tap(watch::TapArgs),
    /// Follows the next packets through the graph: every element, the rule
    /// that decided, the output taken or the drop reason, the port.
    Trace(watch::TraceArgs),
}

/// `hpio-nf ctl ...`: sends the request, prints the answer; fails with
/// the server's message.
pub(crate) fn cmd_ctl(args: &CtlArgs) -> anyhow::Result<ExitCode> {
    let socket = match (&args.socket, &args.name) {
        (Some(p), _) => p.clone(),
        (None, Some(n)) => Path::new(SOCKET_DIR).join(format!("{n}.sock")),
        (None, None) => only_socket(Path::new(SOCKET_DIR))?,
    };
    match &args.command {
        CtlCommand::Tap(a) => return watch::tap(&socket, a),
        CtlCommand::Trace(a) => return watch::trace(&socket, a, args.json),
        _ => {}
    }
    let (method, target, body) = match &args.command {
        CtlCommand::Stats => ("GET", "/stats".to_string(), String::new()),
        CtlCommand::Elements => ("GET", "/elements".into(), String::new()),
        CtlCommand::Show { element } => ("GET", path(&["elements", element]), String::new()),
        CtlCommand::Read { element, handler } => {
            ("GET", path(&["elements", element, handler]), String::new())
        }
        CtlCommand::Write {
            element,
            handler,
            arg,
        } => ("POST", path(&["elements", element, handler]), arg.join(" ")),
        CtlCommand::Ports => ("GET", "/ports".into(), String::new()),
        CtlCommand::Port { name } => ("GET", path(&["ports", name]), String::new()),
        CtlCommand::Reload { config } => ("POST", "/reload".into(), reload_body(config)?),
        CtlCommand::Tap(_) | CtlCommand::Trace(_) => unreachable!("answered above"),
    };
    let answer = request(&socket, method, &target, &body)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let shown = match &args.command {
        CtlCommand::Stats => stats_text(&answer),
        CtlCommand::Elements => table(&elements_rows(&answer)),
        CtlCommand::Ports => table(&ports_rows(&answer)),
        CtlCommand::Reload { .. } => crate::reload::summary_text(&answer),
        CtlCommand::Show { element } if answer.as_object().is_some_and(|m| m.is_empty()) => {
            format!("(`{element}` has no read handlers)\n")
        }
        CtlCommand::Write { .. } if answer.is_null() => "ok\n".into(),
        _ => text(&answer),
    };
    print!("{shown}");
    Ok(ExitCode::SUCCESS)
}

/// The body of `POST /reload`: the config's absolute path (the server
/// runs elsewhere), or nothing.
fn reload_body(config: &Option<PathBuf>) -> anyhow::Result<String> {
    let Some(c) = config else {
        return Ok(String::new());
    };
    let abs = std::path::absolute(c).with_context(|| format!("config {}", c.display()))?;
    Ok(abs.display().to_string())
}

/// The one socket in `dir`, or an error listing what is there.
fn only_socket(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut socks: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sock"))
            .collect(),
        Err(_) => Vec::new(),
    };
    socks.sort();
    match socks.len() {
        1 => Ok(socks.remove(0)),
        0 => bail!(
            "no control socket in {} (is `hpio-nf run` running? give --socket PATH)",
            dir.display()
        ),
        _ => {
            let names: Vec<String> = socks
                .iter()
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect();
            bail!(
                "several runs serve {}: {}; choose one with --name CONFIGNAME or --socket PATH",
                dir.display(),
                names.join(", ")
            )
        }
    }
}

/// `/a/b/c` with each segment percent-encoded.
fn path(segments: &[&str]) -> String {
    let mut out = String::new();
    for s in segments {
        out.push('/');
        out += &escape(s);
    }
    out
}

/// `ctl elements` as rows: name, class, handlers.
fn elements_rows(v: &Value) -> Vec<Value> {
    let list = v.as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|e| {
            let names: Vec<String> = e["handlers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    let kind = if h["kind"] == "write" { " (w)" } else { "" };
                    format!("{}{kind}", h["name"].as_str().unwrap_or("?"))
                })
                .collect();
            json!({"element": e["name"], "class": e["class"], "handlers": names.join(", ")})
        })
        .collect()
}

/// `ctl ports` as rows: link state and the main counters.
fn ports_rows(v: &Value) -> Vec<Value> {
    let list = v.as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|p| {
            json!({
                "port": p["name"], "driver": p["driver"], "interface": p["interface"],
                "operstate": p["operstate"], "carrier": p["carrier"],
                "rx_packets": p["rx"]["packets"], "rx_drops": p["rx"]["drops"],
                "tx_packets": p["tx"]["packets"], "tx_drops": p["tx"]["drops"],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path(&["elements", "fw", "rules"]), "/elements/fw/rules");
        assert_eq!(path(&["elements", "a b/c"]), "/elements/a%20b%2Fc");
    }

    #[test]
    fn the_default_socket_is_the_only_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = only_socket(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no control socket"), "{e}");
        std::fs::write(dir.path().join("a.sock"), "").unwrap();
        assert_eq!(only_socket(dir.path()).unwrap(), dir.path().join("a.sock"));
        std::fs::write(dir.path().join("b.sock"), "").unwrap();
        let e = only_socket(dir.path()).unwrap_err().to_string();
        assert!(e.contains("a, b; choose one with --name"), "{e}");
    }
}
