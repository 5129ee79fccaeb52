//! Loading libraries that are not (compatible) plugins: each is refused
//! with its own message before any of its Rust functions is called.
//!
//! The libraries are tiny `cdylib`s compiled here with `rustc` from a
//! source that exports a hand-made descriptor, so that every field can be
//! wrong in turn (a real plugin of another framework or compiler would need
//! that other framework or compiler). Loading real plugins is tested by the
//! `hpio-nf` integration tests (nfs/cli/tests/plugins.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use hpio_nf::element::Registry;
use hpio_nf::plugin::{self, PluginError, FRAMEWORK_BUILD, RUSTC_VERSION};

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("hpio-nf-abi-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the fake library exports.
struct Fake<'a> {
    magic: &'a [u8; 8],
    layout: u32,
    size: u32,
    flags: u32,
    framework: &'a str,
    rustc: &'a str,
    entry: bool,
}

impl Default for Fake<'_> {
    fn default() -> Self {
        Fake {
            magic: b"HPIO-NF\0",
            layout: 1,
            size: 16 + 4 + 64 + 128,
            flags: u32::from(cfg!(panic = "unwind")),
            framework: FRAMEWORK_BUILD,
            rustc: RUSTC_VERSION,
            entry: false,
        }
    }
}

fn padded(s: &str, n: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b.resize(n, 0);
    format!("{b:?}")
}

/// Compiles `fake` as `lib<name>.so` in `dir` (with a descriptor unless `descriptor` is false).
fn build(dir: &Path, name: &str, fake: &Fake, descriptor: bool) -> PathBuf {
    let mut src = String::from(
        "#[repr(C)]\npub struct D { magic: [u8; 8], layout: u32, size: u32, flags: u32, framework: [u8; 64], rustc: [u8; 128] }\n",
    );
    if descriptor {
        src += &format!(
            "#[unsafe(no_mangle)]\npub static HPIO_NF_PLUGIN_{name}: D = D {{ magic: {:?}, layout: {}, size: {}, flags: {}, framework: {}, rustc: {} }};\n",
            fake.magic,
            fake.layout,
            fake.size,
            fake.flags,
            padded(fake.framework, 64),
            padded(fake.rustc, 128),
        );
    }
    if fake.entry {
        // Never called: the tests that have one refuse the library first.
        src += &format!("#[unsafe(no_mangle)]\npub fn hpio_nf_plugin_entry_{name}() {{ std::process::abort() }}\n");
    }
    let rs = dir.join(format!("{name}.rs"));
    std::fs::write(&rs, src).unwrap();
    let lib = dir.join(format!("lib{name}{}", std::env::consts::DLL_SUFFIX));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "cdylib",
            "--crate-name",
            name,
            "-o",
        ])
        .arg(&lib)
        .arg(&rs)
        .output()
        .expect("run rustc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

fn refused(lib: &Path) -> PluginError {
    let mut r = Registry::builtin();
    let before: Vec<&str> = r.classes().map(|c| c.info.name).collect();
    let e = plugin::load(lib, &mut r).expect_err("refused");
    let after: Vec<&str> = r.classes().map(|c| c.info.name).collect();
    assert_eq!(before, after, "the registry is unchanged");
    e
}

#[test]
fn libraries_that_do_not_match_are_refused_before_anything_is_called() {
    let dir = Scratch::new("refusals");
    let d = &dir.0;

    let e = refused(&build(d, "no_descriptor", &Fake::default(), false));
    assert!(matches!(e, PluginError::NotAPlugin { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("is not an hpio-nf plugin: it does not export `HPIO_NF_PLUGIN_no_descriptor`"),
        "{msg}"
    );

    let other = Fake {
        framework: "0.0.1+src.0123456789abcdef",
        entry: true,
        ..Fake::default()
    };
    let e = refused(&build(d, "other_framework", &other, true));
    let msg = e.to_string();
    assert!(matches!(e, PluginError::Framework { .. }), "{msg}");
    assert!(
        msg.contains("built against hpio-nf 0.0.1+src.0123456789abcdef"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("this program uses hpio-nf {FRAMEWORK_BUILD}")),
        "{msg}"
    );

    let old = Fake {
        rustc: "rustc 1.70.0 (90c541806 2023-05-31)",
        entry: true,
        ..Fake::default()
    };
    let msg = refused(&build(d, "other_rustc", &old, true)).to_string();
    assert!(
        msg.contains("was built by rustc 1.70.0 (90c541806 2023-05-31)"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("this program was built by {RUSTC_VERSION}")),
        "{msg}"
    );

    let abort = Fake {
        flags: 0,
        entry: true,
        ..Fake::default()
    };
    let msg = refused(&build(d, "aborts", &abort, true)).to_string();
    assert!(msg.contains("panic = \"abort\""), "{msg}");

    let future = Fake {
        layout: 2,
        size: 1000,
        entry: true,
        ..Fake::default()
    };
    let e = refused(&build(d, "future_layout", &future, true));
    assert!(matches!(e, PluginError::Layout { layout: 2, .. }), "{e}");

    let junk = Fake {
        magic: b"NOTHPIO\0",
        entry: true,
        ..Fake::default()
    };
    let e = refused(&build(d, "junk", &junk, true));
    assert!(matches!(e, PluginError::BadDescriptor { .. }), "{e}");

    // A matching descriptor without its entry point.
    let e = refused(&build(d, "no_entry", &Fake::default(), true));
    let msg = e.to_string();
    assert!(matches!(e, PluginError::NoEntry { .. }), "{msg}");
    assert!(msg.contains("`hpio_nf_plugin_entry_no_entry`"), "{msg}");
}

#[test]
fn a_renamed_library_is_not_recognised() {
    let dir = Scratch::new("renamed");
    let lib = build(&dir.0, "real_name", &Fake::default(), true);
    let renamed = dir
        .0
        .join(format!("libother{}", std::env::consts::DLL_SUFFIX));
    std::fs::copy(&lib, &renamed).unwrap();
    let msg = refused(&renamed).to_string();
    assert!(
        msg.contains("does not export `HPIO_NF_PLUGIN_other`"),
        "{msg}"
    );
    assert!(msg.contains("keeps the file name cargo gives it"), "{msg}");
}
