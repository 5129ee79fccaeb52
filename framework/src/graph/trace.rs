//! Packet traces: the path of chosen packets through a graph, hop by hop.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::elements::classify::Filter;
use crate::packet::Packet;

/// What a trace's workers share: how many packets are still to be traced
/// and which.
#[derive(Debug)]
pub struct TraceShared {
    /// Packets to trace in all.
    count: u64,
    /// Packets taken so far (over all workers).
    taken: AtomicU64,
    filter: Option<Filter>,
}

impl TraceShared {
    /// A trace of the next `count` packets that `filter` selects.
    pub fn new(count: u64, filter: Option<Filter>) -> TraceShared {
        TraceShared {
            count,
            taken: AtomicU64::new(0),
            filter,
        }
    }

    /// Packets to trace in all.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Every packet asked for has been taken.
    pub fn done(&self) -> bool {
        self.taken.load(Ordering::Relaxed) >= self.count
    }

    /// Whether to trace `pkt`: its number in the trace (from 1) if so.
    pub(crate) fn take(&self, pkt: &mut Packet) -> Option<u64> {
        if self.done() {
            return None;
        }
        if let Some(f) = &self.filter {
            if !f.matches(pkt) {
                return None;
            }
        }
        let n = self.taken.fetch_add(1, Ordering::Relaxed);
        (n < self.count).then_some(n + 1)
    }
}

/// The path of one traced packet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceRecord {
    /// Its number in the trace, from 1 (in the order workers took them).
    pub packet: u64,
    /// The worker that ran it.
    pub worker: usize,
    /// The port it arrived on; empty for a packet an element sent from its
    /// timer or let out as it finished (its first hop, [`Hop::Timer`] or
    /// [`Hop::Finish`], names the element).
    pub port: String,
    /// Its receive timestamp (ns; the capture's time for a pcap input), or
    /// the worker's clock when a timer or a finishing element sent it.
    pub time_ns: u64,
    /// A one-line summary of the frame as received.
    pub summary: String,
    /// Where it went, in order (depth first when it was copied).
    pub hops: Vec<Hop>,
}

/// One step of a traced packet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hop {
    /// It entered an element.
    Element {
        /// Element name.
        element: String,
        /// Its class.
        class: String,
        /// The input it entered by.
        input: usize,
        /// What the element said about it (the rule that decided, say).
        notes: Vec<String>,
        /// The outputs it (or a copy) left by, each with where it leads.
        outputs: Vec<HopOutput>,
        /// Drop reasons, when it (or a packet handled with it) was dropped.
        dropped: Vec<String>,
        /// The element kept it (it went neither out nor to a drop).
        held: bool,
        /// The element has no outputs and took it (a sink such as Discard).
        consumed: bool,
    },
    /// An element sent it from its timer (an ARP request retried, a packet
    /// held for a neighbour released): the trace took it as it left.
    Timer {
        /// Element name.
        element: String,
        /// Its class.
        class: String,
        /// The output it left by, with where it leads.
        outputs: Vec<HopOutput>,
    },
    /// An element let it out as it finished (at the end of the run, or
    /// when a reload removed the element): packets it held, say.
    Finish {
        /// Element name.
        element: String,
        /// Its class.
        class: String,
        /// The output it left by, with where it leads.
        outputs: Vec<HopOutput>,
    },
    /// It was queued for transmission on a port.
    Sent {
        /// The port.
        port: String,
    },
}

/// An output a traced packet left an element by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HopOutput {
    /// Output number.
    pub output: usize,
    /// Where it leads (an element, `[input]element`, or a port).
    pub to: String,
}

impl fmt::Display for TraceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match self.hops.first() {
            Some(Hop::Timer { element, .. }) => format!("sent by the timer of {element}"),
            Some(Hop::Finish { element, .. }) => format!("let out by {element} as it finished"),
            _ => format!("received on {}", self.port),
        };
        writeln!(
            f,
            "packet {}: {from} (worker {}, t={:.6} s): {}",
            self.packet,
            self.worker,
            self.time_ns as f64 / 1e9,
            self.summary
        )?;
        for hop in &self.hops {
            match hop {
                Hop::Element {
                    element,
                    class,
                    input,
                    notes,
                    outputs,
                    dropped,
                    held,
                    consumed,
                } => {
                    writeln!(f, "  [{input}]{element} ({class})")?;
                    for n in notes {
                        writeln!(f, "      {n}")?;
                    }
                    for o in outputs {
                        writeln!(f, "    -> output {} -> {}", o.output, o.to)?;
                    }
                    for d in dropped {
                        writeln!(f, "    -> dropped: {d}")?;
                    }
                    if *held {
                        writeln!(f, "    -> held by {element}")?;
                    }
                    if *consumed {
                        writeln!(f, "    -> consumed by {element}")?;
                    }
                }
                Hop::Timer {
                    element,
                    class,
                    outputs,
                }
                | Hop::Finish {
                    element,
                    class,
                    outputs,
                } => {
                    let by = if matches!(hop, Hop::Timer { .. }) {
                        "timer"
                    } else {
                        "finish"
                    };
                    writeln!(f, "  {element} ({class}), {by}")?;
                    for o in outputs {
                        writeln!(f, "    -> output {} -> {}", o.output, o.to)?;
                    }
                }
                Hop::Sent { port } => writeln!(f, "  sent on {port}")?,
            }
        }
        Ok(())
    }
}
