//! Rejections of connections and of the graph as a whole: message and
//! exact line:column.

use super::tests::{drivers, PASS};
use super::tests_errors::{one, PORTS_AB, PORT_A};
use super::*;

#[test]
fn unknown_name_in_a_connection_suggests_the_nearest() {
    one(
        &format!("connections = [\"a -> count -> a\", \"b -> cuont\"]\n{PORTS_AB}[elements.count]\nclass = \"Pass\"\n"),
        1,
        41,
        "unknown element or port `cuont` (did you mean `count`?)",
    );
}

#[test]
fn output_and_input_numbers_out_of_range() {
    one(
        &format!("connections = [\"a -> s\", \"s[0] -> a\", \"s[2] -> a\"]\n{PORT_A}[elements.s]\nclass = \"Split\"\n"),
        1,
        41,
        "`s` (class `Split`) has 2 outputs (0..=1); output 2 does not exist",
    );
    one(
        &format!("connections = [\"a -> [1] m -> a\", \"b -> [2] m\"]\n{PORTS_AB}[elements.m]\nclass = \"Merge\"\n"),
        1,
        41,
        "`m` (class `Merge`) has 2 inputs (0..=1); input 2 does not exist",
    );
    one(
        &format!("connections = [\"a -> [1] p -> a\"]\n{PORT_A}[elements.p]\nclass = \"Pass\"\n"),
        1,
        22,
        "`p` (class `Pass`) has 1 input (0); input 1 does not exist",
    );
    one(
        &format!(
            "connections = [\"a -> g\", \"g -> a\"]\n{PORT_A}[elements.g]\nclass = \"Source\"\n"
        ),
        1,
        22,
        "`g` (class `Source`) has no inputs; nothing can send to it",
    );
    one(
        &format!(
            "connections = [\"a -> k\", \"k -> a\"]\n{PORT_A}[elements.k]\nclass = \"Sink\"\n"
        ),
        1,
        27,
        "`k` (class `Sink`) has no outputs; it cannot send to anything",
    );
}

#[test]
fn an_output_connected_twice() {
    one(
        &format!("connections = [\"a -> p -> a\", \"p -> b\"]\n{PORTS_AB}[elements.p]\nclass = \"Pass\"\n"),
        1,
        32,
        "output 0 of `p` is already connected (at t.toml:1:22); an output goes to exactly one place",
    );
}

#[test]
fn a_port_receive_side_connected_twice() {
    one(
        &format!("connections = [\"a -> p -> b\", \"a -> q -> b\"]\n{PORTS_AB}[elements.p]\nclass = \"Pass\"\n[elements.q]\nclass = \"Pass\"\n"),
        1,
        32,
        "the receive side of port `a` is already connected (at t.toml:1:17); a port feeds one place",
    );
}

#[test]
fn unconnected_outputs_suggest_discard() {
    let e = one(
        &format!(
            "connections = [\"a -> s\", \"s[1] -> a\"]\n{PORT_A}[elements.s]\nclass = \"Split\"\n"
        ),
        4,
        1,
        "output 0 of `s` (class `Split`) is not connected",
    );
    assert_eq!(
        e.help.as_deref(),
        Some("connect every output; to drop what it sends there, add \"s[0] -> discard\"")
    );
    one(
        &format!("connections = [\"a -> s\"]\n{PORT_A}[elements.s]\nclass = \"Split\"\n"),
        4,
        1,
        "outputs 0, 1 of `s` (class `Split`) are not connected",
    );
}

#[test]
fn outputs_wired_by_the_element_must_not_be_connected_again() {
    one(
        &format!("connections = [\"a -> f\", \"f -> a\", \"f[1] -> a\"]\n{PORT_A}[elements.f]\nclass = \"Fwd\"\nport = \"a\"\n"),
        1,
        27,
        "output 0 of `f` is already wired to port `a` by the element (class `Fwd`); remove this connection",
    );
}

#[test]
fn an_element_nothing_feeds() {
    let e = one(
        &format!("connections = [\"a -> p -> a\", \"q -> a\", \"g -> a\"]\n{PORT_A}[elements.p]\nclass = \"Pass\"\n[elements.q]\nclass = \"Pass\"\n[elements.g]\nclass = \"Source\"\n"),
        6,
        1,
        "nothing feeds `q` (class `Pass`): no connection leads to it",
    );
    assert_eq!(
        e.help.as_deref(),
        Some("connect something to it, as in \"a -> q\", or remove it")
    );
}

