//! An L2 learning bridge for hpio-nf: the `Bridge` element.
//!
//! The crate registers its element class through the public element API
//! only, exactly as a third-party plugin would:
//!
//! ```
//! let mut registry = hpio_nf::element::Registry::builtin();
//! hpio_nf_bridge::register(&mut registry);
//! assert!(registry.get("Bridge").is_some());
//! ```
#![deny(unsafe_code)]

mod bridge;

pub use bridge::CLASS as BRIDGE;

use hpio_nf::element::Registry;

/// Registers the bridge's element classes (`Bridge`) in `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(BRIDGE);
}
