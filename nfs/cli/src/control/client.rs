//! `hpio-nf ctl`: one HTTP request on a run's control socket, its answer
//! printed as text (tables) or as the JSON it is.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use super::render::{stats_text, table, text};
use super::SOCKET_DIR;

/// How long `ctl` waits for an answer (handlers answer within 5 s).
const TIMEOUT: Duration = Duration::from_secs(30);

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
}

/// `hpio-nf ctl ...`: sends the request, prints the answer; fails with
/// the server's message.
pub(crate) fn cmd_ctl(args: &CtlArgs) -> anyhow::Result<ExitCode> {
    let socket = match (&args.socket, &args.name) {
        (Some(p), _) => p.clone(),
        (None, Some(n)) => Path::new(SOCKET_DIR).join(format!("{n}.sock")),
        (None, None) => only_socket(Path::new(SOCKET_DIR))?,
    };
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
        CtlCommand::Show { element } if answer.as_object().is_some_and(|m| m.is_empty()) => {
            format!("(`{element}` has no read handlers)\n")
        }
        CtlCommand::Write { .. } if answer.is_null() => "ok\n".into(),
        _ => text(&answer),
    };
    print!("{shown}");
    Ok(ExitCode::SUCCESS)
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
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else {
                out += &format!("%{b:02X}");
            }
        }
    }
    out
}

/// Sends `method target` with `body` on `socket` and returns the JSON
/// answer; an error with the server's message when it says no.
pub(crate) fn request(
    socket: &Path,
    method: &str,
    target: &str,
    body: &str,
) -> anyhow::Result<Value> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to {} (is `hpio-nf run` serving it?)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the answer from {}", socket.display()))?;
    let (status, body) = parse_response(&raw)?;
    let value: Value = serde_json::from_slice(body)
        .with_context(|| format!("the answer (HTTP {status}) is not JSON"))?;
    if status != 200 {
        match value.get("error").and_then(Value::as_str) {
            Some(e) => bail!("{e}"),
            None => bail!("HTTP {status}: {value}"),
        }
    }
    Ok(value)
}

/// The status and body of an HTTP response read to its end.
fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, &[u8])> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw).context("the answer is not HTTP")? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => bail!("the answer ended inside its headers"),
    };
    let status = resp.code.context("the answer has no status")?;
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        bail!("the answer is chunked, which ctl does not read");
    }
    let rest = &raw[head_len..];
    let body = match header("content-length") {
        Some(n) => {
            let n: usize = n.parse().context("a bad Content-Length")?;
            rest.get(..n)
                .with_context(|| format!("the answer ended after {} of {n} bytes", rest.len()))?
        }
        None => rest,
    };
    Ok((status, body))
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
    fn responses_are_parsed_by_content_length_or_to_the_end() {
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nX: y\r\n\r\n{}\r\nextra";
        let (status, body) = parse_response(raw).unwrap();
        assert_eq!((status, body), (404, &b"{}\r\n"[..]));
        let (_, body) = parse_response(b"HTTP/1.1 200 OK\r\n\r\n[1]").unwrap();
        assert_eq!(body, b"[1]");
        let e = parse_response(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap_err();
        assert!(e.to_string().contains("inside its headers"), "{e}");
        let e = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").unwrap_err();
        assert!(e.to_string().contains("after 2 of 9"), "{e}");
    }

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
