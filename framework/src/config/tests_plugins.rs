//! The `plugins` key and panicking `configure`s: how the loader reports
//! them. Loading real plugin libraries is tested in `framework/tests/` and by
//! the `hpio-nf` integration tests.

use super::tests::{drivers, load, registry};
use super::tests_errors::{one, PORT_A};
use super::*;
use crate::element::{Context, Element, ElementClass, Inputs, Output};
use crate::packet::Batch;

#[derive(Clone)]
struct Nop;

impl Element for Nop {
    fn push(&mut self, _: &mut Context<'_>, _: usize, _: &mut Batch, _: &mut Output) {}
}

/// A scratch directory removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("hpio-nf-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const PASS_GRAPH: &str = "connections = [\"a -> p -> a\"]\n[ports.a]\ndriver = \"dummy\"\n[elements.p]\nclass = \"Pass\"\n";

#[test]
fn plugins_must_be_an_array_of_paths() {
    one(
        &format!("plugins = \"libx.so\"\n{PASS_GRAPH}"),
        1,
        11,
        "`plugins` must be an array of plugin library paths, found the string \"libx.so\"",
    );
    one(
        &format!("plugins = [3]\n{PASS_GRAPH}"),
        1,
        12,
        "a plugin must be the path of a library (a string), found the integer 3",
    );
}

#[test]
fn a_missing_library_is_reported_at_its_entry_with_the_resolved_path() {
    let text = format!("# plugins\nplugins = [\n  \"../lib/libnothing_here.so\",\n]\n{PASS_GRAPH}");
    let e = Config::parse_str(&text, "conf/t.toml", &registry(), &drivers(), &[]).unwrap_err();
    let e = &e.0[0];
    assert_eq!(
        (e.file.as_str(), e.line, e.col),
        ("conf/t.toml", 3, 3),
        "{e}"
    );
    assert!(
        e.message
            .starts_with("cannot load plugin `conf/../lib/libnothing_here.so`: "),
        "{e}"
    );
    assert!(e.message.contains("No such file"), "{e}");
    assert_eq!(
        e.help.as_deref(),
        Some("a relative plugin path is taken from the config's directory: conf/../lib/libnothing_here.so")
    );
}

#[test]
fn a_file_that_is_no_library_and_duplicates_are_refused() {
    let dir = Scratch::new("plugins-config");
    std::fs::write(dir.0.join("libnotes.so"), "plain text\n").unwrap();
    let conf = dir.0.join("t.toml");
    let text = format!("plugins = [\"libnotes.so\", \"./libnotes.so\"]\n{PASS_GRAPH}");
    let e = Config::parse_str(
        &text,
        &conf.display().to_string(),
        &registry(),
        &drivers(),
        &[],
    )
    .unwrap_err();
    let got: Vec<(usize, usize, &str)> = e
        .iter()
        .map(|e| (e.line, e.col, e.message.as_str()))
        .collect();
    assert_eq!(got.len(), 2, "{e}");
    assert_eq!((got[0].0, got[0].1), (1, 12));
    assert!(got[0].2.starts_with("cannot load plugin"), "{e}");
    assert_eq!((got[1].0, got[1].1), (1, 27));
    assert!(
        got[1]
            .2
            .starts_with("plugin `./libnotes.so` is listed twice (first at "),
        "{e}"
    );
    assert!(got[1].2.ends_with("t.toml:1:12)"), "{e}");
}

#[test]
fn no_plugins_key_loads_nothing() {
    let c = load(PASS_GRAPH).unwrap();
    assert!(c.plugins.is_empty());
    let c = load(&format!("plugins = []\n{PASS_GRAPH}")).unwrap();
    assert!(c.plugins.is_empty());
}

#[test]
fn a_panicking_configure_is_an_error_at_the_element() {
    const BOOM: ElementClass = ElementClass {
        info: crate::element::ClassInfo::bare("Boom"),
        configure: |_, _| {
            let table: Vec<u32> = Vec::new();
            Ok(Configured::cloning(
                Inputs::Fixed(table[1] as usize),
                1,
                Nop,
            ))
        },
    };
    let mut r = registry();
    r.register(BOOM);
    let text = format!("connections = [\"a -> b -> a\"]\n{PORT_A}[elements.b]\nclass = \"Boom\"\n");
    let e = Config::parse_str(&text, "t.toml", &r, &drivers(), &[]).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    let e = &e.0[0];
    assert_eq!((e.line, e.col), (4, 1));
    assert!(
        e.message.starts_with("class `Boom` panicked while configuring this element (a bug in the class): index out of bounds"),
        "{e}"
    );
    assert!(e.message.contains("tests_plugins.rs"), "the location: {e}");
    // The registry still works for everyone else.
    assert!(Config::parse_str(PASS_GRAPH, "t.toml", &r, &drivers(), &[]).is_ok());
}
