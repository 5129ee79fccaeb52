//! A stateful firewall for hpio-nf: the `Firewall` element.
//!
//! The firewall sits between an inside and an outside network (two inputs,
//! two outputs), passes or drops each packet by the first of an ordered list
//! of allow/deny rules written in the Classify rule language, and tracks TCP,
//! UDP and ICMP echo flows so that a rule can let in only the replies of
//! flows that were let out (`state = "established"`).
//!
//! It is built on the public element API only, exactly as a third-party
//! plugin would be: a program registers it next to the built-in classes.
//!
//! ```
//! let mut registry = hpio_nf::element::Registry::builtin();
//! hpio_nf_firewall::register(&mut registry);
//! assert!(registry.get("Firewall").is_some());
//! ```
//!
//! Layout: `tuple` reads a packet's flow (stateless), `conntrack` keeps the
//! flows (a fixed-capacity table per worker and the TCP state machine),
//! `rules` reads and compiles the rules, `frag` holds fragments until their
//! first one is judged, `counts` declares the drop reasons and counters,
//! `edit` answers the handlers (flows, rules and rule edits), `firewall` is
//! the element.
#![deny(unsafe_code)]

mod conntrack;
mod counts;
mod edit;
mod firewall;
mod frag;
#[cfg(test)]
mod prop_tests;
mod rules;
mod tuple;

pub use firewall::CLASS;

use hpio_nf::element::Registry;

/// Registers the firewall's element classes (`Firewall`) in `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(CLASS);
}
