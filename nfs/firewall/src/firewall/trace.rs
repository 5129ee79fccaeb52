//! The firewall's traced path: which rule decided (see `Context::tracing`).

use hpio_nf::prelude::{Batch, Context, Output};

use super::Firewall;

impl Firewall {
    /// A traced batch ([`Context::tracing`]): each packet on its own, then
    /// a note naming the rule that decided (the one whose count moved).
    #[cold]
    #[inline(never)]
    pub(super) fn push_traced(
        &mut self,
        cx: &mut Context<'_>,
        input: usize,
        batch: &mut Batch,
        out: &mut Output,
    ) {
        for pkt in std::mem::take(batch) {
            let before = self.hits.clone();
            self.push_plain(cx, input, &mut Batch::from_iter([pkt]), out);
            let moved = (self.hits.iter().zip(before.iter())).position(|(now, was)| now != was);
            if let Some(rule) = moved {
                cx.trace_note(|| self.shared.rules.described[rule].clone());
            }
        }
    }
}
