//! Every rejection of the loader: its message and exact line:column.

use super::tests::load;
use super::*;

/// (line, col, message) of every error.
pub(super) fn errs(text: &str) -> Vec<(usize, usize, String)> {
    let e = load(text).expect_err("config should be rejected");
    e.iter()
        .map(|e| (e.line, e.col, e.message.clone()))
        .collect()
}

/// The one error of `text`, asserted to be at `line:col` with `message`.
#[track_caller]
pub(super) fn one(text: &str, line: usize, col: usize, message: &str) -> ConfigError {
    let e = load(text).expect_err("config should be rejected");
    assert_eq!(e.0.len(), 1, "expected one error, got:\n{e}");
    let got = &e.0[0];
    assert_eq!(
        (got.line, got.col, got.message.as_str()),
        (line, col, message),
        "\n{got}"
    );
    got.clone()
}

pub(super) const PORT_A: &str = "[ports.a]\ndriver = \"dummy\"\n";
pub(super) const PORTS_AB: &str = "[ports.a]\ndriver = \"dummy\"\n[ports.b]\ndriver = \"dummy\"\n";

#[test]
fn unknown_class_suggests_the_nearest_and_does_not_cascade() {
    let e = one(
        &format!("connections = [\"a -> x -> a\"]\n{PORT_A}[elements.x]\nclass = \"Pas\"\n"),
        5,
        9,
        "unknown element class `Pas` (did you mean `Pass`?)",
    );
    assert_eq!(
        e.to_string(),
        "error: unknown element class `Pas` (did you mean `Pass`?)\n  --> t.toml:5:9\n   |\n 5 | class = \"Pas\"\n   |         ^^^^^"
    );
    one(
        &format!("connections = [\"a -> x -> a\"]\n{PORT_A}[elements.x]\nkind = 1\n"),
        4,
        1,
        "element `x` has no `class`",
    );
    one(
        &format!("connections = [\"a -> x -> a\"]\n{PORT_A}[elements.x]\nclass = 1\n"),
        5,
        9,
        "`class` must be a string, found the integer 1",
    );
}

#[test]
fn unknown_driver_suggests_the_nearest() {
    one(
        "connections = [\"a -> a\"]\n[ports.a]\ndriver = \"dumy\"\n",
        3,
        10,
        "unknown port driver `dumy` (did you mean `dummy`?); expected one of: dummy",
    );
    one(
        "[ports.a]\nfile = \"x\"\n",
        1,
        1,
        "port `a` has no `driver`; expected one of: dummy",
    );
}

#[test]
fn unknown_parameters() {
    let base = format!("connections = [\"a -> p -> a\"]\n{PORT_A}[elements.p]\nclass = \"Pass\"\n");
    one(
        &format!("{base}dealy = \"2ms\"\n"),
        6,
        1,
        "unknown parameter `dealy` for class `Pass` (did you mean `delay`?); expected one of: delay, mode",
    );
    one(
        "[ports.a]\ndriver = \"dummy\"\nfil = \"x\"\n",
        3,
        1,
        "unknown parameter `fil` for driver `dummy` (did you mean `file`?); expected one of: file, queues",
    );
    one(
        "connections = [\"a -> s -> a\"]\n[ports.a]\ndriver = \"dummy\"\n[elements.s]\nclass = \"Sink\"\nx = 1\n",
        6,
        1,
        "unknown parameter `x` for class `Sink`; it takes none",
    );
}

#[test]
fn connections_after_a_table_get_a_hint() {
    let e = one(
        &format!("{PORT_A}[elements.p]\nclass = \"Pass\"\nconnections = [\"a -> p -> a\"]\n"),
        5,
        1,
        "unknown parameter `connections` for class `Pass`; expected one of: delay, mode",
    );
    assert_eq!(
        e.help.as_deref(),
        Some("top-level keys such as `connections` must come before the first [table] header")
    );
    assert!(e.to_string().ends_with("\n   = help: top-level keys such as `connections` must come before the first [table] header"));
}

#[test]
fn wrongly_typed_parameters() {
    let base = format!("connections = [\"a -> p -> a\"]\n{PORT_A}[elements.p]\nclass = \"Pass\"\n");
    one(
        &format!("{base}mode = 3\n"),
        6,
        8,
        "invalid value for `mode`: expected one of \"fast\", \"slow\", found the integer 3",
    );
    one(
        &format!("{base}delay = \"soon\"\n"),
        6,
        9,
        "invalid value for `delay`: expected a duration (seconds, or a string like \"250ms\"), found the string \"soon\"",
    );
    one(
        "[ports.a]\ndriver = \"dummy\"\nqueues = 9\n",
        3,
        10,
        "invalid value for `queues`: expected an integer in 0..=8, found the integer 9",
    );
}

#[test]
fn missing_required_parameter_points_at_the_table_header() {
    let e = one(
        &format!(
            "connections = [\"a -> f\", \"f[1] -> a\"]\n{PORT_A}[elements.f]\nclass = \"Fwd\"\n"
        ),
        4,
        1,
        "missing required parameter `port` for class `Fwd` (the name of a port: where to send)",
    );
    assert!(
        e.snippet.ends_with(" 4 | [elements.f]\n   | ^^^^^^^^^^^^"),
        "{}",
        e.snippet
    );
}

