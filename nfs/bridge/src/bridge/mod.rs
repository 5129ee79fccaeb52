//! `Bridge`: an L2 learning bridge over any number of ports.
//!
//! Bridge port `i` is input `i` (frames arriving from the segment) and
//! output `i` (frames to send to it). Per frame: learn the source address
//! on the input's port, then forward to the port the destination was
//! learned on, drop it when that is the input's own port, or flood it to
//! every other port. The MAC table ([`table`]) is a fixed-capacity hash
//! table allocated when a worker's replica is built; the optional table
//! file ([`file`]) is written from the worker's counter publication, never
//! from the packet path.

mod file;
mod handlers;
mod table;

#[cfg(test)]
mod prop_tests;

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use hpio_nf::element::{
    handler, ClassInfo, ConfigCx, Configured, Context, DropReason, Element, ElementClass,
    HandlerCx, HandlerResult, Inputs, Need, Output, ParamError, ParamSpec, ParamType, Params,
    PortCount,
};
use hpio_nf::packet::{Batch, Packet};

use self::file::TableFile;
use self::table::{Learn, MacTable};

/// Fewest and most bridge ports.
const MIN_PORTS: i64 = 2;
const MAX_PORTS: i64 = 256;
/// Most entries a table may hold (32 bytes of slots per entry, per worker).
const MAX_ENTRIES: i64 = 1 << 20;
/// Length of an Ethernet header (the two addresses and the type).
const ETH_HLEN: usize = 14;
/// The group (multicast) bit of an address read as a 48-bit number.
const GROUP_BIT: u64 = 1 << 40;
/// 01:80:c2:00:00:00 to 01:80:c2:00:00:0f: IEEE 802.1D reserved addresses
/// (STP, pause, LACP, 802.1X, LLDP...), which a bridge never forwards.
const LINK_LOCAL: u64 = 0x0180_c200_0000;
const LINK_LOCAL_MASK: u64 = !0xf & 0xffff_ffff_ffff;
/// Slots the expiry sweep looks at per batch while a pass is under way
/// (256 KiB of slots, some 10 us): the default table is swept in one go,
/// larger ones over several batches.
const SWEEP_BUDGET: usize = 16384;
/// Longest time between two sweep passes.
const MAX_SWEEP_PERIOD: u64 = 1_000_000_000;

/// Decision code: send to every port but the input's.
const FLOOD: u16 = u16::MAX;
/// Decision codes from here on: drop, with reason `code - DROP_BASE`.
const DROP_BASE: u16 = u16::MAX - 16;
/// Largest batch decided in one pass (the runtime's bursts are at most
/// 256); larger ones are handled in pieces of this size.
const PASS: usize = 256;

hpio_nf::drop_reasons! {
    DROP_REASONS = [
        /// The destination was learned on the port the frame came in on.
        FILTERED = "filtered",
        /// A flood copy could not be made: the worker's pool was empty.
        NO_BUFFER = "no-buffer",
        /// The source address is a group address or all zeros.
        INVALID_SOURCE = "invalid-source",
        /// The destination is an IEEE 802.1D reserved address.
        RESERVED = "reserved",
        /// Shorter than an Ethernet header.
        RUNT = "runt",
    ]
}

hpio_nf::counters! {
    COUNTERS = [
        ENTRIES = "entries": "addresses in the table (expired ones until swept)",
        LEARNED = "learned": "addresses added to the table (or re-added after expiring)",
        MOVES = "moves": "known addresses seen on another port: the entry moved",
        AGED = "aged": "entries that expired (swept, or re-learned after expiring)",
        TABLE_FULL = "table-full": "source addresses not learned because the table was full",
        TABLE_FILE_ERRORS = "table-file-errors":
            "failed writes of `table_file` (only with `table_file`)",
        /// A pattern: reported as `port0.rx`, `port1.rx`, ...
        #[allow(dead_code)]
        PORT_RX = "port<i>.rx": "frames received on bridge port i",
        /// A pattern: reported as `port0.tx`, `port1.tx`, ...
        #[allow(dead_code)]
        PORT_TX = "port<i>.tx": "frames sent out of bridge port i (forwarded and flooded)",
        /// A pattern: reported as `port0.forwarded`, `port1.forwarded`, ...
        #[allow(dead_code)]
        PORT_FORWARDED = "port<i>.forwarded":
            "frames received on port i sent to their learned port",
        /// A pattern: reported as `port0.flooded`, `port1.flooded`, ...
        #[allow(dead_code)]
        PORT_FLOODED = "port<i>.flooded": "frames received on port i flooded to every other port",
        /// A pattern: reported as `port0.filtered`, `port1.filtered`, ...
        #[allow(dead_code)]
        PORT_FILTERED = "port<i>.filtered":
            "frames received on port i whose destination is on port i",
    ]
}

