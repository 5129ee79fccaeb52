//! A neighbour element under test, for the tests of ArpQuerier
//! (tests_arp_querier.rs) and of NdQuerier and NdResponder (tests_nd.rs).

use super::querier::DROP_REASONS;
use crate::config::configure_element;
use crate::element::{Context, Element, HandlerCx, Output, Registry};
use crate::packet::{Batch, Packet, Pool};

/// The element and the pool it takes new packets (requests) from.
pub(super) struct Rig {
    pub(super) e: Box<dyn Element>,
    pub(super) pool: Pool,
}

impl Rig {
    /// An element of `class` configured with `toml`, with a pool of
    /// `buffers` packets.
    pub(super) fn new(class: &str, toml: &str, buffers: usize) -> Rig {
        let c = configure_element(&Registry::builtin(), &[], class, toml).unwrap();
        Rig {
            e: c.instantiate(0),
            pool: Pool::new(buffers),
        }
    }

    /// Pushes `pkts` to `input` at `now`; the frames out, the Output and
    /// the time the element asked for its timer.
    fn push_all(
        &mut self,
        input: usize,
        now: u64,
        pkts: Vec<Packet>,
    ) -> (Vec<Vec<u8>>, Output, Option<u64>) {
        let mut cx = Context::new(&mut self.pool, now, 0);
        let mut out = Output::new(1, DROP_REASONS.len());
        let mut b: Batch = pkts.into_iter().collect();
        self.e.push(&mut cx, input, &mut b, &mut out);
        let got = out.batch(0).iter().map(|p| p.data().to_vec()).collect();
        (got, out, cx.wake_request())
    }

    /// Pushes `pkts` to `input` at `now`; the frames out and the Output.
    pub(super) fn push(
        &mut self,
        input: usize,
        now: u64,
        pkts: Vec<Packet>,
    ) -> (Vec<Vec<u8>>, Output) {
        let (got, out, _) = self.push_all(input, now, pkts);
        (got, out)
    }

    /// Pushes like [`Rig::push`]; the time the element asked for its timer.
    pub(super) fn push_asks(&mut self, input: usize, now: u64, pkts: Vec<Packet>) -> Option<u64> {
        self.push_all(input, now, pkts).2
    }

    /// Runs the timer at `now` (no packet arrives); the frames out, the
    /// Output and the time the element asks to be called next.
    pub(super) fn timer(&mut self, now: u64) -> (Vec<Vec<u8>>, Output, Option<u64>) {
        let mut cx = Context::new(&mut self.pool, now, 0);
        let mut out = Output::new(1, DROP_REASONS.len());
        self.e.timer(&mut cx, &mut out);
        let got = out.batch(0).iter().map(|p| p.data().to_vec()).collect();
        (got, out, cx.wake_request())
    }

    /// Runs the end of the run at `now`; the Output.
    pub(super) fn finish(&mut self, now: u64) -> Output {
        let mut cx = Context::new(&mut self.pool, now, 0);
        let mut out = Output::new(1, DROP_REASONS.len());
        self.e.finish(&mut cx, &mut out);
        out
    }

    /// The rows of the `table` handler at `now`.
    pub(super) fn table_rows(&self, now: u64) -> usize {
        let rows = self.e.read("table", &HandlerCx::new(now, 0)).unwrap();
        rows.as_array().unwrap().len()
    }
}
