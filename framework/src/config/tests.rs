//! Loader tests over a test-only registry: valid configs, overrides, the
//! `check` display and [`configure_element`]. Rejections are in
//! `tests_errors.rs`.

use super::*;
use crate::element::{
    ClassInfo, ConfigCx, Context, Element, ElementClass, Inputs, Output, ParamError, Params,
};
use crate::graph::Target;
use crate::packet::Batch;
use crate::port::{OpenPort, PortClass, PortError};

#[derive(Clone)]
struct Nop;

impl Element for Nop {
    fn push(&mut self, _: &mut Context<'_>, _: usize, _: &mut Batch, _: &mut Output) {}
}

const fn class(
    name: &'static str,
    params: &'static [ParamSpec],
    configure: fn(&Params, &ConfigCx<'_>) -> Result<Configured, ParamError>,
) -> ElementClass {
    ElementClass {
        info: ClassInfo {
            summary: "test class",
            params,
            ..crate::element::ClassInfo::bare(name)
        },
        configure,
    }
}

/// 1 input, 2 outputs. `ratio = 13` and a `names` item "bad" are rejected by configure.
const SPLIT_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "ratio",
        ty: ParamType::Int { min: 0, max: 100 },
        need: Need::Default("50"),
        doc: "percent to output 0",
    },
    ParamSpec {
        name: "names",
        ty: ParamType::List(&ParamType::Str),
        need: Need::Optional,
        doc: "labels",
    },
];

const SPLIT: ElementClass = class("Split", SPLIT_PARAMS, |p, _| {
    if p.int("ratio")? == 13 {
        return Err(ParamError::new("ratio", "13 is unlucky"));
    }
    for (i, n) in p.str_list("names")?.iter().enumerate() {
        if *n == "bad" {
            return Err(ParamError::item("names", i, "`bad` is not a label"));
        }
    }
    Ok(Configured::cloning(Inputs::Fixed(1), 2, Nop))
});

/// 1 input, 1 output.
const PASS_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "delay",
        ty: ParamType::Duration,
        need: Need::Default("\"1ms\""),
        doc: "delay",
    },
    ParamSpec {
        name: "mode",
        ty: ParamType::Choice(&["fast", "slow"]),
        need: Need::Default("\"fast\""),
        doc: "mode",
    },
];

pub(super) const PASS: ElementClass = class("Pass", PASS_PARAMS, |_, _| {
    Ok(Configured::cloning(Inputs::Fixed(1), 1, Nop))
});

/// Any inputs, no outputs.
const SINK: ElementClass = class("Sink", &[], |_, _| {
    Ok(Configured::cloning(Inputs::Any, 0, Nop))
});

/// Any inputs, no outputs: the implicit `discard`.
const DISCARD: ElementClass = class("Discard", &[], |_, _| {
    Ok(Configured::cloning(Inputs::Any, 0, Nop))
});

/// 2 inputs, 1 output.
const MERGE: ElementClass = class("Merge", &[], |_, _| {
    Ok(Configured::cloning(Inputs::Fixed(2), 1, Nop))
});

/// No inputs, 1 output (a generator).
const SOURCE: ElementClass = class("Source", &[], |_, _| {
    Ok(Configured::cloning(Inputs::Fixed(0), 1, Nop))
});

/// 1 input; output 0 wired to `port` by the element, output 1 free.
const FWD_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "port",
    ty: ParamType::PortRef,
    need: Need::Required,
    doc: "where to send",
}];

const FWD: ElementClass = class("Fwd", FWD_PARAMS, |p, cx| {
    let port = cx
        .port_index(p.str("port")?)
        .ok_or_else(|| ParamError::new("port", "no such port"))?;
    Ok(Configured::cloning(Inputs::Fixed(1), 2, Nop).with_port_output(0, port))
});

pub(super) fn registry() -> Registry {
    let mut r = Registry::empty();
    for c in [SPLIT, PASS, SINK, DISCARD, MERGE, SOURCE, FWD] {
        r.register(c);
    }
    r
}

#[derive(Debug)]
struct DummySpec {
    file: String,
    queues: usize,
}

impl PortSpec for DummySpec {
    fn rx_queues(&self) -> usize {
        self.queues
    }
    fn endless(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        format!("file {}", self.file)
    }
    fn open(&self, name: &str, _: usize, _: bool, _: bool) -> Result<OpenPort, PortError> {
        Err(PortError::other(name, "dummy ports do not open"))
    }
}

const DUMMY: PortClass = PortClass {
    name: "dummy",
    summary: "test port",
    params: &[
        ParamSpec {
            name: "file",
            ty: ParamType::Str,
            need: Need::Default("\"-\""),
            doc: "file",
        },
        ParamSpec {
            name: "queues",
            ty: ParamType::Int { min: 0, max: 8 },
            need: Need::Default("1"),
            doc: "rx queues",
        },
    ],
    configure: |p| {
        let file = p.str("file")?.to_string();
        if file == "fail" {
            return Err(ParamError::new("file", "cannot open `fail`"));
        }
        let queues = p.usize("queues")?;
        Ok(Box::new(DummySpec { file, queues }))
    },
};

