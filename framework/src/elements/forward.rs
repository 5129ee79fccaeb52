//! `Forward`: hands packets to a port's transmit side.

use crate::element::{
    ClassInfo, ConfigCx, Configured, Context, Element, ElementClass, Inputs, Need, Output,
    ParamError, ParamSpec, ParamType, Params, PortCount,
};
use crate::packet::Batch;

/// The `Forward` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "Forward",
        summary: "Sends packets out of a port",
        description: "\
Queues every packet it receives for transmission on `port`; the worker sends
the queued packets once per burst. Its output is wired by the element itself
to the transmit side of `port` (do not connect it in `connections`).

Notes: `x -> fwd` with `fwd` a Forward to port `eth1` is equivalent to writing
`x -> eth1` in a connection; the element exists so that a port can be named as
a parameter (for example when generating configs) and so that the packets sent
show up in the element counters under a name of your choosing.",
        inputs: PortCount::Any,
        outputs: PortCount::Fixed(1),
        params: &[ParamSpec {
            name: "port",
            ty: ParamType::PortRef,
            need: Need::Required,
            doc: "Name of the port (in `[ports]`) whose transmit side gets the packets",
        }],
        drop_reasons: &[],
        counters: &[],
        handlers: &[],
        example: "\
[elements.out]
class = \"Forward\"
port = \"eth1\"",
        see_also: &["Discard", "Tee"],
    },
    configure,
};

fn configure(p: &Params, cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let name = p.str("port")?;
    let port = cx.port_index(name).ok_or_else(|| {
        let known = if cx.ports.is_empty() {
            "the config declares no ports".to_string()
        } else {
            format!("known ports: {}", cx.ports.join(", "))
        };
        ParamError::new("port", format!("no port named {name:?} ({known})"))
    })?;
    Ok(Configured::cloning(Inputs::Any, 1, Forward).with_port_output(0, port))
}

/// Moves every packet to its single output, which leads to a port.
#[derive(Debug, Clone, Copy)]
pub struct Forward;

impl Element for Forward {
    #[inline]
    fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        out.push_all(0, batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::Value;
    use crate::packet::{Packet, Pool};

    fn ports() -> Vec<String> {
        vec!["eth0".into(), "eth1".into()]
    }

    #[test]
    fn wires_its_output_to_the_named_port() {
        let ports = ports();
        let cx = ConfigCx {
            ports: &ports,
            workers: 1,
            grace: crate::element::Grace::global(),
        };
        let mut p = Params::new();
        p.set("port", Value::Str("eth1".into()));
        let c = (CLASS.configure)(&p, &cx).unwrap();
        assert_eq!((c.inputs, c.outputs), (Inputs::Any, 1));
        assert_eq!(c.port_outputs, vec![(0, 1)]);

        let mut e = c.instantiate(0);
        let mut pool = Pool::new(0);
        let mut cx = Context::new(&mut pool, 0, 0);
        let mut out = Output::new(1, 0);
        let mut b: Batch = (0..3).map(|i| Packet::from_bytes(&[i; 60])).collect();
        e.push(&mut cx, 0, &mut b, &mut out);
        assert!(b.is_empty());
        assert_eq!(out.batch(0).len(), 3);
        assert_eq!(out.batch(0)[2].data(), &[2; 60]);
    }

    #[test]
    fn an_unknown_port_is_a_parameter_error() {
        let ports = ports();
        let cx = ConfigCx {
            ports: &ports,
            workers: 1,
            grace: crate::element::Grace::global(),
        };
        let mut p = Params::new();
        p.set("port", Value::Str("eth7".into()));
        let e = (CLASS.configure)(&p, &cx).unwrap_err();
        assert_eq!(e.param, "port");
        assert!(e.message.contains("eth7") && e.message.contains("eth0, eth1"));
        let e = (CLASS.configure)(&Params::new(), &cx).unwrap_err();
        assert!(e.message.contains("missing"));
    }
}
