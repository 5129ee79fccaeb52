//! The Click-like connection syntax: `"left -> cls[0] -> [1] cnt -> right"`.
//!
//! A connection is endpoints joined by `->`. An endpoint is an optional input
//! number in brackets, a name, and an optional output number in brackets;
//! whitespace may go anywhere between them. Positions are byte offsets into
//! the string, so that errors can point inside it.

use std::ops::Range;

/// One endpoint of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `[n]` written before the name: the input the previous endpoint feeds.
    pub input: Option<(usize, Range<usize>)>,
    /// The element or port name.
    pub name: String,
    /// Where the name is.
    pub name_at: Range<usize>,
    /// `[n]` written after the name: the output that feeds the next endpoint.
    pub output: Option<(usize, Range<usize>)>,
    /// The whole endpoint.
    pub at: Range<usize>,
}

/// A syntax error in a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathError {
    /// Offending bytes (never empty unless the string is).
    pub at: Range<usize>,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Whether `s` is a valid element or port name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The message for a name that is not an identifier.
pub(crate) fn bad_name(name: &str) -> String {
    format!("invalid name `{name}`: names are letters, digits and `_`, not starting with a digit")
}

struct Scanner<'s> {
    s: &'s str,
    pos: usize,
}

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        let rest = &self.s[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    /// The range of the character at the current position (or the last one at the end).
    fn here(&self) -> Range<usize> {
        match self.peek() {
            Some(c) => self.pos..self.pos + c.len_utf8(),
            None => {
                let last = self.s.chars().next_back().map_or(0, char::len_utf8);
                self.s.len() - last..self.s.len()
            }
        }
    }

    fn err<T>(&self, at: Range<usize>, message: impl Into<String>) -> Result<T, PathError> {
        Err(PathError {
            at,
            message: message.into(),
        })
    }

    /// `[n]`, the scanner being on `[`.
    fn index(&mut self, what: &str) -> Result<(usize, Range<usize>), PathError> {
        let open = self.pos;
        self.pos += 1;
        self.skip_ws();
        let digits = self.s[self.pos..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(self.s.len() - self.pos);
        if digits == 0 {
            return self.err(self.here(), format!("expected an {what} number after `[`"));
        }
        let num = &self.s[self.pos..self.pos + digits];
        let Ok(n) = num.parse::<usize>() else {
            return self.err(
                self.pos..self.pos + digits,
                format!("{what} number too large"),
            );
        };
        self.pos += digits;
        self.skip_ws();
        if self.peek() != Some(']') {
            return self.err(
                self.here(),
                format!("expected `]` to close the {what} number"),
            );
        }
        self.pos += 1;
        Ok((n, open..self.pos))
    }

    fn endpoint(&mut self, after_arrow: bool) -> Result<Endpoint, PathError> {
        self.skip_ws();
        let start = self.pos;
        let input = if self.peek() == Some('[') {
            let i = self.index("input")?;
            self.skip_ws();
            Some(i)
        } else {
            None
        };
        let name_start = self.pos;
        let rest = &self.s[self.pos..];
        let len = rest
            .char_indices()
            .find(|&(i, c)| {
                c.is_whitespace() || c == '[' || c == ']' || rest[i..].starts_with("->")
            })
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 {
            let msg = match (self.peek(), after_arrow) {
                (None, true) => "expected an element or port name after `->`".to_string(),
                (None, false) => "expected an element or port name".to_string(),
                (Some(_), _) if self.s[self.pos..].starts_with("->") => {
                    let at = self.pos..self.pos + 2;
                    return self.err(at, "expected an element or port name before `->`");
                }
                (Some(c), _) => format!("expected an element or port name, found `{c}`"),
            };
            return self.err(self.here(), msg);
        }
        let name = &rest[..len];
        self.pos += len;
        if !is_ident(name) {
            return self.err(name_start..self.pos, bad_name(name));
        }
        let name_at = name_start..self.pos;
        self.skip_ws();
        let output = if self.peek() == Some('[') {
            Some(self.index("output")?)
        } else {
            None
        };
        let end = output.as_ref().map_or(name_at.end, |o| o.1.end);
        Ok(Endpoint {
            input,
            name: name.to_string(),
            name_at,
            output,
            at: start..end,
        })
    }
}

/// Parses one connection string into its endpoints (at least one).
pub(crate) fn parse_path(s: &str) -> Result<Vec<Endpoint>, PathError> {
    let mut sc = Scanner { s, pos: 0 };
    sc.skip_ws();
    if sc.peek().is_none() {
        return sc.err(0..s.len(), "empty connection; expected `a -> b`");
    }
    let mut out = vec![sc.endpoint(false)?];
    loop {
        sc.skip_ws();
        match sc.peek() {
            None => return Ok(out),
            Some(_) if s[sc.pos..].starts_with("->") => {
                sc.pos += 2;
                out.push(sc.endpoint(true)?);
            }
            Some(c) => {
                return sc.err(
                    sc.here(),
                    format!("expected `->` or the end of the connection, found `{c}`"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str, i: usize) -> (Option<usize>, String, Option<usize>) {
        let p = parse_path(s).unwrap();
        let e = &p[i];
        (
            e.input.as_ref().map(|x| x.0),
            e.name.clone(),
            e.output.as_ref().map(|x| x.0),
        )
    }

    #[test]
    fn parses_endpoints_with_indices_and_spaces() {
        let s = "left -> cls [1] -> [ 0 ]cnt[2]->right";
        let p = parse_path(s).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(ep(s, 0), (None, "left".into(), None));
        assert_eq!(ep(s, 1), (None, "cls".into(), Some(1)));
        assert_eq!(ep(s, 2), (Some(0), "cnt".into(), Some(2)));
        assert_eq!(ep(s, 3), (None, "right".into(), None));
        assert_eq!(&s[p[1].at.clone()], "cls [1]");
        assert_eq!(&s[p[1].output.clone().unwrap().1], "[1]");
        assert_eq!(&s[p[2].at.clone()], "[ 0 ]cnt[2]");
        assert_eq!(&s[p[2].name_at.clone()], "cnt");
        assert_eq!(parse_path("  a  ").unwrap().len(), 1);
    }

    #[test]
    fn reports_syntax_errors_where_they_are() {
        for (s, at, msg) in [
            ("", 0..0, "empty connection"),
            ("a -> ", 4..5, "after `->`"),
            ("a -> -> b", 5..7, "before `->`"),
            (
                "a b",
                2..3,
                "expected `->` or the end of the connection, found `b`",
            ),
            ("a[x] -> b", 2..3, "expected an output number after `[`"),
            ("a[1 -> b", 4..5, "expected `]` to close the output number"),
            ("a -> [] b", 6..7, "expected an input number"),
            ("a -> 9b", 5..7, "invalid name `9b`"),
            ("a -> b-c", 5..8, "invalid name `b-c`"),
            ("a -> ]", 5..6, "found `]`"),
            ("a[99999999999999999999999]", 2..25, "too large"),
        ] {
            let e = parse_path(s).unwrap_err();
            assert!(e.message.contains(msg), "{s:?}: {}", e.message);
            assert_eq!(e.at, at, "{s:?}: {}", e.message);
        }
    }

    #[test]
    fn identifiers() {
        assert!(is_ident("a_1") && is_ident("_x") && is_ident("Left"));
        assert!(!is_ident("") && !is_ident("1a") && !is_ident("a-b") && !is_ident("é"));
    }
}