pub(super) fn drivers() -> PortRegistry {
    let mut r = PortRegistry::default();
    r.register(DUMMY);
    r
}

pub(super) fn load_with(text: &str, overrides: &[&str]) -> Result<Config, ConfigErrors> {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Config::parse_str(text, "t.toml", &registry(), &drivers(), &o)
}

pub(super) fn load(text: &str) -> Result<Config, ConfigErrors> {
    load_with(text, &[])
}

/// A valid config used by several tests.
pub(super) const VALID: &str = r#"connections = [
  "left -> sp",
  "sp[0] -> p1 -> right",
  "sp [1] -> [1] m",
  "right -> [0] m",
  "m -> fw",
  "fw[1] -> discard",
]
[runtime]
workers = 2
burst = 64
clock = "packet"
[ports.left]
driver = "dummy"
file = "in.pcap"
[ports.right]
driver = "dummy"
queues = 2
[elements.sp]
class = "Split"
ratio = 10
[elements.p1]
class = "Pass"
[elements.m]
class = "Merge"
[elements.fw]
class = "Fwd"
port = "left"
"#;

fn el(node: usize, input: usize) -> Target {
    Target::Element { node, input }
}

#[test]
fn valid_config_resolves_to_the_expected_graph() {
    let c = load(VALID).unwrap();
    assert_eq!(c.path, "t.toml");
    assert_eq!(
        c.runtime,
        RuntimeConfig {
            workers: 2,
            cores: vec![0, 1],
            burst: 64,
            pool: 4096,
            max_frame: None,
            clock: Clock::Packet,
            on_panic: OnPanic::Drop,
            idle: Idle::Sleep,
        }
    );
    let g = &c.graph;
    assert_eq!(g.ports, ["left", "right"]);
    assert_eq!(g.sources, [Some(el(0, 0)), Some(el(2, 0))]);
    let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["sp", "p1", "m", "fw", "discard"]);
    let classes: Vec<&str> = g.nodes.iter().map(|n| n.class.name).collect();
    assert_eq!(classes, ["Split", "Pass", "Merge", "Fwd", "Discard"]);
    assert_eq!(g.nodes[0].outputs, [el(1, 0), el(2, 1)]);
    assert_eq!(g.nodes[1].outputs, [Target::Port(1)]);
    assert_eq!(g.nodes[2].outputs, [el(3, 0)]);
    assert_eq!(g.nodes[3].outputs, [Target::Port(0), el(4, 0)]);
    assert!(g.nodes[4].outputs.is_empty());
    assert_eq!(c.declared_nodes, 4);
    let use_: Vec<(&str, &str, bool, bool)> = c
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.driver.as_str(), p.rx_used, p.tx_used))
        .collect();
    assert_eq!(
        use_,
        [
            ("left", "dummy", true, true),
            ("right", "dummy", true, true)
        ]
    );
    assert_eq!(c.ports[0].spec.describe(), "file in.pcap");
    assert_eq!(c.ports[1].spec.rx_queues(), 2);
}

#[test]
fn port_to_port_and_unused_sides() {
    let c = load(
        "connections = [\"a -> b\"]\n[ports.a]\ndriver = \"dummy\"\n[ports.b]\ndriver = \"dummy\"\n[ports.c]\ndriver = \"dummy\"\n",
    )
    .unwrap();
    assert_eq!(c.graph.sources, [Some(Target::Port(1)), None, None]);
    let use_: Vec<(bool, bool)> = c.ports.iter().map(|p| (p.rx_used, p.tx_used)).collect();
    assert_eq!(use_, [(true, false), (false, true), (false, false)]);
    assert!(c.graph.nodes.is_empty());
    assert_eq!(c.runtime, RuntimeConfig::default());
}

#[test]
fn element_named_discard_is_used_instead_of_the_implicit_one() {
    let c = load(
        "connections = [\"a -> discard\"]\n[ports.a]\ndriver = \"dummy\"\n[elements.discard]\nclass = \"Sink\"\n",
    )
    .unwrap();
    assert_eq!(c.graph.nodes.len(), 1);
    assert_eq!(c.graph.nodes[0].class.name, "Sink");
    assert_eq!(c.declared_nodes, 1);
}

#[test]
fn overrides_apply_on_top_of_the_file() {
    let c = load_with(
        VALID,
        &[
            "runtime.workers=3",
            "runtime.cores = [4, 5, 6]",
            "ports.left.file=other.pcap",
            "ports.right.file=inf",
            "elements.sp.ratio=20",
        ],
    )
    .unwrap();
    assert_eq!(c.runtime.workers, 3);
    assert_eq!(c.runtime.cores, [4, 5, 6]);
    assert_eq!(c.ports[0].spec.describe(), "file other.pcap");
    assert_eq!(c.ports[1].spec.describe(), "file inf");
    // An override may add an element and rewire the graph.
    let c = load_with(
        VALID,
        &[
            "elements.extra.class=Pass",
            r#"connections=["left -> sp", "sp[0] -> p1 -> right", "sp[1] -> [1] m", "right -> extra -> m", "m -> fw", "fw[1] -> discard"]"#,
        ],
    )
    .unwrap();
    assert_eq!(c.graph.nodes[4].name, "extra");
    assert_eq!(c.graph.sources[1], Some(el(4, 0)));
    assert_eq!(c.graph.nodes[4].outputs, [el(2, 0)]);
}

