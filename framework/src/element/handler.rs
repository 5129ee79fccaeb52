//! Handlers: named ways for an operator to read an element's state or change
//! it while the graph runs (Click's read and write handlers).
//!
//! A class lists its handlers in [`ClassInfo::handlers`](super::ClassInfo);
//! its replicas answer them in [`Element::read`](super::Element::read) and
//! [`Element::write`](super::Element::write). The runtime calls a handler on
//! every worker's replica, between two bursts of that worker (a message to
//! each worker, no lock on the data path), and combines the answers as the
//! handler's [`Combine`] says; a [`Combine::Once`] handler of state the
//! replicas share runs on worker 0's replica only. Answers are JSON values, so that `hpio-nf
//! ctl` can print them as tables and scripts can read them as they are.

/// Builds an [`Answer`]: `json!({"rate": 10.0, "burst": 20})` (serde_json's
/// macro, re-exported so that element crates and plugins need not depend on
/// serde_json themselves).
pub use serde_json::json;

/// An answer of a handler: any JSON value (a table is an array of objects).
pub type Answer = serde_json::Value;

/// What a handler returns: its answer, or an error for the operator
/// (a bad argument, say what was expected).
pub type HandlerResult = Result<Answer, String>;

/// Whether a handler only reads or may change the element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HandlerKind {
    /// Reads state; `ctl show ELEMENT` calls every read handler.
    Read,
    /// Changes state (takes an argument, possibly empty).
    Write,
}

/// How the answers of the workers' replicas make one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// Each replica answers an array of rows (objects); the answer is all of
    /// them, each row with a `"worker"` field added (tables of per-worker
    /// state: a flow table, a MAC table).
    Rows,
    /// Numbers are added up, field by field in objects (counts).
    Sum,
    /// Every replica should answer the same (configuration such as a rule
    /// set); the answer is that value, or an object of the answers by
    /// worker when they differ.
    Same,
    /// The replicas share this state (one table all workers read): the
    /// handler runs on one replica only, worker 0's, and its answer is the
    /// answer. A write changes the shared state once, and what it writes
    /// is then seen by every worker.
    Once,
}

/// The declaration of one handler, listed in the class's manual.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerSpec {
    /// Name used with `hpio-nf ctl read|write ELEMENT NAME`.
    pub name: &'static str,
    /// Read or write.
    pub kind: HandlerKind,
    /// How answers from the workers combine.
    pub combine: Combine,
    /// The argument a write handler takes (`""` for none), as usage text:
    /// `"RULE"`, `"INDEX RULE"`.
    pub arg: &'static str,
    /// One line: what it answers or does.
    pub doc: &'static str,
}

/// What a handler may use besides its element: the time and the worker.
#[derive(Debug, Clone, Copy)]
pub struct HandlerCx {
    pub(crate) now_ns: u64,
    pub(crate) worker: usize,
}

impl HandlerCx {
    /// A context at time `now_ns` on worker `worker` (the runtime makes
    /// these; tests may too).
    pub fn new(now_ns: u64, worker: usize) -> HandlerCx {
        HandlerCx { now_ns, worker }
    }

    /// The worker's clock, as [`Context::now`](super::Context::now) of its
    /// last burst reads it (ages of table entries are measured against it).
    pub fn now(&self) -> u64 {
        self.now_ns
    }

    /// The worker whose replica is answering.
    pub fn worker(&self) -> usize {
        self.worker
    }
}

/// The error a replica gives for a handler its class does not have (the
/// runtime checks names against the class's list first, so an element sees
/// this only when its list and its `read`/`write` disagree).
pub fn no_such_handler(name: &str) -> String {
    format!("no handler `{name}`")
}

/// Combines the answers of the workers' replicas (in worker order) as
/// `combine` says.
pub fn combine(combine: Combine, answers: Vec<Answer>) -> Answer {
    use serde_json::Value;
    match combine {
        Combine::Rows => {
            let mut rows = Vec::new();
            for (w, a) in answers.into_iter().enumerate() {
                match a {
                    Value::Array(items) => {
                        for mut row in items {
                            if let Value::Object(m) = &mut row {
                                m.insert("worker".into(), w.into());
                            }
                            rows.push(row);
                        }
                    }
                    other => rows.push(other),
                }
            }
            Value::Array(rows)
        }
        Combine::Sum => answers.into_iter().reduce(sum).unwrap_or(Value::Null),
        Combine::Once => answers.into_iter().next().unwrap_or(Value::Null),
        Combine::Same => {
            let first = answers.first().cloned().unwrap_or(Value::Null);
            if answers.iter().all(|a| *a == first) {
                first
            } else {
                Value::Object(
                    answers
                        .into_iter()
                        .enumerate()
                        .map(|(w, a)| (format!("worker {w}"), a))
                        .collect(),
                )
            }
        }
    }
}

/// `a + b` for numbers, field by field for objects, `a` otherwise.
fn sum(a: Answer, b: Answer) -> Answer {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_u64(), y.as_u64()) {
            (Some(x), Some(y)) => Value::from(x.saturating_add(y)),
            _ => Value::from(x.as_f64().unwrap_or(0.0) + y.as_f64().unwrap_or(0.0)),
        },
        (Value::Object(mut x), Value::Object(y)) => {
            for (k, v) in y {
                let merged = match x.remove(&k) {
                    Some(old) => sum(old, v),
                    None => v,
                };
                x.insert(k, merged);
            }
            Value::Object(x)
        }
        (a, _) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_are_concatenated_and_tagged_with_their_worker() {
        let c = combine(
            Combine::Rows,
            vec![json!([{"mac": "a"}]), json!([{"mac": "b"}, {"mac": "c"}])],
        );
        assert_eq!(
            c,
            json!([{"mac": "a", "worker": 0}, {"mac": "b", "worker": 1}, {"mac": "c", "worker": 1}])
        );
    }

    #[test]
    fn sums_add_numbers_field_by_field() {
        let c = combine(
            Combine::Sum,
            vec![
                json!({"n": 1, "m": {"x": 2}}),
                json!({"n": 4, "m": {"x": 3, "y": 1}}),
            ],
        );
        assert_eq!(c, json!({"n": 5, "m": {"x": 5, "y": 1}}));
        assert_eq!(combine(Combine::Sum, vec![json!(2), json!(3)]), json!(5));
    }

    #[test]
    fn same_answers_collapse_and_different_ones_are_shown_by_worker() {
        assert_eq!(
            combine(Combine::Same, vec![json!(["r1"]), json!(["r1"])]),
            json!(["r1"])
        );
        assert_eq!(
            combine(Combine::Same, vec![json!(1), json!(2)]),
            json!({"worker 0": 1, "worker 1": 2})
        );
    }
}
