//! The Firewall's drop reasons and its own counters, each bound by name to
//! the constant the code uses.

hpio_nf::drop_reasons! {
        pub(crate) DROP_REASONS = [
        /// The first rule the packet matched is a `deny` rule.
        pub(crate) DENIED = "denied",
        /// The packet matched no rule.
        pub(crate) NO_RULE = "no-rule",
        /// A rule allowed a packet that opens a flow, but the flow table is full.
        pub(crate) TABLE_FULL = "table-full",
        /// The frame's headers do not parse.
        pub(crate) MALFORMED = "malformed",
        /// A non-IP frame, with `non_ip = "deny"`.
        pub(crate) NON_IP = "non-ip",
        /// A fragment the fragment table refuses (see `frag`).
        pub(crate) FRAGMENT = "fragment",
    ]
}

hpio_nf::counters! {
        pub(crate) COUNTERS = [
        /// A pattern: the names of the per-rule counters (not reported under this name).
        #[allow(dead_code)]
        pub(crate) RULE_HITS = "rule N: ACTION from SIDE (STATE): MATCH":
            "packets whose first matching rule is rule N (or the rule's `name`)",
        pub(crate) FLOWS = "flows":
            "flows in the table (expired ones until they are removed)",
        pub(crate) FLOWS_CREATED = "flows created":
            "flows created by allowed packets",
        pub(crate) FLOWS_EXPIRED = "flows expired":
            "flows removed after their timeout",
        pub(crate) FRAGMENTS_PASSED = "fragments passed":
            "non-first fragments passed after their allowed first fragment (held ones included)",
        pub(crate) FRAGMENTS_HELD = "fragments held":
            "non-first fragments held because they came before their first fragment",
        pub(crate) FRAGMENTS_RELEASED = "fragments released":
            "held fragments passed once their first fragment was allowed",
        pub(crate) FRAGMENTS_EXPIRED = "fragments expired":
            "held fragments dropped as `fragment`: their first fragment did not come \
                within `frag_timeout` (unsolicited fragments)",
        pub(crate) FRAGMENTS_DENIED = "fragments denied":
            "non-first fragments dropped because their first fragment was dropped (with its reason)",
        pub(crate) FRAGMENTS_OVERLAPPING = "fragments overlapping":
            "tiny or overlapping fragments dropped as `fragment` (RFC 1858)",
        pub(crate) FRAGMENTS_TABLE_FULL = "fragments table full":
            "fragments dropped as `fragment` because the fragment table, the hold or the pool was full",
        pub(crate) FRAGMENTS_DROPPED_AT_END = "fragments dropped at end":
            "held fragments dropped as `fragment` when the run ended",
        pub(crate) FRAGMENTS_HELD_NOW = "fragments held now":
            "non-first fragments held at the moment",
    ]
}
