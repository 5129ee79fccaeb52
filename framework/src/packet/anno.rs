//! Which annotation word ([`super::Packet::anno`]) each built-in element
//! writes, in one place so that two elements never take the same word by
//! accident. Plugins may use any word no element of their graph uses.

/// Paint's colour (`Paint` writes it, `PaintSwitch` reads it).
pub const PAINT: usize = 0;
/// Policer's colour: green, yellow or red (`elements::policer`).
pub const COLOR: usize = 1;
/// IpLookup's next hop: an IPv4 address in this word, or an IPv6
/// link-local interface identifier in this word and the next
/// (`elements::route`). Read by ArpQuerier and NdQuerier.
pub const NEXT_HOP: usize = 2;
