//! `Discard`: a sink that frees every packet it receives.

use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Output, ParamError,
    Params, PortCount,
};
use crate::packet::Batch;

/// The `Discard` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "Discard",
        summary: "Frees every packet it receives (a sink)",
        description: "\
Returns every packet it receives to the worker's pool. Packets consumed this way
are not drops: the runtime counts them as packets in, and no drop reason is
recorded.

Notes: this is the cheapest way to end a path (one pool push per packet) and the
sink of the forwarding benchmarks. Use it to terminate traffic you mean to
throw away; to see what is thrown away, put a `Counter` or `Print` before it.",
        inputs: PortCount::Any,
        outputs: PortCount::Fixed(0),
        params: &[],
        drop_reasons: &[],
        counters: &[],
        handlers: &[],
        example: "\
[elements.sink]
class = \"Discard\"",
        see_also: &["Counter", "Tee"],
    },
    configure,
};

fn configure(_p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    Ok(Configured::cloning(Inputs::Any, 0, Discard))
}

/// Returns every packet to the pool.
#[derive(Debug, Clone, Copy)]
pub struct Discard;

impl Element for Discard {
    #[inline]
    fn push(&mut self, cx: &mut Context<'_>, _input: usize, batch: &mut Batch, _out: &mut Output) {
        cx.pool().free_batch(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::DropReason;
    use crate::packet::Pool;

    #[test]
    fn returns_every_packet_to_the_pool_without_drops() {
        let mut pool = Pool::new(8);
        let mut batch: Batch = (0..5).map(|_| pool.alloc().unwrap()).collect();
        assert_eq!(pool.available(), 3);
        let mut out = Output::new(0, 0);
        let mut d = Discard;
        let mut cx = Context::new(&mut pool, 0, 0);
        d.push(&mut cx, 3, &mut batch, &mut out);
        assert!(batch.is_empty());
        assert_eq!(pool.available(), 8);
        assert_eq!(out.drops(DropReason(0)), 0, "consumed, not dropped");
    }

    #[test]
    fn configures_as_a_sink() {
        let cx = ConfigCx {
            ports: &[],
            workers: 1,
            grace: crate::element::Grace::global(),
        };
        let c = (CLASS.configure)(&Params::new(), &cx).unwrap();
        assert_eq!((c.inputs, c.outputs), (Inputs::Any, 0));
    }
}
