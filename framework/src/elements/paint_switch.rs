//! `PaintSwitch`: routes packets by their paint color.

use super::paint::PAINT_ANNO;
use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Need, Output,
    ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::packet::Batch;

/// Most outputs a `PaintSwitch` may have (one per possible color).
const MAX_OUTPUTS: i64 = 256;

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// The packet's color has no output.
        NO_OUTPUT = "no-output",
    ]
}

/// The `PaintSwitch` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "PaintSwitch",
        summary: "Sends each packet to the output numbered by its paint color",
        description: "\
Reads annotation word 0 (the paint color set by `Paint`) of every packet and
sends a packet of color c to output c.

Notes: a packet whose color is `outputs` or more is dropped with reason
`no-output`. Packets that were never painted have color 0. Pair it with Paint
to send packets that went through shared elements back towards the port they
came from.",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Param("outputs"),
        params: &[ParamSpec {
            name: "outputs",
            ty: ParamType::Int {
                min: 1,
                max: MAX_OUTPUTS,
            },
            need: Need::Required,
            doc: "Number of outputs; colors 0 to outputs-1 each have one",
        }],
        drop_reasons: DROP_REASONS,
        counters: &[],
        handlers: &[],
        example: "\
[elements.by_color]
class = \"PaintSwitch\"
outputs = 2",
        see_also: &["Paint", "Tee"],
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
    Ok(Configured::cloning(
        Inputs::Fixed(1),
        outputs as usize,
        PaintSwitch {
            outputs: outputs as usize,
        },
    ))
}

/// Routes each packet to the output given by its paint color.
#[derive(Debug, Clone)]
pub struct PaintSwitch {
    outputs: usize,
}

impl Element for PaintSwitch {
    fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        for pkt in batch.drain(..) {
            let color = pkt.anno()[PAINT_ANNO] as usize;
            if color < self.outputs {
                out.push(color, pkt);
            } else {
                out.drop(pkt, NO_OUTPUT);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::Value;
    use crate::packet::{Packet, Pool};

    #[test]
    fn routes_by_color_and_drops_colors_without_output() {
        let cx = ConfigCx {
            ports: &[],
            workers: 1,
            grace: crate::element::Grace::global(),
        };
        let mut p = Params::new();
        p.set("outputs", Value::Int(3));
        let c = (CLASS.configure)(&p, &cx).unwrap();
        assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(1), 3));
        let mut e = c.instantiate(0);

        let colors = [2u32, 0, 1, 3, 2, 255, u32::MAX, 0];
        let mut b: Batch = colors
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let mut p = Packet::from_bytes(&[i as u8; 60]);
                p.anno_mut()[PAINT_ANNO] = c;
                p
            })
            .collect();
        let mut pool = Pool::new(0);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut out = Output::new(3, 1);
        e.push(&mut cx, 0, &mut b, &mut out);
        assert!(b.is_empty());
        let ids = |o: usize| -> Vec<u8> { out.batch(o).iter().map(|p| p.data()[0]).collect() };
        assert_eq!(ids(0), [1, 7]);
        assert_eq!(ids(1), [2]);
        assert_eq!(ids(2), [0, 4]);
        assert_eq!(out.drops(NO_OUTPUT), 3);
    }

    #[test]
    fn outputs_must_be_positive() {
        let cx = ConfigCx {
            ports: &[],
            workers: 1,
            grace: crate::element::Grace::global(),
        };
        let mut p = Params::new();
        p.set("outputs", Value::Int(0));
        assert_eq!((CLASS.configure)(&p, &cx).unwrap_err().param, "outputs");
        assert!((CLASS.configure)(&Params::new(), &cx).is_err());
    }
}