#[test]
fn configure_errors_point_at_the_value_or_item() {
    let base = format!("connections = [\"a -> s\", \"s[0] -> a\", \"s[1] -> a\"]\n{PORT_A}[elements.s]\nclass = \"Split\"\n");
    one(
        &format!("{base}ratio = 13\n"),
        6,
        9,
        "invalid value for `ratio`: 13 is unlucky",
    );
    one(
        &format!("{base}names = [\"ok\", \"bad\"]\n"),
        6,
        16,
        "invalid item 1 of `names`: `bad` is not a label",
    );
    one(
        "[ports.a]\ndriver = \"dummy\"\nfile = \"fail\"\n",
        3,
        8,
        "invalid value for `file`: cannot open `fail`",
    );
}

#[test]
fn names_shared_by_a_port_and_an_element() {
    one(
        &format!("connections = [\"a -> a\"]\n{PORT_A}[elements.a]\nclass = \"Pass\"\n"),
        4,
        11,
        "`a` names both a port (at t.toml:2:8) and an element; names must be unique",
    );
}

#[test]
fn invalid_names() {
    one(
        "[ports.\"a-b\"]\ndriver = \"dummy\"\n",
        1,
        8,
        "invalid name `a-b`: names are letters, digits and `_`, not starting with a digit",
    );
    one(
        "[elements.2x]\nclass = \"Pass\"\n",
        1,
        11,
        "invalid name `2x`: names are letters, digits and `_`, not starting with a digit",
    );
}

#[test]
fn runtime_values_out_of_range() {
    assert_eq!(
        errs("[runtime]\nworkers = 0\nburst = 300\n"),
        [
            (
                2,
                11,
                "invalid value for `workers`: expected an integer in 1..=1024, found the integer 0"
                    .to_string()
            ),
            (
                3,
                9,
                "invalid value for `burst`: expected an integer in 1..=256, found the integer 300"
                    .to_string()
            ),
        ]
    );
    one(
        "[runtime]\nworkers = 2\ncores = [1]\n",
        3,
        9,
        "`cores` lists 1 core but `workers` is 2; give one core per worker",
    );
    one(
        "[runtime]\ncores = [1, -1]\n",
        2,
        13,
        "invalid item 1 of `cores`: expected an integer in 0..=65535, found the integer -1",
    );
    let pool = "`pool` (100) must be at least twice `burst` (64): a worker holds one burst while it receives the next";
    one("[runtime]\nburst = 64\npool = 100\n", 3, 8, pool);
    one("[runtime]\npool = 40\n", 2, 8, "`pool` (40) must be at least twice `burst` (32): a worker holds one burst while it receives the next");
    one(
        "[runtime]\nclock = \"wall\"\n",
        2,
        9,
        "invalid value for `clock`: expected one of \"system\", \"packet\", found \"wall\"",
    );
    one("[runtime]\non_panic = \"stpo\"\n", 2, 12, "invalid value for `on_panic`: expected one of \"drop\", \"stop\", found \"stpo\" (did you mean `stop`?)");
    one(
        "[runtime]\nidle = \"nap\"\n",
        2,
        8,
        "invalid value for `idle`: expected one of \"sleep\", \"spin\", found \"nap\"",
    );
}

#[test]
fn unknown_keys_anywhere() {
    let e = one(
        "workers = 2\n",
        1,
        1,
        "unknown top-level key `workers`; expected one of: plugins, connections, runtime, ports, elements",
    );
    assert_eq!(
        e.help.as_deref(),
        Some("`workers` is a runtime setting: put it in the [runtime] table")
    );
    one(
        "conections = []\n",
        1,
        1,
        "unknown top-level key `conections` (did you mean `connections`?); expected one of: plugins, connections, runtime, ports, elements",
    );
    one(
        "[runtime]\nworker = 2\n",
        2,
        1,
        "unknown key `worker` in [runtime] (did you mean `workers`?); expected one of: workers, cores, burst, pool, max_frame, clock, on_panic, idle",
    );
    one(
        "runtime = 3\n",
        1,
        11,
        "`runtime` must be a table ([runtime] or [runtime.NAME]), found the integer 3",
    );
    one(
        "[ports]\na = 3\n",
        2,
        5,
        "port `a` must be a table ([ports.a]), found the integer 3",
    );
}

#[test]
fn toml_syntax_errors_stop_early_with_a_position() {
    let e = load("connections = [\"a -> b\"\n[ports.a]\n").unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert!(
        e.0[0].message.starts_with("invalid TOML: "),
        "{}",
        e.0[0].message
    );
    assert_eq!(e.0[0].line, 2, "{e}");
    let e = load("[ports.a]\ndriver = \"dummy\"\n[ports.a]\n").unwrap_err();
    assert_eq!((e.0[0].line, e.0[0].col), (3, 8), "{e}");
}

#[test]
fn independent_errors_are_all_reported_in_order() {
    let cfg = "connections = [\"a -> x -> a\", \"a -> y\"]\n[ports.a]\ndriver = \"dumy\"\n[elements.x]\nclass = \"Pas\"\n[elements.y]\nclass = \"Pass\"\nmode = \"medium\"\n[runtime]\nburst = 0\n";
    let e = errs(cfg);
    let want = [
        (
            3,
            10,
            "unknown port driver `dumy` (did you mean `dummy`?); expected one of: dummy",
        ),
        (5, 9, "unknown element class `Pas` (did you mean `Pass`?)"),
        (
            8,
            8,
            "invalid value for `mode`: expected one of \"fast\", \"slow\", found \"medium\"",
        ),
        (
            10,
            9,
            "invalid value for `burst`: expected an integer in 1..=256, found the integer 0",
        ),
    ];
    let got: Vec<(usize, usize, &str)> = e.iter().map(|(l, c, m)| (*l, *c, m.as_str())).collect();
    assert_eq!(got, want);
    let all = load(cfg).unwrap_err().to_string();
    assert!(
        all.ends_with("\n\nerror: 4 problems in the config"),
        "{all}"
    );
}
