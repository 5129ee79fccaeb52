//! The firewall's rules: read from the `rules` parameter, checked, and
//! compiled into one Classify [`RuleSet`] per (side, connection state), so
//! that a packet's verdict is one first-match lookup.

use hpio_nf::element::{Choice, Need, ParamError, ParamSpec, ParamType, Params};
use hpio_nf::elements::classify::{parse_match, FlowKey, Match, RuleSet};

use crate::counts::COUNTERS;

/// The fields of one rule (an item of `rules`).
pub(crate) const RULE_FIELDS: &[ParamSpec] = &[
    ParamSpec {
        name: "from",
        ty: ParamType::Choice(FromSide::NAMES),
        need: Need::Default("\"any\""),
        doc: "side the packet arrives from: `inside` (input 0), `outside` (input 1) or `any`",
    },
    ParamSpec {
        name: "match",
        ty: ParamType::Str,
        need: Need::Required,
        doc: "the packets, in the Classify rule language (`any`, `tcp and dst port 22`, ...)",
    },
    ParamSpec {
        name: "state",
        ty: ParamType::Choice(RuleState::NAMES),
        need: Need::Default("\"any\""),
        doc: "connection state the packet must be in: `new`, `established` or `any`",
    },
    ParamSpec {
        name: "action",
        ty: ParamType::Choice(Action::NAMES),
        need: Need::Required,
        doc: "`allow` passes the packet (and tracks its flow), `deny` drops it",
    },
    ParamSpec {
        name: "name",
        ty: ParamType::Str,
        need: Need::Optional,
        doc: "name of the rule's hit counter (default: the rule as written)",
    },
];

hpio_nf::choice! {
    /// A rule's `from`: the sides it applies to.
    enum FromSide {
        Inside = "inside",
        Outside = "outside",
        Any = "any",
    }
}

hpio_nf::choice! {
    /// A rule's `state`: the connection states it applies to.
    enum RuleState {
        New = "new",
        Established = "established",
        Any = "any",
    }
}

hpio_nf::choice! {
    /// A rule's `action`.
    enum Action {
        Allow = "allow",
        Deny = "deny",
    }
}

/// The side a packet arrives from: its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Input 0: from the inside, going out.
    Inside = 0,
    /// Input 1: from the outside, coming in.
    Outside = 1,
}

/// A packet's connection state, as rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// It opens a flow, or belongs to one that has seen no reply yet.
    New = 0,
    /// It belongs to a flow that has seen a reply (or is the reply).
    Established = 1,
    /// Neither: untracked (other protocols, non-IP frames) or invalid (a TCP
    /// segment other than a SYN, or an echo reply, without a flow). Only
    /// rules with `state = "any"` match it.
    Other = 2,
}

/// Sides and states, for indexing the compiled sets.
const SIDES: [Side; 2] = [Side::Inside, Side::Outside];
const STATES: [ConnState; 3] = [ConnState::New, ConnState::Established, ConnState::Other];

/// One rule as configured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    /// Sides it applies to.
    pub(crate) sides: [bool; 2],
    /// `None` for `state = "any"`.
    pub(crate) state: Option<ConnState>,
    /// The packets it selects.
    pub(crate) pattern: Match,
    /// Allow (or deny).
    pub(crate) allow: bool,
    /// Its counter's name.
    pub(crate) name: String,
    /// The match as written.
    pub(crate) text: String,
    /// Whether `name` was given (else it is the default, which follows the
    /// rule's position).
    pub(crate) named: bool,
}

impl Rule {
    fn applies(&self, side: Side, state: ConnState) -> bool {
        self.sides[side as usize] && self.state.is_none_or(|s| s == state)
    }
}

/// The rules, compiled.
#[derive(Clone)]
pub(crate) struct Rules {
    /// Per rule: allow (true) or deny.
    pub(crate) allow: Box<[bool]>,
    /// Per rule: its counter's name.
    pub(crate) names: Box<[String]>,
    /// Per (side, state): the rules that apply, compiled, and each one's
    /// index in the whole list.
    sets: Vec<(RuleSet, Box<[u16]>)>,
}

