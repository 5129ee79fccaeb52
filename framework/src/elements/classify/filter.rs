//! A packet filter in the rule language: one match, no output (what
//! `hpio-nf dump`, taps and traces select packets with).

use super::{parse_match, RuleError, RuleSet};
use crate::packet::Packet;
use crate::wire::ParseStatus;

/// Selects the packets that satisfy one match (`tcp and dst port 80`);
/// frames whose headers do not parse never match.
#[derive(Debug, Clone)]
pub struct Filter {
    rules: RuleSet,
    text: String,
}

impl Filter {
    /// Parses `text` (a match, without `-> output`).
    pub fn parse(text: &str) -> Result<Filter, RuleError> {
        let m = parse_match(text)?;
        Ok(Filter {
            rules: RuleSet::new([&m]),
            text: text.trim().to_string(),
        })
    }

    /// The filter as it was written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `p` matches (its header parse is cached in the slot).
    #[inline]
    pub fn matches(&self, p: &mut Packet) -> bool {
        let h = p.headers();
        h.status == ParseStatus::Ok && self.rules.classify(&h, p.data()).is_some()
    }

    /// The error of [`Filter::parse`] as a message pointing at the
    /// offending word: `what: message`, then the text with a caret under it.
    pub fn explain(what: &str, text: &str, e: &RuleError) -> String {
        let mut caret = " ".repeat(e.pos.min(text.len()));
        caret.push('^');
        format!("{what}: {}\n  {text}\n  {caret}", e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::frame::{Frame, ARP_REQUEST};

    #[test]
    fn selects_by_rule_and_explains_errors() {
        let f = Filter::parse(" arp ").unwrap();
        assert_eq!(f.text(), "arp");
        let arp = Frame::arp(ARP_REQUEST, ([2; 6], [1; 4]), ([0; 6], [2; 4]));
        let mut arp = Packet::from_bytes(&arp.build());
        let mut other = Packet::from_bytes(&[0u8; 60]);
        assert!(f.matches(&mut arp));
        assert!(!f.matches(&mut other));
        let e = Filter::parse("tcp and dst prot 80").unwrap_err();
        let msg = Filter::explain("--filter", "tcp and dst prot 80", &e);
        assert!(msg.starts_with("--filter: "), "{msg}");
        assert!(
            msg.ends_with("\n  tcp and dst prot 80\n              ^"),
            "{msg}"
        );
    }
}
