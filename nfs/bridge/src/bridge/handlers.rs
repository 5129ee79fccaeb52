//! The Bridge's handlers: `table` (the learned addresses) and `flush`.

use hpio_nf::element::{Answer, Combine, HandlerKind, HandlerSpec};
use serde_json::json;

use super::table::MacTable;

/// What `hpio-nf ctl read|write BRIDGE ...` can ask.
pub(super) const HANDLERS: &[HandlerSpec] = &[
    HandlerSpec {
        name: "table",
        kind: HandlerKind::Read,
        combine: Combine::Rows,
        arg: "",
        doc: "The learned addresses that have not expired: `mac`, `port`, `age` \
              (seconds since last seen), one table per worker",
    },
    HandlerSpec {
        name: "flush",
        kind: HandlerKind::Write,
        combine: Combine::Sum,
        arg: "",
        doc: "Forgets every learned address (frames are flooded until relearned); \
              answers `removed`",
    },
];

/// `aa:bb:cc:dd:ee:ff` of a 48-bit address.
pub(super) fn mac_text(mac: u64) -> String {
    let b = mac.to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    )
}

/// The `table` answer: live entries at `now`, sorted by address.
pub(super) fn table(t: &MacTable, now: u64) -> Answer {
    let mut rows: Vec<_> = t.entries().filter(|e| !t.is_expired(e.seen, now)).collect();
    rows.sort_unstable_by_key(|e| e.mac);
    let rows: Vec<Answer> = rows
        .iter()
        .map(|e| {
            let age_ms = now.saturating_sub(e.seen) / 1_000_000;
            json!({ "mac": mac_text(e.mac), "port": e.port, "age": age_ms as f64 / 1000.0 })
        })
        .collect();
    Answer::Array(rows)
}
