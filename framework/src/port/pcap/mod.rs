//! pcap files as ports: `input` is replayed on receive, transmitted frames go to `output`.
//!
//! A `pcap` port is for offline runs: golden tests, replaying a capture
//! through a graph, recording what a graph sends. It is not a fast path.
//!
//! Receive: one queue ([`PortSpec::rx_queues`] is 1 when `input` is set) that
//! reads a classic pcap file (either byte order, microsecond or nanosecond
//! timestamps) or a pcapng file, whose link type must be Ethernet. Each
//! record becomes one packet with the record's timestamp in nanoseconds and
//! its original length as [`Packet::wire_len`](crate::packet::Packet::wire_len).
//! No frame is ever handed on cut short by the port:
//! - a record longer than a packet slot is dropped and counted in
//!   [`QueueStats::oversize`](super::QueueStats::oversize) (and `drops`).
//!   The port asks for slots of [`DEFAULT_PCAP_FRAME`] bytes (9,216: a jumbo
//!   frame with tags); `[runtime] max_frame` sets another size;
//! - a record the capture itself cut (`incl_len` < `orig_len`, a snap
//!   length) is dropped and counted in
//!   [`QueueStats::truncated_capture`](super::QueueStats::truncated_capture),
//!   unless `truncated = "pass"`: then it goes on as captured, with its
//!   original length as `wire_len` (an output pcap keeps both lengths).
//!
//! A record over [`MAX_CAPLEN`] bytes means a corrupt file (an error, with
//! no allocation of that size). The queue ends ([`Recv::Ended`](super::Recv::Ended)) at the
//! end of the file; a corrupt file is an error naming the file and the record.
//!
//! Transmit: every worker's [`TxQueue`] of one port shares a
//! single writer (`Arc<Mutex<..>>`) that appends to a classic pcap file
//! (little-endian, microsecond timestamps, `LINKTYPE_ETHERNET`, snaplen
//! 65535: the format every tcpdump reads). Frames are written whole, up to
//! the slot size. The lock is taken once per
//! [`TxQueue::send`] call, that is once per burst, not
//! per packet. That is a lock on the data path, which live drivers never
//! take; it is fine here because a pcap port is for offline runs, where the
//! file, not the lock, is the bottleneck. With several workers the records
//! of different workers interleave burst by burst, each burst in order.
//! [`TxQueue::finish`] flushes the file; the last
//! handle dropped flushes it too, ignoring errors.
//!
//! Files are opened by [`PortSpec::open`], never while configuring, and
//! only the sides the graph uses.

mod read;
mod write;

#[cfg(test)]
mod prop_tests;

use std::path::{Path, PathBuf};

use super::{OpenPort, PortClass, PortError, PortSpec, RxQueue, TxQueue};
use crate::params::Choice;
use crate::params::{Need, ParamError, ParamSpec, ParamType, Params};

pub use read::MAX_CAPLEN;

/// The `pcap` driver.
pub const CLASS: PortClass = PortClass {
    name: "pcap",
    summary: "replays a pcap/pcapng file on receive; writes transmitted frames to a pcap file",
    params: PARAMS,
    configure,
};

hpio_nf::choice! {
    /// What happens to records cut short by the capture (`truncated`).
    enum Truncated {
        Drop = "drop",
        Pass = "pass",
    }
}

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "input",
        ty: ParamType::Str,
        need: Need::Optional,
        doc: "pcap or pcapng file (Ethernet) replayed on receive, once, in order; \
              records longer than a packet slot (9216 bytes unless [runtime] max_frame says \
              otherwise) are dropped and counted `oversize`",
    },
    ParamSpec {
        name: "truncated",
        ty: ParamType::Choice(Truncated::NAMES),
        need: Need::Default("\"drop\""),
        doc: "records the capture cut short (`incl_len` < `orig_len`, a snap length): \
              `drop` them and count them `truncated_capture`, or `pass` them on as captured",
    },
    ParamSpec {
        name: "output",
        ty: ParamType::Str,
        need: Need::Optional,
        doc: "pcap file (created or truncated) receiving every frame sent on this port, \
              microsecond timestamps",
    },
];

