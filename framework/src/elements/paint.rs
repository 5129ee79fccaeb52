//! `Paint`: marks packets with a color annotation.

use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Need, Output,
    ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::packet::Batch;

/// Index of the annotation word holding the paint color.
pub const PAINT_ANNO: usize = crate::packet::anno::PAINT;

/// The `Paint` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "Paint",
        summary: "Sets the paint annotation of every packet to a color",
        description: "\
Sets annotation word 0 (the paint color) of every packet to `color` and sends
it to output 0. Packets keep their annotations through the graph (copies made
by Tee too), so an element further down, typically `PaintSwitch`, can tell
which path a packet came from.

Notes: the usual Click idiom for flows that merge and split again: paint the
packets of each input port with its own color, run them through shared
elements, then send each color back out of its own port with PaintSwitch.",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Fixed(1),
        params: &[ParamSpec {
            name: "color",
            ty: ParamType::Int { min: 0, max: 255 },
            need: Need::Required,
            doc: "Color written to annotation word 0",
        }],
        drop_reasons: &[],
        counters: &[],
        handlers: &[],
        example: "\
[elements.from_lan]
class = \"Paint\"
color = 1",
        see_also: &["PaintSwitch", "Tee"],
    },
    configure,
};

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let color = p.int("color")?;
    let color = u8::try_from(color).map_err(|_| {
        ParamError::new(
            "color",
            format!("expected an integer in 0..=255, found {color}"),
        )
    })?;
    Ok(Configured::cloning(
        Inputs::Fixed(1),
        1,
        Paint {
            color: color as u32,
        },
    ))
}

/// Writes its color into annotation word [`PAINT_ANNO`].
#[derive(Debug, Clone)]
pub struct Paint {
    color: u32,
}

impl Element for Paint {
    #[inline]
    fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        for p in batch.iter_mut() {
            p.anno_mut()[PAINT_ANNO] = self.color;
        }
        out.push_all(0, batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::Value;
    use crate::packet::{Packet, Pool};

    #[test]
    fn paints_every_packet_and_keeps_other_annotations() {
        let cx = ConfigCx {
            ports: &[],
            workers: 1,
            grace: crate::element::Grace::global(),
        };
        let mut p = Params::new();
        p.set("color", Value::Int(200));
        let c = (CLASS.configure)(&p, &cx).unwrap();
        assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(1), 1));
        let mut e = c.instantiate(0);

        let mut pool = Pool::new(0);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut out = Output::new(1, 0);
        let mut b: Batch = (0..3)
            .map(|i| {
                let mut p = Packet::from_bytes(&[0; 60]);
                p.anno_mut()[0] = 7;
                p.anno_mut()[2] = i;
                p
            })
            .collect();
        e.push(&mut cx, 0, &mut b, &mut out);
        let got = out.batch(0);
        assert_eq!(got.len(), 3);
        for (i, p) in got.iter().enumerate() {
            assert_eq!(p.anno(), &[200, 0, i as u32, 0]);
        }
    }

    #[test]
    fn color_out_of_range_is_a_parameter_error() {
        let cx = ConfigCx {
            ports: &[],
            workers: 1,
            grace: crate::element::Grace::global(),
        };
        let mut p = Params::new();
        p.set("color", Value::Int(256));
        let e = (CLASS.configure)(&p, &cx).unwrap_err();
        assert_eq!(e.param, "color");
        assert!(e.message.contains("256"));
        assert!((CLASS.configure)(&Params::new(), &cx).is_err());
    }
}
