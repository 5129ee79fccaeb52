//! `hpio-nf run --trace N [--trace-filter RULE]`: the path of the first N
//! packets (that RULE selects) through the graph, printed at the end.

use hpio_nf::elements::classify::Filter;
use hpio_nf::graph::TraceRecord;
use hpio_nf::runtime::TraceRequest;

/// The trace options of `hpio-nf run`.
#[derive(clap::Args)]
pub(crate) struct TraceArgs {
    /// Follow the first N packets through the graph and print, at the end,
    /// every element each one entered, the rule that decided (Classify,
    /// Firewall), the output it left by or why it was dropped, and the port
    /// it was sent on.
    #[arg(long, value_name = "N")]
    pub trace: Option<u64>,
    /// Trace only the packets this match selects, in the Classify rule
    /// language (`tcp and dst port 22`).
    #[arg(long, value_name = "RULE", requires = "trace")]
    pub trace_filter: Option<String>,
}

impl TraceArgs {
    /// The trace to arm, if any; an error points at a bad filter.
    pub fn request(&self) -> anyhow::Result<Option<TraceRequest>> {
        let Some(count) = self.trace else {
            return Ok(None);
        };
        Ok(Some(TraceRequest {
            count,
            filter: filter("--trace-filter", self.trace_filter.as_deref())?,
        }))
    }
}

/// Parses an optional filter; the error shows where it is wrong.
pub(crate) fn filter(what: &str, text: Option<&str>) -> anyhow::Result<Option<Filter>> {
    text.map(|t| Filter::parse(t).map_err(|e| anyhow::anyhow!(Filter::explain(what, t, &e))))
        .transpose()
}

/// The traces as text: a heading, then each packet's path.
pub(crate) fn traces_text(records: &[TraceRecord], asked: u64) -> String {
    let mut s = format!("trace: {} of {asked} packet(s) followed\n", records.len());
    for r in records {
        s += &r.to_string();
    }
    s
}