/// A configured `pcap` port: the paths, not yet opened.
#[derive(Debug, Clone)]
struct PcapSpec {
    input: Option<PathBuf>,
    output: Option<PathBuf>,
    pass_truncated: bool,
}

/// Largest frame a pcap input asks the run's slots to hold: a 9,000-byte MTU
/// jumbo frame with its Ethernet header and tags, rounded up.
pub const DEFAULT_PCAP_FRAME: usize = 9216;

fn path_param(p: &Params, name: &str) -> Result<Option<PathBuf>, ParamError> {
    match p.get(name) {
        None => Ok(None),
        Some(_) => {
            let s = p.str(name)?;
            if s.is_empty() {
                return Err(ParamError::new(
                    name,
                    "expected a file path, found an empty string",
                ));
            }
            Ok(Some(PathBuf::from(s)))
        }
    }
}

fn configure(p: &Params) -> Result<Box<dyn PortSpec>, ParamError> {
    let input = path_param(p, "input")?;
    let output = path_param(p, "output")?;
    match (&input, &output) {
        (None, None) => Err(ParamError::new(
            "input",
            "a pcap port needs `input` (a file to replay), `output` (a file to write), or both",
        )),
        (Some(i), Some(o)) if i == o => Err(ParamError::new(
            "output",
            format!(
                "`output` is the same file as `input` ({}): writing would destroy the input",
                o.display()
            ),
        )),
        _ => Ok(Box::new(PcapSpec {
            input,
            output,
            pass_truncated: p.get("truncated").is_some()
                && p.choice::<Truncated>("truncated")? == Truncated::Pass,
        })),
    }
}

/// True when `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

impl PortSpec for PcapSpec {
    fn rx_queues(&self) -> usize {
        usize::from(self.input.is_some())
    }

    fn endless(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        let mut parts = vec![];
        if let Some(i) = &self.input {
            parts.push(format!("replays `{}`", i.display()));
        }
        if let Some(o) = &self.output {
            parts.push(format!("writes `{}`", o.display()));
        }
        format!("pcap: {}", parts.join(", "))
    }

