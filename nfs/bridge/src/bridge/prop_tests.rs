//! Property tests of the MAC table against a model (a map from address to
//! port and last-seen time): random learn / lookup / sweep / remove
//! sequences over few addresses (so that they collide and probe runs wrap
//! around the slot array), with time moving on. The table must answer as
//! the model does, hold no more than its capacity, and a whole sweep pass
//! must leave no expired entry.
//!
//! CI runs the case count below from a fixed seed; `PROPTEST_CASES=100000`
//! runs more (testkit::prop).

use std::collections::HashMap;

use proptest::prelude::*;

use super::table::{Learn, MacTable};

#[derive(Debug, Clone)]
enum Op {
    Learn(u64, u16),
    Lookup(u64),
    Sweep(usize),
    Remove(u64),
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    // Few addresses, some far apart in value (the hash spreads them anyway).
    let mac = prop_oneof![1u64..24, (1u64..(1 << 48)).prop_map(|m| m | 1)];
    prop_oneof![
        6 => (mac.clone(), 0u16..4).prop_map(|(m, p)| Op::Learn(m, p)),
        3 => mac.clone().prop_map(Op::Lookup),
        1 => prop_oneof![Just(usize::MAX), 0usize..20].prop_map(Op::Sweep),
        1 => mac.prop_map(Op::Remove),
        2 => prop_oneof![0u64..5, 0u64..40].prop_map(Op::Wait),
    ]
}

proptest! {
    #![proptest_config(testkit::prop::config(512))]

    #[test]
    fn mac_table_agrees_with_the_model(max in 1usize..12, aging in 1u64..30,
                                       ops in prop::collection::vec(op(), 1..200)) {
        let mut t = MacTable::new(max, aging);
        let mut m: HashMap<u64, (u16, u64)> = HashMap::new();
        let mut now = 100u64;
        let expired = |seen: u64, now: u64| now - seen >= aging;
        for op in ops {
            match op {
                Op::Learn(mac, port) => {
                    let want = match m.get(&mac).copied() {
                        Some((p, seen)) => {
                            m.insert(mac, (port, now));
                            match (expired(seen, now), p == port) {
                                (true, _) => Learn::Relearned,
                                (false, true) => Learn::Refreshed,
                                (false, false) => Learn::Moved { from: p },
                            }
                        }
                        None if m.len() >= max => Learn::Full,
                        None => {
                            m.insert(mac, (port, now));
                            Learn::Learned
                        }
                    };
                    prop_assert_eq!(t.learn(mac, port, now), want, "learn {:#x}", mac);
                }
                Op::Lookup(mac) => {
                    let want = m.get(&mac).filter(|e| !expired(e.1, now)).map(|e| e.0);
                    prop_assert_eq!(t.lookup(mac, now), want, "lookup {:#x}", mac);
                }
                Op::Remove(mac) => prop_assert_eq!(t.remove(mac), m.remove(&mac).is_some()),
                Op::Sweep(budget) => {
                    let (removed, _) = t.sweep(now, budget);
                    // What went was expired; the model forgets the same entries.
                    let kept: HashMap<u64, (u16, u64)> =
                        t.entries().map(|e| (e.mac, (e.port, e.seen))).collect();
                    let gone: Vec<_> = m.iter().filter(|(k, _)| !kept.contains_key(k)).collect();
                    prop_assert_eq!(gone.len(), removed);
                    prop_assert!(gone.iter().all(|(_, e)| expired(e.1, now)), "live entry swept");
                    m.retain(|k, _| kept.contains_key(k));
                }
                Op::Wait(dt) => now += dt,
            }
            // The same entries, within capacity, all reachable.
            let entries: HashMap<u64, (u16, u64)> =
                t.entries().map(|e| (e.mac, (e.port, e.seen))).collect();
            prop_assert_eq!(&entries, &m);
            prop_assert_eq!(t.len(), m.len());
            prop_assert!(t.len() <= max);
            for (&mac, &(port, seen)) in &m {
                let want = (!expired(seen, now)).then_some(port);
                prop_assert_eq!(t.lookup(mac, now), want, "entry {:#x} lost", mac);
            }
        }
        // A whole pass from the start leaves nothing expired.
        t.sweep(now, usize::MAX);
        t.sweep(now, usize::MAX);
        prop_assert!(t.entries().all(|e| !expired(e.seen, now)));
    }
}
