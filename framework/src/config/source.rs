//! Config sources (the file and each `--set` override), byte spans into
//! them, and errors rendered with file, line, column and the offending text.

use std::fmt;

/// A byte range in one of the [`Sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Span {
    /// Index of the source (0: the file; then one per override).
    pub src: usize,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// Bytes `start..end` of source `src`.
    pub fn new(src: usize, start: usize, end: usize) -> Span {
        Span { src, start, end }
    }
}

/// One text the config was read from.
struct Source {
    name: String,
    text: String,
    line_starts: Vec<usize>,
}

/// All texts of one config load.
pub(crate) struct Sources {
    list: Vec<Source>,
}

impl Sources {
    /// No sources yet.
    pub fn new() -> Sources {
        Sources { list: Vec::new() }
    }

    /// Adds a source and returns its index.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> usize {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        self.list.push(Source {
            name: name.into(),
            text,
            line_starts,
        });
        self.list.len() - 1
    }

    /// The text of source `src`.
    pub fn text(&self, src: usize) -> &str {
        &self.list[src].text
    }

    /// The text a span covers (empty when it is out of range).
    #[cfg(test)]
    pub fn slice(&self, span: Span) -> &str {
        self.text(span.src).get(span.start..span.end).unwrap_or("")
    }

    /// 1-based line and column (in characters) of the span's start.
    pub fn line_col(&self, span: Span) -> (usize, usize) {
        let s = &self.list[span.src];
        let start = floor_char(&s.text, span.start);
        let line = s.line_starts.partition_point(|&l| l <= start) - 1;
        let col = s.text[s.line_starts[line]..start].chars().count() + 1;
        (line + 1, col)
    }

    /// `file:line:col` of a span, for messages that refer to another place.
    pub fn place(&self, span: Span) -> String {
        let (l, c) = self.line_col(span);
        format!("{}:{l}:{c}", self.list[span.src].name)
    }

    /// Renders a diagnostic against its source.
    pub fn render(&self, d: &Diag) -> ConfigError {
        let s = &self.list[d.span.src];
        let (line, col) = self.line_col(d.span);
        let start = floor_char(&s.text, d.span.start);
        let line_start = s.line_starts[line - 1];
        let line_end = s.text[line_start..]
            .find('\n')
            .map_or(s.text.len(), |i| line_start + i);
        let text = s.text[line_start..line_end].trim_end_matches('\r');
        let end = floor_char(&s.text, d.span.end.min(line_start + text.len()).max(start));
        let width = s.text[start..end].chars().count().max(1);
        // Keep tabs in the pad so the carets line up under the text.
        let pad: String = s.text[line_start..start]
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let gutter = line.to_string().len() + 1;
        let snippet = format!(
            "{blank}|\n{line:>gutter$} | {text}\n{blank}| {pad}{carets}",
            blank = " ".repeat(gutter + 1),
            carets = "^".repeat(width),
        );
        ConfigError {
            file: s.name.clone(),
            line,
            col,
            message: d.message.clone(),
            snippet,
            help: d.help.clone(),
        }
    }
}

fn floor_char(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A problem found while loading, before it is rendered.
#[derive(Debug, Clone)]
pub(crate) struct Diag {
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

impl Diag {
    /// A problem at `span`.
    pub fn new(span: Span, message: impl Into<String>) -> Diag {
        Diag {
            span,
            message: message.into(),
            help: None,
        }
    }

    /// Adds a `= help:` line.
    pub fn help(mut self, help: impl Into<String>) -> Diag {
        self.help = Some(help.into());
        self
    }
}

/// One problem in a config, with where it is and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File name (or `<override N>` for the N-th override).
    pub file: String,
    /// 1-based line; 0 when the problem has no position (an unreadable file).
    pub line: usize,
    /// 1-based column, in characters; 0 when there is no position.
    pub col: usize,
    /// What is wrong and what was expected.
    pub message: String,
    /// The source line with carets under the offending text (empty without a position).
    pub snippet: String,
    /// A hint on how to fix it.
    pub help: Option<String>,
}

impl ConfigError {
    /// A problem with the file as a whole (no line or column).
    pub fn whole_file(file: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.into(),
            line: 0,
            col: 0,
            message: message.into(),
            snippet: String::new(),
            help: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        if self.line == 0 {
            write!(f, "  --> {}", self.file)?;
        } else {
            let gutter = self.line.to_string().len() + 1;
            write!(
                f,
                "{:gutter$}--> {}:{}:{}\n{}",
                "", self.file, self.line, self.col, self.snippet
            )?;
        }
        if let Some(h) = &self.help {
            let gutter = self.line.max(1).to_string().len() + 1;
            write!(f, "\n{:gutter$} = help: {h}", "")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a config (at least one), in the order they appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The problems.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }

    /// Renders and sorts diagnostics (by source, then position).
    pub(crate) fn from_diags(sources: &Sources, mut diags: Vec<Diag>) -> ConfigErrors {
        diags.sort_by_key(|d| d.span);
        ConfigErrors(diags.iter().map(|d| sources.render(d)).collect())
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n\nerror: {} problems in the config", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![e])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc() {
        let mut s = Sources::new();
        let text = "[elements.cls]\n\nclass = \"Clasify\"\n";
        s.add("configs/x.toml", text);
        let at = text.find("\"Clasify\"").unwrap();
        let d = Diag::new(Span::new(0, at, at + 9), "unknown element class `Clasify`");
        let e = s.render(&d);
        assert_eq!((e.line, e.col), (3, 9));
        assert_eq!(
            e.to_string(),
            "error: unknown element class `Clasify`\n  --> configs/x.toml:3:9\n   |\n 3 | class = \"Clasify\"\n   |         ^^^^^^^^^"
        );
    }

    #[test]
    fn columns_count_characters_and_keep_tabs() {
        let mut s = Sources::new();
        let text = "a\n\t\"é\" = x\r\n";
        s.add("f", text);
        let at = text.find('x').unwrap();
        let e = s.render(&Diag::new(Span::new(0, at, at + 40), "m").help("h"));
        assert_eq!((e.line, e.col), (2, 8));
        assert_eq!(e.snippet, "   |\n 2 | \t\"é\" = x\n   | \t      ^");
        assert!(e.to_string().ends_with("\n   = help: h"));
    }

    #[test]
    fn spans_at_odd_places_do_not_panic() {
        let mut s = Sources::new();
        s.add("f", "a\rb\nc\n");
        let e = s.render(&Diag::new(Span::new(0, 2, 9), "m"));
        assert_eq!(
            (e.line, e.col, e.snippet.as_str()),
            (1, 3, "   |\n 1 | a\rb\n   |   ^")
        );
        let e = s.render(&Diag::new(Span::new(0, 99, 100), "m"));
        assert_eq!((e.line, e.col), (3, 1));
        let e = s.render(&Diag::new(Span::new(0, 1, 1), "m"));
        assert_eq!((e.line, e.col), (1, 2));
    }

    #[test]
    fn wide_line_numbers_widen_the_gutter() {
        let mut s = Sources::new();
        let text = "\n".repeat(11) + "bad";
        s.add("f", text.as_str());
        let e = s.render(&Diag::new(Span::new(0, 11, 14), "m"));
        assert_eq!(
            e.to_string(),
            "error: m\n   --> f:12:1\n    |\n 12 | bad\n    | ^^^"
        );
    }
}