/// The `Bridge` class.
pub const CLASS: ElementClass = ElementClass {
    info: ClassInfo {
        name: "Bridge",
        summary:
            "L2 learning bridge: learns source MACs, forwards to the learned port, floods the rest",
        description: "\
Bridge port i is input i (frames received from a segment) and output i
(frames to send to it): wire `eth0 -> [0]br`, `br[0] -> eth0`,
`eth1 -> [1]br`, `br[1] -> eth1`, and so on.

For each frame arriving on bridge port i:
  1. Frames shorter than an Ethernet header are dropped (`runt`); frames
     whose source address is a group (multicast, broadcast) address or all
     zeros are dropped (`invalid-source`), as Linux bridges do.
  2. Learning: the source address is recorded as being on port i, now. An
     address already known on another port moves to port i (counted in
     `moves`). When the table already holds `max_entries` addresses a new
     one is not learned (counted in `table-full`; the frame is still
     forwarded).
  3. Forwarding: a unicast destination learned on port j != i goes to output
     j only. A destination learned on port i itself is dropped (`filtered`):
     the frame is already on its segment and never goes back out of the port
     it came in on. Broadcast, multicast and unknown (or expired)
     destinations are flooded: copies go to every port but i, the last one
     getting the original frame, so a two-port bridge never copies. Frames
     to the IEEE 802.1D reserved addresses 01:80:c2:00:00:00 to
     01:80:c2:00:00:0f (STP, pause, LACP, LLDP...) are learned from but never
     forwarded (`reserved`).

Aging: an address not seen for `aging` is forgotten: frames to it are
flooded again until it speaks. Time is the worker's clock (`[runtime] clock`:
monotonic time, or the packet timestamps when replaying captures, which
makes aging reproducible). Expired entries give their slot back to the
table by a sweep every aging/4 (at most every second) while frames arrive;
a table of more than 8192 entries is swept over several batches.

The table is a fixed-capacity open-addressing hash table allocated when the
worker starts (32 bytes per entry of `max_entries`); nothing is allocated,
locked or grown per packet. Frames are bridged as they are: VLAN tags are
not looked at (one learning domain for all VLANs).

Table file: with `table_file`, the worker writes its table to that file as
text, one line per live entry (`MAC PORT AGE`, age in seconds as of the
latest frame, sorted by address) after a `#` comment header, for example:

  # hpio-nf Bridge MAC table: worker 0, 2 entries (max 4096), aging 300s
  # mac port age
  02:00:00:00:00:0a 0 0.125
  02:00:00:00:00:0b 1 3.000

It is written when the worker publishes its counters (every 100 ms, off the
packet path), at most once per second and only when something changed, and
a last time when the run ends; each write goes to `<file>.tmp` first and is
renamed over the file, so a reader never sees half a table.

Several workers: each worker runs its own replica with its own table,
learning only from the frames its receive queues deliver. With a port spread
over several workers a host may be known to one worker and unknown to
another, whose frames to it are then flooded: delivery stays correct, there
is only more flooding. Counters are summed over workers (so `entries` counts
an address once per worker that knows it), and worker k writes its table to
`<table_file>.k`. A bridge is best run with one worker, or with every port's
traffic of a host pair steered to the same worker.",
        inputs: PortCount::Param("ports"),
        outputs: PortCount::Param("ports"),
        params: PARAMS,
        drop_reasons: DROP_REASONS,
        counters: COUNTERS,
        handlers: handlers::HANDLERS,
        example: "\
[elements.br]
class = \"Bridge\"
ports = 2
aging = \"300s\"
max_entries = 4096",
        see_also: &["Tee", "Classify", "Forward"],
    },
    configure,
};

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "ports",
        ty: ParamType::Int {
            min: MIN_PORTS,
            max: MAX_PORTS,
        },
        need: Need::Default("2"),
        doc: "Number of bridge ports: input i and output i are port i",
    },
    ParamSpec {
        name: "aging",
        ty: ParamType::Duration,
        need: Need::Default("\"300s\""),
        doc: "How long an address stays known without being seen (more than 0)",
    },
    ParamSpec {
        name: "max_entries",
        ty: ParamType::Int {
            min: 1,
            max: MAX_ENTRIES,
        },
        need: Need::Default("4096"),
        doc: "Most addresses in the table; further ones are not learned (`table-full`)",
    },
    ParamSpec {
        name: "table_file",
        ty: ParamType::Str,
        need: Need::Optional,
        doc: "File the worker rewrites with its MAC table at most once a second and at the end \
              (worker k of several: `<table_file>.k`)",
    },
];

