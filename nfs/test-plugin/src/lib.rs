//! A plugin for hpio-nf's tests: `PanicOnMark`, an element that forwards
//! every packet but panics where a test asks it to, so that the tests can
//! show what hpio-nf does with a panic raised inside a dynamic plugin (whose
//! standard library is its own copy).
#![deny(unsafe_code)]

use hpio_nf::prelude::*;

hpio_nf::counters! {
    COUNTERS = [
        FORWARDED = "forwarded": "Packets forwarded",
    ]
}

hpio_nf::choice! {
    /// Where to panic (`panic_in`).
    enum PanicIn {
        Push = "push",
        Configure = "configure",
        Replica = "replica",
    }
}

/// The `PanicOnMark` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "PanicOnMark",
        summary: "Forwards packets; panics on a marked one (for tests)",
        description: "\
Forwards every packet to output 0, but panics on a frame that contains the
bytes of `mark`, or while configuring (`panic_in = \"configure\"`) or
building its replica (`panic_in = \"replica\"`). For hpio-nf's tests only.",
        inputs: PortCount::Fixed(1),
        outputs: PortCount::Fixed(1),
        params: &[
            ParamSpec {
                name: "mark",
                ty: ParamType::Str,
                need: Need::Default("\"PANIC\""),
                doc: "Bytes whose presence in a frame makes the element panic",
            },
            ParamSpec {
                name: "panic_in",
                ty: ParamType::Choice(PanicIn::NAMES),
                need: Need::Default("\"push\""),
                doc: "Where to panic",
            },
        ],
        drop_reasons: &[],
        counters: COUNTERS,
        handlers: &[],
        example: "[elements.boom]\nclass = \"PanicOnMark\"\nmark = \"PANIC\"",
        see_also: &[],
    },
    configure,
};

fn configure(p: &Params, _cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let mark = p.str("mark")?.as_bytes().to_vec();
    let at = p.choice::<PanicIn>("panic_in")?;
    log::info!("PanicOnMark: configured to panic in {}", at.name());
    if at == PanicIn::Configure {
        panic!("asked to panic while configuring");
    }
    let in_replica = at == PanicIn::Replica;
    Ok(Configured::new(Inputs::Fixed(1), 1, move |worker| {
        if in_replica {
            panic!("asked to panic building the replica of worker {worker}");
        }
        Box::new(PanicOnMark {
            mark: mark.clone(),
            forwarded: 0,
        })
    }))
}

struct PanicOnMark {
    mark: Vec<u8>,
    forwarded: u64,
}

impl Element for PanicOnMark {
    fn push(&mut self, _cx: &mut Context<'_>, _input: usize, batch: &mut Batch, out: &mut Output) {
        for pkt in batch.drain(..) {
            if pkt.data().windows(self.mark.len()).any(|w| w == self.mark) {
                panic!("found the mark in a {}-byte frame", pkt.len());
            }
            self.forwarded += 1;
            out.push(0, pkt);
        }
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        report(FORWARDED, self.forwarded);
    }
}

/// Registers `PanicOnMark`.
pub fn register(r: &mut Registry) {
    r.register(CLASS);
}

hpio_nf::export_plugin!(register);
