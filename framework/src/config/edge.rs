//! Edges written as in a connection, for taps: `br[1]`, `fw[0] -> outside`,
//! `left` (`left ->`, `left rx`: what port `left` receives), `-> right`
//! (`right tx`: what is sent on port `right`).

use super::connection::{parse_path, Endpoint};
use crate::graph::{Edge, EdgeEnd};

/// Parses an edge; the error shows the text with a caret under the fault.
/// Names are checked against a graph later ([`crate::graph::Graph::resolve`]).
pub fn parse_edge(text: &str) -> Result<Edge, String> {
    let fail = |at: usize, message: &str| {
        let caret = " ".repeat(text[..at.min(text.len())].chars().count());
        Err(format!("edge `{text}`: {message}\n  {text}\n  {caret}^"))
    };
    let body = text.trim_end();
    let (body, side) = match body.rsplit_once(char::is_whitespace) {
        Some((rest, w @ ("rx" | "tx"))) => (rest, Some(w)),
        _ => (body, None),
    };
    let lead = body.len() - body.trim_start().len();
    let (body, arrow_in, arrow_out) = {
        let t = body.trim();
        let arrow_in = t.starts_with("->");
        let t = t.strip_prefix("->").unwrap_or(t);
        let arrow_out = t.trim_end().ends_with("->");
        let t = t.trim_end().strip_suffix("->").unwrap_or(t);
        (t, arrow_in, arrow_out)
    };
    let offset = lead + if arrow_in { 2 } else { 0 };
    let path = match parse_path(body) {
        Ok(p) => p,
        Err(e) => return fail(offset + e.at.start, &e.message),
    };
    let at = |e: &Endpoint| offset + e.at.start;
    let end = |e: &Endpoint, i: &Option<(usize, std::ops::Range<usize>)>| EdgeEnd {
        name: e.name.clone(),
        index: i.as_ref().map(|x| x.0),
    };
    let one = match path.as_slice() {
        [e] => e,
        [a, b] if side.is_none() && !arrow_in && !arrow_out => {
            if a.input.is_some() {
                return fail(at(a), "an edge starts at an output: `a[0] -> b`");
            }
            if b.output.is_some() {
                return fail(at(b), "an edge ends at an input: `a[0] -> [1]b`");
            }
            return Ok(Edge {
                from: Some(end(a, &a.output)),
                to: Some(end(b, &b.input)),
            });
        }
        [_, b, ..] => {
            return fail(
                at(b),
                "an edge is one hop: `a[0] -> b`, a port, or `-> port`",
            )
        }
        [] => return fail(0, "empty edge"),
    };
    let into = arrow_in || side == Some("tx");
    if (arrow_in && (arrow_out || side.is_some())) || (arrow_out && side == Some("tx")) {
        return fail(
            at(one),
            "write `port rx` (or `port ->`) or `port tx` (or `-> port`)",
        );
    }
    if into {
        if one.output.is_some() {
            return fail(at(one), "a transmit side has no output number");
        }
        return Ok(Edge {
            from: None,
            to: Some(end(one, &one.input)),
        });
    }
    if one.input.is_some() {
        return fail(
            at(one),
            "an element's input: tap the output that feeds it (`x[0] -> [1]y`)",
        );
    }
    Ok(Edge {
        from: Some(end(one, &one.output)),
        to: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(from: Option<(&str, Option<usize>)>, to: Option<(&str, Option<usize>)>) -> Edge {
        let end = |(n, i): (&str, Option<usize>)| EdgeEnd {
            name: n.into(),
            index: i,
        };
        Edge {
            from: from.map(end),
            to: to.map(end),
        }
    }

    #[test]
    fn reads_outputs_ports_and_sides() {
        for (text, want) in [
            ("br[1]", e(Some(("br", Some(1))), None)),
            (
                " fw[0] -> outside ",
                e(Some(("fw", Some(0))), Some(("outside", None))),
            ),
            (
                "fw[1]->[1]x",
                e(Some(("fw", Some(1))), Some(("x", Some(1)))),
            ),
            ("left", e(Some(("left", None)), None)),
            ("left ->", e(Some(("left", None)), None)),
            ("left rx", e(Some(("left", None)), None)),
            ("-> right", e(None, Some(("right", None)))),
            ("right tx", e(None, Some(("right", None)))),
        ] {
            assert_eq!(parse_edge(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn errors_point_at_the_fault() {
        for (text, msg, caret) in [
            ("a -> b -> c", "one hop", "     ^"),
            ("[1]fw", "an element's input", "^"),
            ("a[x]", "expected an output number", "  ^"),
            ("-> a rx", "write `port rx`", "   ^"),
            ("", "empty", "^"),
        ] {
            let err = parse_edge(text).unwrap_err();
            assert!(err.contains(msg), "{text:?}: {err}");
            assert!(err.ends_with(&format!("\n  {caret}")), "{text:?}: {err}");
        }
    }
}
