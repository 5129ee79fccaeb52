//! An in-memory traffic generator port for benchmarks and tests.

use super::PortClass;
use crate::element::{ParamError, Params};

/// The `generator` driver.
pub const CLASS: PortClass = PortClass {
    name: "generator",
    summary: "generates UDP/TCP frames in memory",
    params: &[],
    configure,
};

fn configure(_p: &Params) -> Result<Box<dyn super::PortSpec>, ParamError> {
    Err(ParamError::new("driver", "generator: not yet written"))
}
