//! The built-in element classes, one per file.

use crate::element::Registry;

pub use print::summarize;

pub mod classify;
mod counter;
mod dec_ip_ttl;
mod discard;
mod ether_mirror;
mod forward;
mod icmp_echo_responder;
mod icmp_error;
mod ip_lookup;
pub mod nat44;
pub mod neighbor;
mod paint;
mod paint_switch;
pub mod policer;
mod print;
mod rewrite;
pub mod route;
mod tee;
#[cfg(test)]
mod tests_router;

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
    r.register(ip_lookup::CLASS);
    r.register(dec_ip_ttl::CLASS);
    r.register(icmp_error::CLASS);
    r.register(icmp_echo_responder::CLASS);
    r.register(neighbor::arp_responder::CLASS);
    r.register(neighbor::arp_querier::CLASS);
    r.register(neighbor::nd_responder::CLASS);
    r.register(neighbor::nd_querier::CLASS);
}
