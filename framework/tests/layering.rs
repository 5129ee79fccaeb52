//! The layering check: `framework/src`'s top-level modules depend only on the
//! modules below them in [`LAYERS`], and no two source files of the workspace's
//! crates import each other (directly or round a longer cycle).
//!
//! It reads the sources, not the compiler's view: every `crate::m` and
//! `super::m` path outside comments and test code counts as a dependency.
//! The order is also the one framework/src/lib.rs's doc comment and
//! docs/architecture.md's layer table state: a test compares them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

mod common;
use common::{is_test_file, rust_files};

/// framework/src's top-level modules, lowest first: each may use only those
/// before it. `testing` (a test kit with no dependencies) and `prelude` (the
/// re-exports in lib.rs) stand outside the order.
const LAYERS: &[&str] = &[
    "sys", "wire", "packet", "params", "element", "elements", "plugin", "port", "graph", "runtime",
    "config",
];

/// The code of `text`: comments removed, and everything from the first
/// `#[cfg(test)]` on (test modules sit at the end of a file here).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let code = match line.find("//") {
            // A `//` inside a string literal is rare in paths; good enough here.
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first path segments named after `prefix` (`crate::` or `super::`),
/// including each name of a `prefix{a, b::c}` group.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let id = ident_at(part.trim());
                if !id.is_empty() && id != "self" {
                    names.insert(id.to_string());
                }
            }
        } else {
            let id = ident_at(rest);
            if !id.is_empty() {
                names.insert(id.to_string());
            }
        }
    }
    names
}

/// Dependencies between framework/src's top-level modules, from non-test code.
fn layer_deps(root: &Path) -> BTreeSet<(String, String)> {
    let src = root.join("framework/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut deps = BTreeSet::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        if is_test_file(rel) {
            continue;
        }
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let from = top.trim_end_matches(".rs");
        if from == "lib" {
            continue;
        }
        let code = code_of(&fs::read_to_string(&f).unwrap());
        for to in names_after(&code, "crate::") {
            if to != from {
                deps.insert((from.to_string(), to));
            }
        }
    }
    deps
}

#[test]
fn framework_layers_depend_only_downwards() {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut violations = BTreeSet::new();
    for (from, to) in layer_deps(&testkit::workspace_root()) {
        if to == "testing" || to == "prelude" {
            continue;
        }
        let (Some(rf), Some(rt)) = (rank(&from), rank(&to)) else {
            panic!("module `{from}` or `{to}` is missing from LAYERS: place it in the order");
        };
        if rt > rf {
            violations.insert((from, to));
        }
    }
    assert!(
        violations.is_empty(),
        "layers that reach up (a lower module names a higher one; order: {LAYERS:?}): {violations:?}"
    );
}

/// The names in backticks of `text`, in order.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn lib_rs_and_the_architecture_doc_state_the_same_order() {
    let root = testkit::workspace_root();
    // lib.rs: the doc paragraph that starts with "Layers".
    let lib = fs::read_to_string(root.join("framework/src/lib.rs")).unwrap();
    let docs: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(str::trim)
        .collect();
    let start = docs
        .iter()
        .position(|l| l.starts_with("Layers"))
        .expect("lib.rs's doc has a paragraph starting with `Layers`");
    let paragraph: Vec<&str> = docs[start..]
        .iter()
        .take_while(|l| !l.is_empty())
        .copied()
        .collect();
    let in_lib: Vec<String> = backticked(&paragraph.join(" "))
        .into_iter()
        .filter(|n| LAYERS.contains(&n.as_str()))
        .collect();
    assert_eq!(in_lib, LAYERS, "the order in lib.rs's doc comment");
    // docs/architecture.md: the first column of the table under "## Layers".
    let arch = fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let section = arch
        .split("\n## ")
        .find(|s| s.starts_with("Layers"))
        .expect("docs/architecture.md has a `## Layers` section");
    let in_table: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(|s| s.to_string())
        .collect();
    assert_eq!(in_table, LAYERS, "the table in docs/architecture.md");
}

/// The file of module `name` in folder `dir_of_module`, if there is one.
fn module_file(dir_of_module: &Path, name: &str) -> Option<PathBuf> {
    let file = dir_of_module.join(format!("{name}.rs"));
    if file.is_file() {
        return Some(file);
    }
    let m = dir_of_module.join(name).join("mod.rs");
    m.is_file().then_some(m)
}

/// Import edges between the files of one crate's `src/`.
fn file_edges(crate_src: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut files = Vec::new();
    rust_files(crate_src, &mut files);
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(crate_src).unwrap();
        if is_test_file(rel) {
            continue;
        }
        let code = code_of(&fs::read_to_string(&f).unwrap());
        // The folder holding this file's own module and that of its parent module.
        let name = f.file_name().unwrap().to_str().unwrap();
        let own_dir = if name == "mod.rs" || name == "lib.rs" {
            f.parent().unwrap().to_path_buf()
        } else {
            f.with_extension("")
        };
        let parent_dir = if name == "mod.rs" {
            f.parent().unwrap().parent().unwrap().to_path_buf()
        } else {
            f.parent().unwrap().to_path_buf()
        };
        let mut targets = BTreeSet::new();
        for n in names_after(&code, "super::") {
            targets.extend(module_file(&parent_dir, &n));
        }
        for n in names_after(&code, "self::") {
            targets.extend(module_file(&own_dir, &n));
        }
        for n in names_after(&code, "crate::") {
            targets.extend(module_file(crate_src, &n));
        }
        targets.remove(&f);
        edges.insert(f, targets);
    }
    edges
}

/// Strongly connected components with more than one file (Tarjan's algorithm).
fn cycles(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct State<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        out: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a PathBuf) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(ws) = s.edges.get(v) {
            for w in ws {
                let Some((w, _)) = s.edges.get_key_value(w) else {
                    continue;
                };
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_two_source_files_import_each_other() {
    let root = testkit::workspace_root();
    let mut crates = vec![root.join("framework/src")];
    let mut nfs: Vec<_> = fs::read_dir(root.join("nfs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    nfs.sort();
    crates.extend(nfs);
    let mut found = BTreeSet::new();
    for src in crates {
        for comp in cycles(&file_edges(&src)) {
            let names: Vec<String> = comp
                .iter()
                .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
                .collect();
            found.insert(names);
        }
    }
    assert!(found.is_empty(), "files that import each other: {found:?}");
}

#[test]
fn the_scanner_sees_paths_groups_and_skips_comments() {
    let code = code_of(
        "use crate::wire::Headers;\n// use crate::runtime::x;\nuse super::{load, tree::Item, self};\nlet a = crate::port::x(); // crate::graph\n#[cfg(test)]\nuse crate::config;\n",
    );
    assert_eq!(
        names_after(&code, "crate::"),
        ["port", "wire"].iter().map(|s| s.to_string()).collect()
    );
    assert_eq!(
        names_after(&code, "super::"),
        ["load", "tree"].iter().map(|s| s.to_string()).collect()
    );
}
