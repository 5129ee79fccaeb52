//! What a hot reload keeps of `IpLookup`'s routes.
//!
//! The rule: a route added, replaced or removed at run time (the `add` and
//! `remove` handlers) survives a reload unless the new configuration changes
//! that same prefix, that is, unless the new configuration's route for the
//! prefix (or its absence) differs from the old configuration's. Editing the
//! config file for other prefixes keeps every run-time change; an edited
//! prefix takes the new file's word. [`RouteLog`] holds both sides: the
//! configured routes (shared by the replicas) and the run-time changes.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use super::Route;

/// A prefix: its address (host bits cleared) and length.
pub type RouteKey = (IpAddr, u8);
/// Where a route sends packets: its output and next hop.
pub type Target = (u16, Option<IpAddr>);

/// The key of `prefix/len`, host bits cleared.
pub fn route_key(prefix: IpAddr, len: u8) -> RouteKey {
    let addr = match prefix {
        IpAddr::V4(a) => IpAddr::V4(
            (u32::from(a) & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)).into(),
        ),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & super::lpm6::mask6(len)).into()),
    };
    (addr, len)
}

/// The configured routes and the run-time changes made since.
#[derive(Clone, Default)]
pub struct RouteLog {
    /// The routes the configuration gave (shared by all replicas).
    configured: Arc<HashMap<RouteKey, Target>>,
    /// Run-time changes: `Some` a route added or replaced, `None` removed.
    changes: BTreeMap<RouteKey, Option<Target>>,
}

impl RouteLog {
    /// Records a route of the configuration (a later one replaces an earlier).
    pub fn configure(&mut self, r: &Route) {
        Arc::make_mut(&mut self.configured).insert(route_key(r.prefix, r.len), (r.output, r.via));
    }

    /// Records a run-time change of `key`; a change back to what the
    /// configuration says is no change.
    pub fn change(&mut self, key: RouteKey, to: Option<Target>) {
        if self.configured.get(&key).copied() == to {
            self.changes.remove(&key);
        } else {
            self.changes.insert(key, to);
        }
    }

    /// Number of run-time changes.
    pub fn changes(&self) -> usize {
        self.changes.len()
    }

    /// The changes of `old` (a replaced replica's log) that survive into a
    /// table configured as `self`: those whose prefix both configurations
    /// route alike.
    pub fn carried(&self, old: &RouteLog) -> Vec<(RouteKey, Option<Target>)> {
        old.changes
            .iter()
            .filter(|(k, _)| self.configured.get(k) == old.configured.get(k))
            .map(|(&k, &c)| (k, c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(s: &str) -> Route {
        super::super::parse_route(s, 4).unwrap()
    }

    fn key(s: &str) -> RouteKey {
        let (p, l) = super::super::parse_route_prefix(s).unwrap();
        route_key(p, l)
    }

    #[test]
    fn changes_survive_unless_the_new_config_changes_their_prefix() {
        let mut old = RouteLog::default();
        for r in ["10.0.0.0/8 -> 1", "2001:db8::/32 -> 2", "192.0.2.0/24 -> 0"] {
            old.configure(&route(r));
        }
        old.change(key("10.0.0.0/8"), None);
        old.change(key("172.16.0.0/12"), Some((3, None)));
        old.change(key("2001:db8::/32"), Some((1, None)));
        old.change(key("192.0.2.0/24"), Some((1, None)));
        old.change(key("192.0.2.0/24"), Some((0, None)));
        assert_eq!(old.changes(), 3, "a change back to the config is none");
        let mut new = RouteLog::default();
        for r in [
            "10.0.0.0/8 -> 1",
            "2001:db8::/32 -> 3",
            "198.51.100.0/24 -> 0",
        ] {
            new.configure(&route(r));
        }
        let mut got = new.carried(&old);
        got.sort();
        assert_eq!(
            got,
            vec![
                (key("10.0.0.0/8"), None),
                (key("172.16.0.0/12"), Some((3, None)))
            ],
            "the /32 the new config edits goes"
        );
        assert_eq!(key("10.1.2.3/8"), key("10.0.0.0/8"));
        assert_eq!(key("::/0"), key("::1/0"));
        assert_eq!(key("0.0.0.0/0"), key("1.2.3.4/0"));
    }
}
