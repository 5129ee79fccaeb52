//! Property tests of the config loader: arbitrary text, arbitrary TOML and
//! the shipped configs (configs/*.toml, configs/bench/*.toml) mutated at
//! random never panic the loader, and every error it gives has a position
//! (file, line >= 1, column >= 1) and a message.
//!
//! CI runs the case counts below from a fixed seed; `PROPTEST_CASES=100000`
//! (or `make fuzz`) runs more (testkit::prop).

use std::path::PathBuf;

use hpio_nf::config::Config;
use hpio_nf::element::Registry;
use hpio_nf::port::PortRegistry;
use proptest::prelude::*;

/// The classes the `hpio-nf` binary knows.
fn registry() -> Registry {
    let mut r = Registry::builtin();
    hpio_nf_firewall::register(&mut r);
    hpio_nf_bridge::register(&mut r);
    r
}

/// The shipped configs that load no plugin library, with their text.
fn shipped() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut out = Vec::new();
    for dir in [root.clone(), root.join("bench")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p.display().to_string(), text));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 10, "shipped configs not found: {out:?}");
    out
}

/// Loads `text`; on error, checks that each problem has a position.
fn check(text: &str, name: &str, reg: &Registry, ports: &PortRegistry) -> bool {
    match Config::parse_str(text, name, reg, ports, &[]) {
        Ok(_) => true,
        Err(errs) => {
            assert!(errs.iter().count() > 0, "an error without problems");
            for e in errs.iter() {
                assert!(
                    e.line >= 1 && e.col >= 1 && !e.message.is_empty() && e.file == name,
                    "error without a position for:\n{text}\n---\n{e:?}"
                );
            }
            false
        }
    }
}

/// Pieces of config syntax to splice in.
const TOKENS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "{",
    "}",
    "=",
    ",",
    "\n",
    " -> ",
    "->",
    "[0]",
    "[9]",
    "[-1]",
    "#",
    "0",
    "-1",
    "99999999999999999999",
    "1e400",
    "nan",
    "inf",
    "true",
    "\"\"",
    "\"x\"",
    "\u{0}",
    "\u{feff}",
    "é",
    "[elements.x]",
    "class = \"Nope\"",
    "[ports.p]",
    "driver = \"pcap\"",
    "connections = []",
    "connections = [\"a -> b\"]",
    "\"a -> [0]a[0] -> a\"",
    "rules = [{}]",
    "match = \"tcp and\"",
    "match = \"port 99999\"",
    "max_frame = 0",
    "max_frame = 1000000000",
    "[runtime]",
    "workers = 0",
    "workers = 100000",
    "burst = 0",
    "=\"\"",
    ".",
    "..",
    "a.b.c = 1",
];

fn mutation() -> impl Strategy<Value = (u8, prop::sample::Index, prop::sample::Index, usize)> {
    (
        0u8..5,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        0..TOKENS.len(),
    )
}

/// Applies one mutation to `t` (at char boundaries).
fn mutate(
    t: &str,
    (kind, a, b, tok): (u8, prop::sample::Index, prop::sample::Index, usize),
) -> String {
    let bounds: Vec<usize> = t.char_indices().map(|(i, _)| i).chain([t.len()]).collect();
    let (x, y) = (bounds[a.index(bounds.len())], bounds[b.index(bounds.len())]);
    let lo = x.min(y);
    // At most 40 bytes removed, ending on a character boundary.
    let hi = bounds
        .iter()
        .copied()
        .filter(|&i| i <= x.max(y).min(lo + 40))
        .max()
        .unwrap_or(lo);
    let lines: Vec<&str> = t.lines().collect();
    match kind {
        0 => format!("{}{}{}", &t[..lo], TOKENS[tok], &t[lo..]),
        1 => format!("{}{}", &t[..lo], &t[hi..]),
        2 => format!("{}{}{}", &t[..lo], TOKENS[tok], &t[hi..]),
        3 if !lines.is_empty() => {
            let i = a.index(lines.len());
            let mut l = lines.clone();
            l.insert(b.index(lines.len() + 1), lines[i]);
            l.join("\n")
        }
        _ => t[..lo].to_string(),
    }
}

proptest! {
    #![proptest_config(testkit::prop::config(512))]

    /// Any text at all.
    #[test]
    fn any_text_is_a_config_or_a_positioned_error(text in "\\PC{0,200}") {
        check(&text, "any.toml", &registry(), &PortRegistry::builtin());
    }

    /// Text made of config syntax, in any order.
    #[test]
    fn any_toml_like_text(toks in prop::collection::vec(0..TOKENS.len(), 0..40)) {
        let text: String = toks.iter().map(|&i| TOKENS[i]).collect::<Vec<_>>().join(" ");
        check(&text, "toml.toml", &registry(), &PortRegistry::builtin());
    }

    /// A shipped config with 1-4 mutations.
    #[test]
    fn mutated_shipped_configs(which in any::<prop::sample::Index>(),
                               muts in prop::collection::vec(mutation(), 1..5)) {
        let configs = shipped();
        let (name, text) = &configs[which.index(configs.len())];
        let mut t = text.clone();
        for m in muts {
            t = mutate(&t, m);
        }
        check(&t, name, &registry(), &PortRegistry::builtin());
    }
}

/// The shipped configs themselves load (so the mutations start from valid
/// configs, and an error above is the mutation's).
#[test]
fn shipped_configs_load() {
    let (reg, ports) = (registry(), PortRegistry::builtin());
    for (name, text) in shipped() {
        assert!(check(&text, &name, &reg, &ports), "{name} does not load");
    }
}
