//! Property test of plugin descriptors: a descriptor with any of its bytes
//! changed (magic, layout, size, flags, the framework build, the compiler;
//! non-UTF-8 included) is refused, with an error naming the library, and
//! only the exact descriptor of this build is accepted. (Whole libraries
//! with corrupt descriptors are built and refused in tests/plugin_abi.rs.)
//!
//! CI runs the case count below from a fixed seed; `PROPTEST_CASES=100000`
//! runs more (testkit::prop).

use proptest::prelude::*;

use super::check;
use crate::sys::plugin_abi::PluginDescriptor;

/// Where each mutation lands: (field, index in it, new byte).
fn mutation() -> impl Strategy<Value = (u8, usize, u8)> {
    (0u8..6, 0usize..128, any::<u8>())
}

/// `word` with its byte `at` (mod 4) set to `v`; whether that changed it.
fn set_byte(word: &mut u32, at: usize, v: u8) -> bool {
    let mut b = word.to_ne_bytes();
    let changed = b[at % 4] != v;
    b[at % 4] = v;
    *word = u32::from_ne_bytes(b);
    changed
}

/// `d` with one byte changed; false when the byte was already that value.
fn mutate(d: &mut PluginDescriptor, (field, at, v): (u8, usize, u8)) -> bool {
    let slot: &mut u8 = match field {
        0 => &mut d.header.magic[at % 8],
        1 => return set_byte(&mut d.header.layout, at, v),
        2 => return set_byte(&mut d.header.size, at, v),
        3 => return set_byte(&mut d.flags, at, v),
        4 => &mut d.framework[at % 64],
        _ => &mut d.rustc[at % 128],
    };
    let changed = *slot != v;
    *slot = v;
    changed
}

/// What the loader does with a descriptor it has read: the header check
/// (`Library::descriptor`), then [`check`].
fn accepted(d: &PluginDescriptor) -> Result<(), String> {
    if !d.header.is_current() {
        return Err(format!("header: magic ok {}", d.header.has_magic()));
    }
    check("/x/libcorrupt.so", d)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(testkit::prop::config(1024))]

    #[test]
    fn any_changed_descriptor_is_refused(muts in prop::collection::vec(mutation(), 1..4)) {
        let mut d = PluginDescriptor::current();
        let mut changed = false;
        for m in muts {
            changed |= mutate(&mut d, m);
        }
        let same = d.header.magic == PluginDescriptor::current().header.magic
            && d.header.layout == PluginDescriptor::current().header.layout
            && d.header.size == PluginDescriptor::current().header.size
            && d.flags == PluginDescriptor::current().flags
            && d.framework == PluginDescriptor::current().framework
            && d.rustc == PluginDescriptor::current().rustc;
        match accepted(&d) {
            Ok(()) => prop_assert!(same, "a changed descriptor was accepted: {:?}", d),
            Err(e) => {
                prop_assert!(changed && !same, "the current descriptor was refused: {}", e);
                prop_assert!(e.starts_with("header") || e.contains("/x/libcorrupt.so"), "{}", e);
                // Reading its strings never panics, whatever the bytes.
                let _ = (d.framework(), d.rustc(), format!("{d:?}"));
            }
        }
    }
}

#[test]
fn the_current_descriptor_is_accepted() {
    assert_eq!(accepted(&PluginDescriptor::current()), Ok(()));
}