impl Rules {
    /// Compiles `rules` (at most `u16::MAX` of them).
    pub(crate) fn new(rules: &[Rule]) -> Rules {
        let mut sets = Vec::with_capacity(SIDES.len() * STATES.len());
        for side in SIDES {
            for state in STATES {
                let (index, matches): (Vec<u16>, Vec<&Match>) = rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.applies(side, state))
                    .map(|(i, r)| (i as u16, &r.pattern))
                    .unzip();
                sets.push((RuleSet::new(matches), index.into_boxed_slice()));
            }
        }
        Rules {
            allow: rules.iter().map(|r| r.allow).collect(),
            names: rules.iter().map(|r| r.name.clone()).collect(),
            sets,
        }
    }

    /// Number of rules.
    pub(crate) fn len(&self) -> usize {
        self.allow.len()
    }

    /// Index of the first rule that a packet with flow key `key`, from
    /// `side`, in connection state `state`, satisfies.
    #[inline(always)]
    pub(crate) fn first(&self, side: Side, state: ConnState, key: &FlowKey) -> Option<usize> {
        let (set, index) = &self.sets[side as usize * STATES.len() + state as usize];
        set.first_match(key)
            .and_then(|i| index.get(i))
            .map(|&i| i as usize)
    }
}

/// Reads and checks the `rules` parameter.
pub(crate) fn parse_rules(p: &Params) -> Result<Vec<Rule>, ParamError> {
    const P: &str = "rules";
    let items = p.table_list(P)?;
    if items.is_empty() {
        return Err(ParamError::new(
            P,
            "needs at least one rule, e.g. `{ from = \"inside\", match = \"any\", action = \"allow\" }`",
        ));
    }
    if items.len() > u16::MAX as usize {
        return Err(ParamError::new(
            P,
            format!("{} rules is too many (at most {})", items.len(), u16::MAX),
        ));
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(items.len());
    for (i, t) in items.iter().enumerate() {
        let rule = parse_rule(t).map_err(|e| ParamError::nested(P, Some(i), e))?;
        rules.push(rule);
        check_rule(&mut rules, i)?;
    }
    Ok(rules)
}

/// One rule from its fields (defaults filled in); errors name the field.
pub(crate) fn parse_rule(t: &Params) -> Result<Rule, ParamError> {
    let sides = match t.choice::<FromSide>("from")? {
        FromSide::Inside => [true, false],
        FromSide::Outside => [false, true],
        FromSide::Any => [true, true],
    };
    let state = match t.choice::<RuleState>("state")? {
        RuleState::New => Some(ConnState::New),
        RuleState::Established => Some(ConnState::Established),
        RuleState::Any => None,
    };
    let text = t.str("match")?;
    let pattern =
        parse_match(text).map_err(|e| ParamError::new("match", e.to_string()).at_offset(e.pos))?;
    let allow = t.choice::<Action>("action")? == Action::Allow;
    let name = match t.get("name") {
        Some(_) => {
            let n = t.str("name")?.trim();
            if n.is_empty() {
                return Err(ParamError::new("name", "must not be empty"));
            }
            Some(n.to_string())
        }
        None => None,
    };
    Ok(Rule {
        sides,
        state,
        pattern,
        allow,
        named: name.is_some(),
        name: name.unwrap_or_default(),
        text: text.to_string(),
    })
}

/// Checks rule `i` of `rules` against those before it (its counter name
/// unique and not one of the firewall's own, not shadowed), naming it by
/// its position first when it has no name of its own.
pub(crate) fn check_rule(rules: &mut [Rule], i: usize) -> Result<(), ParamError> {
    const P: &str = "rules";
    if !rules[i].named {
        rules[i].name = default_name(i, &rules[i]);
    }
    let (earlier, rest) = rules.split_at(i);
    let rule = &rest[0];
    let field = |e: ParamError| ParamError::nested(P, Some(i), e);
    let name = &rule.name;
    if let Some(j) = earlier.iter().position(|r| r.name == *name) {
        return Err(field(ParamError::new(
            "name",
            format!("rule {j} already has the counter name {name:?}; names must be unique"),
        )));
    }
    if COUNTERS.iter().any(|&(own, _)| own == name) {
        return Err(field(ParamError::new(
            "name",
            format!("{name:?} is the name of one of the firewall's own counters"),
        )));
    }
    if let Some(j) = shadowed_by(earlier, rule) {
        return Err(ParamError::item(
            P,
            i,
            format!(
                "this rule can never match: rule {j} ({}) matches every packet it could \
                 match first; remove this rule or move it above rule {j}",
                earlier[j].name
            ),
        ));
    }
    Ok(())
}

impl Rule {
    /// `from` as the config writes it.
    pub(crate) fn side_text(&self) -> &'static str {
        match self.sides {
            [true, false] => "inside",
            [false, true] => "outside",
            _ => "any",
        }
    }

    /// `state` as the config writes it.
    pub(crate) fn state_text(&self) -> &'static str {
        match self.state {
            Some(ConnState::New) => "new",
            Some(ConnState::Established) => "established",
            _ => "any",
        }
    }
}