#[test]
fn override_errors_point_at_the_override() {
    let e = load_with(VALID, &["runtime.workers=2", "runtime.burst=0"]).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    let e = &e.0[0];
    assert_eq!((e.file.as_str(), e.line, e.col), ("<override 2>", 1, 15));
    assert_eq!(
        e.message,
        "invalid value for `burst`: expected an integer in 1..=256, found the integer 0"
    );
    assert_eq!(
        e.to_string(),
        "error: invalid value for `burst`: expected an integer in 1..=256, found the integer 0\n  --> <override 2>:1:15\n   |\n 1 | runtime.burst=0\n   |               ^"
    );
    let e = load_with(VALID, &["runtime.workers"]).unwrap_err();
    assert_eq!((e.0[0].file.as_str(), e.0[0].col), ("<override 1>", 1));
    assert!(e.0[0].message.contains("missing `=`"));
    // A connection given by an override points inside it.
    let e = load_with(VALID, &[r#"connections=["left -> sp", "sp -> nope"]"#]).unwrap_err();
    let e = e.0.iter().find(|e| e.message.contains("nope")).unwrap();
    assert_eq!((e.file.as_str(), e.line, e.col), ("<override 1>", 1, 35));
}

#[test]
fn check_display_is_readable_and_stable() {
    let c = load(VALID).unwrap();
    let want = "\
config t.toml
runtime: 2 workers (cores 0, 1), burst 64, pool 4096, clock packet, on_panic drop, idle sleep
ports:
  left: dummy, file in.pcap
    rx: 1 queue -> sp
    tx: from fw[0]
  right: dummy, file -
    rx: 2 queues -> m
    tx: from p1[0]
elements:
  sp: Split, 1 input, 2 outputs
    [0] -> p1
    [1] -> [1] m
  p1: Pass, 1 input, 1 output
    [0] -> port right
  m: Merge, 2 inputs, 1 output
    [0] -> fw
  fw: Fwd, 1 input, 2 outputs
    [0] -> port left (wired by the element)
    [1] -> discard
  discard: Discard (implicit), any inputs, no outputs
";
    assert_eq!(c.to_string(), want);
}

#[test]
fn configure_element_takes_a_body_or_a_whole_table() {
    let r = registry();
    let ports = ["left".to_string()];
    let c = configure_element(&r, &ports, "Split", "ratio = 5").unwrap();
    assert_eq!((c.inputs, c.outputs), (Inputs::Fixed(1), 2));
    let c = configure_element(
        &r,
        &ports,
        "Fwd",
        "[elements.f]\nclass = \"Fwd\"\nport = \"left\"\n",
    )
    .unwrap();
    assert_eq!(c.port_outputs, [(0, 0)]);
    let e = configure_element(
        &r,
        &ports,
        "Fwd",
        "[elements.f]\nclass = \"Split\"\nport = \"left\"\n",
    )
    .unwrap_err();
    assert_eq!((e.0[0].line, e.0[0].col), (2, 9));
    assert!(e.0[0].message.contains("expected `class = \"Fwd\"`"), "{e}");
    let e = configure_element(&r, &ports, "Split", "ratio = 13").unwrap_err();
    assert_eq!(
        (e.0[0].file.as_str(), e.0[0].line, e.0[0].col),
        ("<snippet>", 1, 9)
    );
    assert_eq!(e.0[0].message, "invalid value for `ratio`: 13 is unlucky");
    let e = configure_element(&r, &ports, "Nope", "").unwrap_err();
    assert!(e.0[0].message.starts_with("unknown element class `Nope`"));
}

#[test]
fn load_reads_the_file_and_reports_unreadable_ones() {
    let dir = std::env::temp_dir().join(format!("hpio-nf-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("x.toml");
    std::fs::write(&path, VALID).unwrap();
    let c = Config::load(
        &path,
        &registry(),
        &drivers(),
        &["runtime.workers=1".into()],
    )
    .unwrap();
    assert_eq!(c.path, path.display().to_string());
    assert_eq!(c.runtime.workers, 1);
    std::fs::remove_dir_all(&dir).unwrap();
    let e = Config::load(&path, &registry(), &drivers(), &[]).unwrap_err();
    assert_eq!((e.0[0].line, e.0[0].col), (0, 0));
    assert!(
        e.0[0].message.starts_with("cannot read the config: "),
        "{e}"
    );
    assert!(
        e.to_string().contains(&format!("  --> {}", path.display())),
        "{e}"
    );
}
