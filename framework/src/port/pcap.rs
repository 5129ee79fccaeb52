//! pcap files as ports: `input` is replayed on receive, transmitted packets go to `output`.

use super::PortClass;
use crate::element::{ParamError, Params};

/// The `pcap` driver.
pub const CLASS: PortClass = PortClass {
    name: "pcap",
    summary: "replays a pcap file on receive; writes transmitted frames to a pcap file",
    params: &[],
    configure,
};

fn configure(_p: &Params) -> Result<Box<dyn super::PortSpec>, ParamError> {
    Err(ParamError::new("driver", "pcap: not yet written"))
}