/// The counter name of rule `i` when it has no `name`: the rule as written,
/// `rule 3: allow from outside: tcp and dst port 8080`.
fn default_name(i: usize, r: &Rule) -> String {
    let state = match r.state_text() {
        "any" => String::new(),
        s => format!(" ({s})"),
    };
    format!(
        "rule {i}: {} from {}{state}: {}",
        if r.allow { "allow" } else { "deny" },
        r.side_text(),
        r.text.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

/// The earlier rule that leaves `rule` nothing to match: a `match = "any"`
/// rule for every side and state `rule` applies to.
fn shadowed_by(earlier: &[Rule], rule: &Rule) -> Option<usize> {
    let mut covered = [[false; 3]; 2];
    for (j, r) in earlier.iter().enumerate() {
        if r.pattern.is_any() {
            for side in SIDES {
                for state in STATES {
                    if r.applies(side, state) {
                        covered[side as usize][state as usize] = true;
                    }
                }
            }
        }
        let all = SIDES.iter().all(|&side| {
            STATES
                .iter()
                .all(|&state| !rule.applies(side, state) || covered[side as usize][state as usize])
        });
        if all {
            return Some(j);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpio_nf::element::Value;
    use hpio_nf::wire::Headers;

    type Item<'a> = &'a [(&'static str, &'a str)];

    fn params(items: &[Item<'_>]) -> Params {
        let list = items
            .iter()
            .map(|fields| {
                let mut t = Params::new();
                t.set("from", Value::Str("any".into()));
                t.set("state", Value::Str("any".into()));
                for (k, v) in fields.iter() {
                    t.set(k, Value::Str(v.to_string()));
                }
                Value::Table(t)
            })
            .collect();
        let mut p = Params::new();
        p.set("rules", Value::List(list));
        p
    }

    fn err(items: &[Item<'_>]) -> ParamError {
        parse_rules(&params(items)).unwrap_err()
    }

    #[test]
    fn rules_read_with_names_sides_and_states() {
        let rules = parse_rules(&params(&[
            &[
                ("from", "inside"),
                ("match", "tcp  and dst port 80"),
                ("action", "allow"),
            ],
            &[
                ("state", "established"),
                ("match", "any"),
                ("action", "allow"),
                ("name", "replies"),
            ],
            &[("from", "outside"), ("match", "any"), ("action", "deny")],
        ]))
        .unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[0].name,
            "rule 0: allow from inside: tcp and dst port 80"
        );
        assert_eq!(rules[0].sides, [true, false]);
        assert_eq!(rules[0].state, None);
        assert_eq!(rules[1].name, "replies");
        assert_eq!(rules[1].state, Some(ConnState::Established));
        assert_eq!(rules[2].name, "rule 2: deny from outside: any");
        assert!(rules[0].allow && !rules[2].allow);
        let rules = parse_rules(&params(&[&[
            ("state", "new"),
            ("match", "udp"),
            ("action", "allow"),
        ]]))
        .unwrap();
        assert_eq!(rules[0].name, "rule 0: allow from any (new): udp");
    }

    #[test]
    fn bad_rules_name_the_item_the_field_and_the_byte() {
        let e = err(&[
            &[("match", "tcp"), ("action", "allow")],
            &[("match", "udp and dst prot 53"), ("action", "allow")],
        ]);
        assert_eq!(
            (e.param.as_str(), e.index, e.field.as_deref(), e.offset),
            ("rules", Some(1), Some("match"), Some(12))
        );
        assert!(e.message.starts_with("at byte 12: "), "{}", e.message);
        let e = err(&[&[("match", "tcp and udp"), ("action", "deny")]]);
        assert_eq!(e.field.as_deref(), Some("match"));
        let e = err(&[]);
        assert!(e.message.contains("at least one rule"), "{e}");
        let e = err(&[
            &[("match", "tcp"), ("action", "allow"), ("name", "web")],
            &[("match", "udp"), ("action", "allow"), ("name", " web ")],
        ]);
        assert_eq!((e.index, e.field.as_deref()), (Some(1), Some("name")));
        assert!(e.message.contains("unique"), "{e}");
        let e = err(&[&[("match", "tcp"), ("action", "allow"), ("name", "flows")]]);
        assert!(e.message.contains("own counters"), "{e}");
        let e = err(&[&[("match", "tcp"), ("action", "allow"), ("name", "  ")]]);
        assert!(e.message.contains("empty"), "{e}");
        // A missing field (the loader fills defaults; a bare Params lacks them).
        let mut p = params(&[&[("match", "tcp")]]);
        assert_eq!(
            parse_rules(&p).unwrap_err().field.as_deref(),
            Some("action")
        );
        p.set("rules", Value::List(vec![Value::Int(1)]));
        assert_eq!(parse_rules(&p).unwrap_err().index, Some(0));
    }

    #[test]
    fn rules_after_a_catch_all_are_errors() {
        let e = err(&[
            &[("match", "any"), ("action", "deny")],
            &[("match", "tcp"), ("action", "allow")],
        ]);
        assert_eq!((e.index, e.field.as_deref()), (Some(1), None));
        assert!(e.message.contains("never match: rule 0"), "{e}");
        // Covered piecewise: inside, then outside.
        let e = err(&[
            &[("from", "inside"), ("match", "any"), ("action", "allow")],
            &[("match", "icmp"), ("action", "allow")],
            &[("from", "outside"), ("match", "any"), ("action", "deny")],
            &[("from", "inside"), ("match", "tcp"), ("action", "deny")],
        ]);
        assert_eq!(e.index, Some(3));
        assert!(e.message.contains("rule 0"), "{e}");
        // By state: established + new still leave the invalid/untracked packets.
        parse_rules(&params(&[
            &[
                ("state", "established"),
                ("match", "any"),
                ("action", "allow"),
            ],
            &[("state", "new"), ("match", "any"), ("action", "allow")],
            &[("match", "any"), ("action", "deny")],
        ]))
        .unwrap();
        // A narrower earlier rule shadows nothing.
        parse_rules(&params(&[
            &[("match", "tcp"), ("action", "deny")],
            &[("match", "tcp"), ("action", "allow")],
        ]))
        .unwrap();
    }

    fn key(frame: &[u8]) -> FlowKey {
        FlowKey::extract(&Headers::parse(frame), frame)
    }

    #[test]
    fn compiled_sets_honour_side_state_and_order() {
        let rules = parse_rules(&params(&[
            &[
                ("from", "outside"),
                ("match", "tcp and dst port 22"),
                ("action", "deny"),
            ],
            &[
                ("state", "established"),
                ("match", "any"),
                ("action", "allow"),
            ],
            &[("from", "inside"), ("match", "tcp"), ("action", "allow")],
            &[
                ("state", "new"),
                ("match", "tcp and dst port 8080"),
                ("action", "allow"),
            ],
            &[("match", "any"), ("action", "deny")],
        ]))
        .unwrap();
        let c = Rules::new(&rules);
        assert_eq!(c.len(), 5);
        let ssh = key(&crate::tuple::tests::tcp4([1; 4], 5000, [2; 4], 22, true));
        let web = key(&crate::tuple::tests::tcp4([1; 4], 5000, [2; 4], 8080, true));
        use ConnState::*;
        use Side::*;
        assert_eq!(
            c.first(Outside, Established, &ssh),
            Some(0),
            "first match wins"
        );
        assert_eq!(c.first(Inside, Established, &ssh), Some(1));
        assert_eq!(c.first(Inside, New, &ssh), Some(2));
        assert_eq!(c.first(Outside, New, &ssh), Some(0));
        assert_eq!(c.first(Outside, New, &web), Some(3));
        assert_eq!(
            c.first(Outside, Other, &web),
            Some(4),
            "state rules skip others"
        );
        assert_eq!(c.first(Inside, Other, &web), Some(2));
        assert!(c.allow[3] && !c.allow[4]);
    }
}