#[test]
fn cycles_are_reported_at_the_connection_closing_them() {
    let cfg = format!(
        "connections = [\"a -> m\", \"m -> p\", \"p -> q\", \"q -> [1] m\"]\n{PORT_A}[elements.m]\nclass = \"Merge\"\n[elements.p]\nclass = \"Pass\"\n[elements.q]\nclass = \"Pass\"\n"
    );
    one(
        &cfg,
        1,
        47,
        "cycle `m -> p -> q -> m`: a packet would loop forever",
    );
    let cfg = format!(
        "connections = [\"a -> [0] m\", \"m -> [1] m\"]\n{PORT_A}[elements.m]\nclass = \"Merge\"\n"
    );
    let e = one(&cfg, 1, 31, "cycle `m -> m`: a packet would loop forever");
    assert!(e.snippet.ends_with("^^^^^^^^^^"), "{}", e.snippet);
}

#[test]
fn misplaced_ports_and_numbers_in_connections() {
    let cfg = |c: &str| {
        format!("connections = [\"{c}\"]\n{PORTS_AB}[elements.p]\nclass = \"Pass\"\n[elements.q]\nclass = \"Pass\"\n")
    };
    let middle = "port `b` in the middle of a connection: a port can only start one (its receive side) or end one (its transmit side)";
    one(&cfg("a -> p -> b -> q -> a"), 1, 27, middle);
    let index = "port `a` takes no `[n]`: a port has one receive side and one transmit side";
    one(&cfg("a[0] -> p -> q -> b"), 1, 18, index);
    one(
        &cfg("a -> p -> q -> [0] b"),
        1,
        32,
        "port `b` takes no `[n]`: a port has one receive side and one transmit side",
    );
    let first = "input number before `p`, but nothing precedes it in this connection; write it on the receiving end, as in \"a -> [1] p\"";
    one(&cfg("[1] p -> q -> a"), 1, 17, first);
    let last = "output number after `q`, but nothing follows it in this connection; write it on the sending end, as in \"q[1] -> b\"";
    one(&cfg("a -> p -> q[0]"), 1, 28, last);
    one(
        &cfg("a -> p -> q -> a\", \"p"),
        1,
        37,
        "a connection needs at least two endpoints, as in \"p -> b\"",
    );
}

#[test]
fn connection_syntax_errors_point_inside_the_string_without_cascading() {
    let cfg = format!("connections = [\"a -> [x] p\"]\n{PORT_A}[elements.p]\nclass = \"Pass\"\n");
    one(&cfg, 1, 23, "expected an input number after `[`");
    // Escapes make positions inside the string unreliable: point at the string.
    let cfg = format!("connections = [\"a -> p -> a\", \"b\\u0020-> nope\"]\n{PORTS_AB}[elements.p]\nclass = \"Pass\"\n");
    one(&cfg, 1, 31, "unknown element or port `nope`");
    // Multi-line and literal strings map exactly.
    let cfg = format!("connections = [\"\"\"\nb -> nope\"\"\", 'a -> p -> a']\n{PORTS_AB}[elements.p]\nclass = \"Pass\"\n");
    one(&cfg, 2, 6, "unknown element or port `nope`");
    one(
        "connections = \"a -> b\"\n",
        1,
        15,
        "`connections` must be an array of strings like [\"a -> b\"], found the string \"a -> b\"",
    );
    one("connections = [\"a -> b\", 3]\n[ports.a]\ndriver = \"dummy\"\n[ports.b]\ndriver = \"dummy\"\n", 1, 26, "expected a connection string like \"a -> b\", found the integer 3");
}

#[test]
fn discard_needs_the_discard_class() {
    let mut r = Registry::empty();
    r.register(PASS);
    let cfg = format!("connections = [\"a -> p -> discard\", \"b -> q -> discard\"]\n{PORTS_AB}[elements.p]\nclass = \"Pass\"\n[elements.q]\nclass = \"Pass\"\n");
    let e = Config::parse_str(&cfg, "t.toml", &r, &drivers(), &[]).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!((e.0[0].line, e.0[0].col), (1, 27));
    assert_eq!(
        e.0[0].message,
        "`discard` needs the element class `Discard`, which is not registered"
    );
}

#[test]
fn a_port_without_receive_queues_cannot_start_a_connection() {
    one(
        "connections = [\"a -> b\", \"b -> a\"]\n[ports.a]\ndriver = \"dummy\"\n[ports.b]\ndriver = \"dummy\"\nqueues = 0\n",
        1,
        27,
        "port `b` cannot receive: as configured (dummy, file -) it has no receive queues",
    );
}
