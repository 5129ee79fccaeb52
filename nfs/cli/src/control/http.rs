//! The HTTP plumbing the control server and its client share: errors as
//! JSON answers, percent-encoding, reading a response.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use hpio_nf::runtime::ControlError;
use serde_json::Value;

/// How long `ctl` waits for an answer (handlers answer within 5 s).
const TIMEOUT: Duration = Duration::from_secs(30);

/// A failed request: its HTTP status and the message for `{"error": ...}`.
#[derive(Debug)]
pub(super) struct Failure {
    pub status: u16,
    pub message: String,
}

impl Failure {
    pub(super) fn new(status: u16, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Failure {
        let status = match e {
            ControlError::NoElement { .. } | ControlError::NoHandler { .. } => 404,
            ControlError::Handler { .. } | ControlError::Request(_) => 400,
            ControlError::NotRunning(_) => 503,
            ControlError::Timeout(..) => 504,
        };
        Failure::new(status, e.to_string())
    }
}

/// `%XX` escapes of a path segment decoded (names with odd characters).
pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Answers `rq` with `value` as JSON.
pub(super) fn respond(rq: tiny_http::Request, status: u16, value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    let header =
        tiny_http::Header::from_bytes("Content-Type", "application/json").expect("a valid header");
    let response = tiny_http::Response::from_string(text)
        .with_status_code(status)
        .with_header(header);
    if let Err(e) = rq.respond(response) {
        log::debug!("control socket: answering: {e}");
    }
}

/// `s` percent-encoded (for a path segment or a query value).
pub(super) fn escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out += &format!("%{b:02X}");
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
    request_within(socket, method, target, body, TIMEOUT)
}

/// [`request`], waiting up to `timeout` for the answer.
pub(super) fn request_within(
    socket: &Path,
    method: &str,
    target: &str,
    body: &str,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to {} (is `hpio-nf run` serving it?)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(timeout))?;
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
    let Some((status, head_len, headers)) = parse_head(raw)? else {
        bail!("the answer ended inside its headers");
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
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

/// The status, head length and headers of a response, once its head is
/// complete (`None` before).
#[allow(clippy::type_complexity)]
pub(super) fn parse_head(
    raw: &[u8],
) -> anyhow::Result<Option<(u16, usize, Vec<(String, String)>)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw).context("the answer is not HTTP")? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let status = resp.code.context("the answer has no status")?;
    let headers = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    Ok(Some((status, head_len, headers)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("fw"), "fw");
        assert_eq!(percent_decode("bad%zz%"), "bad%zz%");
    }

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
}