    fn open(&self, name: &str, workers: usize, rx: bool, tx: bool) -> Result<OpenPort, PortError> {
        let input = match (&self.input, rx) {
            (Some(path), true) => Some(path),
            (None, true) => {
                return Err(PortError::other(
                    name,
                    "the graph reads from this port but it has no `input` file",
                ))
            }
            (_, false) => None,
        };
        let output = match (&self.output, tx) {
            (Some(path), true) => Some(path),
            (None, true) => {
                return Err(PortError::other(
                    name,
                    "the graph sends to this port but it has no `output` file",
                ))
            }
            (_, false) => None,
        };
        if let (Some(i), Some(o)) = (input, output) {
            if same_file(i, o) {
                return Err(PortError::other(
                    name,
                    format!(
                        "`output` `{}` is the same file as `input` `{}`",
                        o.display(),
                        i.display()
                    ),
                ));
            }
        }
        let mut rx_queues: Vec<Box<dyn RxQueue>> = Vec::new();
        if let Some(path) = input {
            rx_queues.push(Box::new(read::PcapRx::open(
                name,
                path,
                self.pass_truncated,
            )?));
        }
        let mut tx_queues: Vec<Box<dyn TxQueue>> = Vec::new();
        if let Some(path) = output {
            let sink = write::PcapSink::create(name, path)?;
            for _ in 0..workers {
                tx_queues.push(Box::new(write::PcapTx::new(name, sink.clone())));
            }
        }
        Ok(OpenPort {
            rx: rx_queues,
            tx: tx_queues,
            driver: "pcap".to_string(),
            driver_stats: None,
            max_frame: DEFAULT_PCAP_FRAME,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::packet::{Batch, Packet, Pool};
    use crate::params::Value;
    use crate::port::Recv;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh path in the system temp directory (removed on drop).
    pub(crate) struct TempPath(pub PathBuf);

    impl TempPath {
        pub(crate) fn new(ext: &str) -> TempPath {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            TempPath(std::env::temp_dir().join(format!(
                "hpio-nf-pcap-test-{}-{n}.{ext}",
                std::process::id()
            )))
        }
        pub(crate) fn s(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    pub(crate) fn spec(input: Option<&str>, output: Option<&str>) -> Box<dyn PortSpec> {
        let mut p = Params::new();
        if let Some(i) = input {
            p.set("input", Value::Str(i.into()));
        }
        if let Some(o) = output {
            p.set("output", Value::Str(o.into()));
        }
        (CLASS.configure)(&p).unwrap()
    }

    /// A UDP/IPv4 frame from 10.0.0.1:1000+i to 10.0.0.2:7777 with `payload` bytes.
    pub(crate) fn udp_frame(i: u16, payload: usize) -> Vec<u8> {
        use testkit::frame::{Frame, Ip};
        Frame::udp(Ip::v4([10, 0, 0, 1], [10, 0, 0, 2]), 1000 + i, 7777)
            .payload(&vec![0x5a; payload])
            .build()
    }

    /// Writes `frames` (with timestamps) through a pcap port's transmit side.
    pub(crate) fn write_through_port(path: &str, frames: &[(u64, Vec<u8>)]) {
        let port = spec(None, Some(path)).open("out", 1, false, true).unwrap();
        let mut tx = port.tx.into_iter().next().unwrap();
        let mut pool = Pool::new(4);
        let mut batch = Batch::new();
        for (ts, f) in frames {
            let mut p = Packet::from_bytes(f);
            p.set_timestamp(*ts);
            batch.push(p);
        }
        tx.send(&mut pool, &mut batch).unwrap();
        assert!(batch.is_empty());
        tx.finish().unwrap();
        assert_eq!(tx.stats().packets, frames.len() as u64);
    }

    /// Reads every packet of a pcap port's input into default slots.
    pub(crate) fn read_all(path: &str) -> Result<Vec<Packet>, PortError> {
        read_all_with(path, &[])
    }

    /// [`read_all`] with more port parameters.
    pub(crate) fn read_all_with(
        path: &str,
        params: &[(&'static str, &str)],
    ) -> Result<Vec<Packet>, PortError> {
        let mut p = Params::new();
        p.set("input", Value::Str(path.into()));
        for (k, v) in params {
            p.set(k, Value::Str(v.to_string()));
        }
        let mut port = (CLASS.configure)(&p).unwrap().open("in", 1, true, false)?;
        let rx = &mut port.rx[0];
        let mut pool = Pool::new(1024);
        let mut batch = Batch::new();
        while let Recv::Got(_) = rx.recv(&mut pool, &mut batch, 32)? {}
        Ok(batch.into_vec())
    }

    #[test]
    fn configure_needs_input_or_output() {
        let e = (CLASS.configure)(&Params::new()).unwrap_err();
        assert!(e.message.contains("`input`"), "{e}");
        let mut p = Params::new();
        p.set("input", Value::Str(String::new()));
        assert!((CLASS.configure)(&p)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        p.set("input", Value::Str("a.pcap".into()));
        p.set("output", Value::Str("a.pcap".into()));
        let e = (CLASS.configure)(&p).unwrap_err();
        assert_eq!(e.param, "output");
        let s = spec(Some("in.pcap"), None);
        assert_eq!((s.rx_queues(), s.endless()), (1, false));
        let s = spec(None, Some("out.pcap"));
        assert_eq!(s.rx_queues(), 0);
        assert!(s.describe().contains("out.pcap"));
    }

    #[test]
    fn configure_touches_no_file_and_open_names_port_file_and_action() {
        let missing = TempPath::new("pcap");
        // Configuring succeeds: files are opened by `open`.
        let s = spec(Some(&missing.s()), None);
        let e = s.open("wan", 1, true, false).err().unwrap();
        let msg = e.to_string();
        assert!(msg.starts_with("port `wan`: "), "{msg}");
        assert!(
            msg.contains(&format!("cannot open input file `{}`", missing.s())),
            "{msg}"
        );
        assert!(msg.contains("No such file or directory"), "{msg}");
        assert!(matches!(e, PortError::Io { .. }));

        let s = spec(None, Some("/nonexistent-dir/x/out.pcap"));
        let msg = s.open("lan", 2, false, true).err().unwrap().to_string();
        assert!(
            msg.contains("cannot create output file `/nonexistent-dir/x/out.pcap`"),
            "{msg}"
        );
    }

    #[test]
    fn open_only_the_sides_in_use() {
        let out = TempPath::new("pcap");
        let s = spec(Some("/nonexistent/in.pcap"), Some(&out.s()));
        // Only transmitting: the missing input is not opened.
        let port = s.open("p", 3, false, true).unwrap();
        assert_eq!((port.rx.len(), port.tx.len()), (0, 3));
        assert_eq!(port.driver, "pcap");
        // Reading a port without input, or writing one without output, is an error.
        let msg = spec(None, Some(&out.s()))
            .open("p", 1, true, true)
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("no `input` file"), "{msg}");
        let msg = spec(Some(&out.s()), None)
            .open("p", 1, true, true)
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("no `output` file"), "{msg}");
    }

    #[test]
    fn output_equal_to_input_through_another_path_is_refused() {
        let f = TempPath::new("pcap");
        write_through_port(&f.s(), &[(1, udp_frame(0, 10))]);
        // The same file, spelled differently: <tmp>/../<tmp name>/<file>.
        let tmp = f.0.parent().unwrap();
        let other = tmp
            .join("..")
            .join(tmp.file_name().unwrap())
            .join(f.0.file_name().unwrap());
        let s = spec(Some(&f.s()), Some(&other.display().to_string()));
        let msg = s.open("p", 1, true, true).err().unwrap().to_string();
        assert!(msg.contains("same file"), "{msg}");
        // The input is untouched.
        assert_eq!(read_all(&f.s()).unwrap().len(), 1);
    }

    #[test]
    fn round_trip_keeps_bytes_timestamps_and_lengths() {
        let f = TempPath::new("pcap");
        let frames: Vec<(u64, Vec<u8>)> = (0..100u16)
            .map(|i| {
                (
                    1_700_000_000_000_000_000 + i as u64 * 1_234_000,
                    udp_frame(i, i as usize * 7),
                )
            })
            .collect();
        write_through_port(&f.s(), &frames);
        let got = read_all(&f.s()).unwrap();
        assert_eq!(got.len(), frames.len());
        for (p, (ts, bytes)) in got.iter().zip(&frames) {
            assert_eq!(p.data(), &bytes[..]);
            // Microsecond resolution: these timestamps are whole microseconds.
            assert_eq!(p.timestamp(), *ts);
            assert_eq!(p.wire_len(), bytes.len());
        }
    }

    #[test]
    fn tcpdump_reads_what_we_write() {
        let f = TempPath::new("pcap");
        let frames: Vec<(u64, Vec<u8>)> = (0..5u16)
            .map(|i| {
                (
                    1_700_000_000_000_000_000 + i as u64 * 1000,
                    udp_frame(i, 18),
                )
            })
            .collect();
        write_through_port(&f.s(), &frames);
        let tcpdump = testkit::Need::Command("tcpdump");
        if !testkit::require("tcpdump_reads_what_we_write", &[tcpdump]) {
            return;
        }
        let out = std::process::Command::new("tcpdump")
            .args(["-nn", "-r", &f.s()])
            .output()
            .expect("run tcpdump");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tcpdump failed: {stderr}");
        assert!(stderr.contains("link-type EN10MB"), "{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), frames.len(), "{stdout}");
        for (i, l) in lines.iter().enumerate() {
            assert!(
                l.contains(&format!(
                    "IP 10.0.0.1.{} > 10.0.0.2.7777: UDP, length 18",
                    1000 + i
                )),
                "{l}"
            );
        }
        // 2023-11-14 22:13:20 UTC, microseconds shown; tcpdump prints local time.
        assert!(lines[1].contains(".000001 IP"), "{}", lines[1]);
    }
}
