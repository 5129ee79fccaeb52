//! `Tee`: copies each packet to every output.

use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Need, Output,
    ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::packet::Batch;

/// Most outputs a `Tee` may have.
const MAX_OUTPUTS: i64 = 256;

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// A copy could not be made because the worker's pool was empty.
        NO_BUFFER = "no-buffer",
    ]
}

/// The `Tee` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "Tee",
        summary: "Copies each packet to every output",
        description: "\
Sends every packet to each of its outputs. Outputs 0 to n-2 get copies made in
fresh buffers from the worker's pool (frame, timestamp, input port and
annotations are copied); the last output gets the original packet, so a Tee
with one output copies nothing.

The copies are independent: an element downstream of one output may rewrite its
packet without affecting the others.

Notes: when the pool has no free buffer, the copy for that output is not made
and is counted as a drop with reason `no-buffer` (no packet is freed for it);
the other outputs still get their packets.",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Param("outputs"),
        params: &[ParamSpec {
            name: "outputs",
            ty: ParamType::Int {
                min: 1,
                max: MAX_OUTPUTS,
            },
            need: Need::Default("2"),
            doc: "Number of outputs; each gets every packet",
        }],
        drop_reasons: DROP_REASONS,
        counters: &[],
        handlers: &[],
        example: "\
[elements.mirror]
class = \"Tee\"
outputs = 3",
        see_also: &["PaintSwitch", "Counter"],
    },
    configure,
};

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let outputs = p.int("outputs")?;
    if !(1..=MAX_OUTPUTS).contains(&outputs) {
        return Err(ParamError::new(
            "outputs",
            format!("expected an integer in 1..={MAX_OUTPUTS}, found {outputs}"),
        ));
    }
    let outputs = outputs as usize;
    Ok(Configured::cloning(
        Inputs::Fixed(1),
        outputs,
        Tee { outputs },
    ))
}

/// Copies each packet to every output; the last output gets the original.
#[derive(Debug, Clone)]
pub struct Tee {
    outputs: usize,
}

impl Element for Tee {
    fn push(&mut self, cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        let last = self.outputs.saturating_sub(1);
        for port in 0..last {
            for pkt in batch.iter() {
                match cx.clone_packet(pkt) {
                    Some(copy) => out.push(port, copy),
                    None => out.count_drop(NO_BUFFER, 1),
                }
            }
        }
        out.push_all(last, batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::Value;
    use crate::packet::{Packet, Pool};

    fn tee(outputs: usize) -> Tee {
        Tee { outputs }
    }

    fn frames(n: u8) -> Batch {
        (0..n)
            .map(|i| {
                let mut p = Packet::from_bytes(&[i; 64]);
                p.anno_mut()[1] = 70 + i as u32;
                p.set_timestamp(1000 + i as u64);
                p
            })
            .collect()
    }

    #[test]
    fn every_output_gets_every_packet_as_an_independent_copy() {
        let mut pool = Pool::new(16);
        let mut t = tee(3);
        let mut out = Output::new(3, 1);
        let mut b = frames(2);
        let mut cx = Context::new(&mut pool, 0, 0);
        t.push(&mut cx, 0, &mut b, &mut out);
        assert!(b.is_empty());
        assert_eq!(pool.available(), 16 - 4, "two copies per packet");
        for o in 0..3 {
            let got = out.batch(o);
            assert_eq!(got.len(), 2);
            for (i, p) in got.iter().enumerate() {
                assert_eq!(p.data(), &[i as u8; 64]);
                assert_eq!(p.anno()[1], 70 + i as u32);
                assert_eq!(p.timestamp(), 1000 + i as u64);
            }
        }
        // Rewriting one copy leaves the others alone.
        let mut o0 = out.take(0);
        o0[1].data_mut()[0] = 0xee;
        assert_eq!(out.batch(1)[1].data()[0], 1);
        assert_eq!(out.batch(2)[1].data()[0], 1);
        let mut o2 = out.take(2);
        o2[0].data_mut().fill(0x55);
        assert_eq!(out.batch(1)[0].data(), &[0; 64]);
        assert_eq!(o0[0].data(), &[0; 64]);
        assert_eq!(out.drops(NO_BUFFER), 0);
    }

    #[test]
    fn one_output_passes_the_original_without_copying() {
        let mut pool = Pool::new(4);
        let mut t = tee(1);
        let mut out = Output::new(1, 1);
        let mut b = frames(3);
        let mut cx = Context::new(&mut pool, 0, 0);
        t.push(&mut cx, 0, &mut b, &mut out);
        assert_eq!(out.batch(0).len(), 3);
        assert_eq!(pool.available(), 4);
    }

    #[test]
    fn copies_missing_for_an_empty_pool_are_counted() {
        let mut pool = Pool::new(1);
        let mut t = tee(3);
        let mut out = Output::new(3, 1);
        let mut b = frames(2);
        let mut cx = Context::new(&mut pool, 0, 0);
        t.push(&mut cx, 0, &mut b, &mut out);
        // Four copies wanted, one buffer available.
        assert_eq!(out.batch(0).len(), 1);
        assert_eq!(out.batch(1).len(), 0);
        assert_eq!(out.batch(2).len(), 2, "originals always go out");
        assert_eq!(out.drops(NO_BUFFER), 3);
        assert_eq!(pool.exhausted(), 3);
    }

    #[test]
    fn configure_checks_outputs() {
        let cx = ConfigCx {
            ports: &[],
            workers: 1,
            grace: crate::element::Grace::global(),
        };
        let mut p = Params::new();
        p.set("outputs", Value::Int(4));
        let c = (CLASS.configure)(&p, &cx).unwrap();
        assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(1), 4));
        p.set("outputs", Value::Int(0));
        assert_eq!((CLASS.configure)(&p, &cx).unwrap_err().param, "outputs");
    }
}
