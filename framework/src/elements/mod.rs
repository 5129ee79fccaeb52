//! The built-in element classes, one per file.

use crate::element::Registry;

pub use print::summarize;

pub mod classify;
mod counter;
mod discard;
mod ether_mirror;
mod forward;
pub mod nat44;
mod paint;
mod paint_switch;
pub mod policer;
mod print;
mod rewrite;
mod tee;

// Defined here, not in `element`, so that the element API does not name its
// built-ins (the layer below would reach up).
impl Registry {
    /// A registry holding the built-in classes.
    pub fn builtin() -> Registry {
        let mut r = Registry::empty();
        register_builtins(&mut r);
        r
    }
}

/// Adds every built-in class to `r`.
pub fn register_builtins(r: &mut Registry) {
    r.register(classify::CLASS);
    r.register(counter::CLASS);
    r.register(discard::CLASS);
    r.register(ether_mirror::CLASS);
    r.register(forward::CLASS);
    r.register(nat44::CLASS);
    r.register(paint::CLASS);
    r.register(paint_switch::CLASS);
    r.register(policer::CLASS);
    r.register(print::CLASS);
    r.register(tee::CLASS);
    r.register(rewrite::CLASS);
}