/// A configured bridge, shared by the replica factory.
#[derive(Debug, Clone)]
struct Settings {
    ports: usize,
    aging_ns: u64,
    max_entries: usize,
    table_file: Option<PathBuf>,
    workers: usize,
}

fn configure(p: &Params, cx: &ConfigCx<'_>) -> Result<Configured, ParamError> {
    let ports = p.int("ports")?;
    if !(MIN_PORTS..=MAX_PORTS).contains(&ports) {
        return Err(ParamError::new(
            "ports",
            format!("expected {MIN_PORTS}..={MAX_PORTS} bridge ports, found {ports}"),
        ));
    }
    let aging = p.duration("aging")?;
    if aging.is_zero() {
        return Err(ParamError::new(
            "aging",
            "expected a duration longer than 0 (\"300s\", \"5m\")",
        ));
    }
    let max_entries = p.int("max_entries")?;
    if !(1..=MAX_ENTRIES).contains(&max_entries) {
        return Err(ParamError::new(
            "max_entries",
            format!("expected 1..={MAX_ENTRIES} entries, found {max_entries}"),
        ));
    }
    let table_file = match p.get("table_file") {
        None => None,
        Some(_) => match p.str("table_file")? {
            "" => {
                return Err(ParamError::new(
                    "table_file",
                    "expected a file path, found an empty string",
                ))
            }
            s => Some(PathBuf::from(s)),
        },
    };
    let settings = Settings {
        ports: ports as usize,
        aging_ns: duration_ns(aging),
        max_entries: max_entries as usize,
        table_file,
        workers: cx.workers,
    };
    let n = settings.ports;
    Ok(Configured::new(Inputs::Fixed(n), n, move |worker| {
        Box::new(Bridge::new(&settings, worker))
    }))
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Counters of one bridge port.
#[derive(Debug, Clone, Copy, Default)]
struct PortCounters {
    rx: u64,
    tx: u64,
    forwarded: u64,
    flooded: u64,
    filtered: u64,
}

/// Table-wide counters.
#[derive(Debug, Clone, Copy, Default)]
struct TableCounters {
    learned: u64,
    moves: u64,
    aged: u64,
    table_full: u64,
    /// Changes to the table's contents (not refreshes), for the table file.
    changes: u64,
}

/// One worker's bridge: its table and counters.
struct Bridge {
    table: MacTable,
    ports: Box<[PortCounters]>,
    counts: TableCounters,
    /// The clock of the latest batch.
    now: u64,
    /// When the next sweep pass may start.
    next_sweep: u64,
    sweep_period: u64,
    /// Whether the replica has processed a batch (the table file is
    /// written at the end only then).
    active: bool,
    worker: usize,
    /// Written from [`Element::stats`], which takes `&self`.
    file: Option<RefCell<TableFile>>,
}

impl Bridge {
    fn new(s: &Settings, worker: usize) -> Bridge {
        let file = s.table_file.as_ref().map(|path| {
            let path = if s.workers > 1 {
                let mut p = path.clone().into_os_string();
                p.push(format!(".{worker}"));
                PathBuf::from(p)
            } else {
                path.clone()
            };
            RefCell::new(TableFile::new(path, worker, s.max_entries, s.aging_ns))
        });
        Bridge {
            table: MacTable::new(s.max_entries, s.aging_ns),
            ports: vec![PortCounters::default(); s.ports].into_boxed_slice(),
            counts: TableCounters::default(),
            now: 0,
            next_sweep: 0,
            sweep_period: (s.aging_ns / 4).clamp(1, MAX_SWEEP_PERIOD),
            active: false,
            worker,
            file,
        }
    }

    /// Advances the expiry sweep by one step.
    fn sweep(&mut self, now: u64) {
        let (removed, done) = self.table.sweep(now, SWEEP_BUDGET);
        if removed > 0 {
            self.counts.aged += removed as u64;
            self.counts.changes += 1;
        }
        if done {
            self.next_sweep = now.saturating_add(self.sweep_period);
        }
    }

    /// Sends `pkt` to every port but `from`: copies first, the original last.
    #[inline]
    fn flood(&mut self, cx: &mut Context<'_>, from: usize, pkt: Packet, out: &mut Output) {
        let n = self.ports.len();
        let last = if from == n - 1 { n - 2 } else { n - 1 };
        for p in 0..last {
            if p == from {
                continue;
            }
            match cx.clone_packet(&pkt) {
                Some(copy) => {
                    self.ports[p].tx += 1;
                    out.push(p, copy);
                }
                None => out.count_drop(NO_BUFFER, 1),
            }
        }
        self.ports[last].tx += 1;
        out.push(last, pkt);
    }

    /// The table file, written now (at the end of a run, or in tests).
    fn write_table_file(&self) {
        if let Some(f) = &self.file {
            if let Ok(mut f) = f.try_borrow_mut() {
                f.write(&self.table, self.now, self.counts.changes);
            }
        }
    }

    /// Learns from the frame `d` that arrived on `in_port` and decides
    /// where it goes: an output, [`FLOOD`], or a drop code
    /// ([`DROP_BASE`] + reason). Counts the decision in `c`.
    #[inline(always)]
    fn decide(&mut self, d: &[u8], in_port: u16, now: u64, c: &mut PortCounters) -> u16 {
        let Some(eth) = d.first_chunk::<ETH_HLEN>() else {
            return DROP_BASE + RUNT.0 as u16;
        };
        let (dst, src) = macs(eth);
        if src & GROUP_BIT != 0 || src == 0 {
            return DROP_BASE + INVALID_SOURCE.0 as u16;
        }
        match self.table.learn(src, in_port, now) {
            Learn::Refreshed => {}
            Learn::Learned => {
                self.counts.learned += 1;
                self.counts.changes += 1;
            }
            Learn::Moved { .. } => {
                self.counts.moves += 1;
                self.counts.changes += 1;
            }
            Learn::Relearned => {
                self.counts.aged += 1;
                self.counts.learned += 1;
                self.counts.changes += 1;
            }
            Learn::Full => self.counts.table_full += 1,
        }
        let to = if dst & GROUP_BIT != 0 {
            if dst & LINK_LOCAL_MASK == LINK_LOCAL {
                return DROP_BASE + RESERVED.0 as u16;
            }
            None
        } else {
            self.table.lookup(dst, now)
        };
        match to {
            Some(p) if p == in_port => {
                c.filtered += 1;
                DROP_BASE + FILTERED.0 as u16
            }
            Some(p) => {
                c.forwarded += 1;
                p
            }
            None => {
                c.flooded += 1;
                // Two ports: flooding is sending to the other one.
                if self.ports.len() == 2 {
                    1 - in_port
                } else {
                    FLOOD
                }
            }
        }
    }
}

/// The destination and source addresses of an Ethernet header as 48-bit
/// numbers: two 8-byte loads.
#[inline(always)]
fn macs(h: &[u8; ETH_HLEN]) -> (u64, u64) {
    let (head, _) = h.split_first_chunk::<8>().expect("a header has 14 bytes");
    let (_, tail) = h[..12]
        .split_last_chunk::<8>()
        .expect("a header has 14 bytes");
    let dst = u64::from_be_bytes(*head) >> 16;
    let src = u64::from_be_bytes(*tail) & 0xffff_ffff_ffff;
    (dst, src)
}

impl Element for Bridge {
    /// Two passes over the batch: first learn from and decide on every
    /// frame (a tight loop of table probes, which the CPU overlaps across
    /// frames), then act. When every frame goes to the same port (the
    /// usual case on a two-port bridge) the whole batch moves at once.
    fn push(&mut self, cx: &mut Context<'_>, input: usize, batch: &mut Batch, out: &mut Output) {
        if input >= self.ports.len() {
            // Not a bridge port (the config checker rules this out): the
            // runtime counts the batch as unhandled.
            return;
        }
        let now = cx.now();
        self.now = now;
        self.active = true;
        if now >= self.next_sweep {
            self.sweep(now);
        }
        let in_port = input as u16;
        let mut c = PortCounters {
            rx: batch.len() as u64,
            ..PortCounters::default()
        };
        let mut to = [0u16; PASS];
        while !batch.is_empty() {
            let n = batch.len().min(PASS);
            for (k, pkt) in batch[..n].iter().enumerate() {
                to[k] = self.decide(pkt.data(), in_port, now, &mut c);
            }
            let first = to[0];
            if n == batch.len()
                && (first as usize) < self.ports.len()
                && to[..n].iter().all(|&t| t == first)
            {
                self.ports[first as usize].tx += n as u64;
                out.push_all(first as usize, batch);
                break;
            }
            for (k, pkt) in batch.drain(..n).enumerate() {
                match to[k] {
                    FLOOD => self.flood(cx, input, pkt, out),
                    t if t >= DROP_BASE => out.drop(pkt, DropReason((t - DROP_BASE) as u8)),
                    t => {
                        self.ports[t as usize].tx += 1;
                        out.push(t as usize, pkt);
                    }
                }
            }
        }
        let pc = &mut self.ports[input];
        pc.rx += c.rx;
        pc.forwarded += c.forwarded;
        pc.flooded += c.flooded;
        pc.filtered += c.filtered;
    }

    fn stats(&self, report: &mut dyn FnMut(&str, u64)) {
        let c = &self.counts;
        report(ENTRIES, self.table.len() as u64);
        report(LEARNED, c.learned);
        report(MOVES, c.moves);
        report(AGED, c.aged);
        report(TABLE_FULL, c.table_full);
        for (i, p) in self.ports.iter().enumerate() {
            report(&format!("port{i}.rx"), p.rx);
            report(&format!("port{i}.tx"), p.tx);
            report(&format!("port{i}.forwarded"), p.forwarded);
            report(&format!("port{i}.flooded"), p.flooded);
            report(&format!("port{i}.filtered"), p.filtered);
        }
        if let Some(f) = &self.file {
            // The worker publishes its counters a few times a second, off
            // the packet path: the table file is rewritten from here.
            if let Ok(mut f) = f.try_borrow_mut() {
                f.tick(&self.table, self.now, c.changes);
                report(TABLE_FILE_ERRORS, f.errors());
            }
        }
    }

    fn read(&self, name: &str, cx: &HandlerCx) -> HandlerResult {
        match name {
            "table" => Ok(handlers::table(&self.table, cx.now())),
            _ => Err(handler::no_such_handler(name)),
        }
    }

    fn write(&mut self, name: &str, _arg: &str, _cx: &HandlerCx) -> HandlerResult {
        match name {
            "flush" => {
                let removed = self.table.clear();
                self.counts.changes += 1;
                Ok(serde_json::json!({ "removed": removed }))
            }
            _ => Err(handler::no_such_handler(name)),
        }
    }
}

impl Drop for Bridge {
    /// The replica ends with its worker: write the final table.
    fn drop(&mut self) {
        if self.active {
            self.write_table_file();
        }
    }
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("worker", &self.worker)
            .field("ports", &self.ports.len())
            .field("entries", &self.table.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
