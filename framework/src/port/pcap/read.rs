//! The receive side of a pcap port: a pcap or pcapng file replayed once.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Chain, Cursor, ErrorKind, Read};
use std::path::Path;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, PcapError, TsResolution};

use crate::packet::{Batch, Pool};
use crate::port::{PortError, QueueStats, Recv, RxQueue};

/// Largest record length accepted (libpcap's own limit, 256 KiB): a larger
/// one means the file is corrupt.
pub const MAX_CAPLEN: usize = 262_144;

/// First bytes of a pcapng file (the section header block type).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// The file, with the 4 bytes read to tell pcap from pcapng put back in
/// front (no seek: pipes work too).
type Source = Chain<Cursor<[u8; 4]>, File>;

/// What a pcapng interface description says about its packets.
struct Iface {
    linktype: DataLink,
    /// Timestamp units per second (`if_tsresol`; 10^6 when absent).
    units_per_sec: u128,
}

enum Format {
    Pcap {
        reader: PcapReader<Source>,
        /// Nanosecond timestamps (else microseconds).
        nanos: bool,
    },
    PcapNg {
        reader: PcapNgReader<Source>,
        /// Interfaces of the current section, in order.
        ifaces: Vec<Iface>,
    },
}

/// One packet record, borrowed from the reader's buffer.
struct Record<'a> {
    data: Cow<'a, [u8]>,
    orig_len: u32,
    ts_ns: u64,
}

/// Why a record could not be read; turned into a [`PortError`] by the caller,
/// which knows the port, the file and the record number.
enum Bad {
    Io(std::io::Error),
    Truncated,
    Corrupt(String),
}

impl From<PcapError> for Bad {
    fn from(e: PcapError) -> Bad {
        match e {
            PcapError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof => Bad::Truncated,
            PcapError::IoError(e) => Bad::Io(e),
            PcapError::IncompleteBuffer => Bad::Truncated,
            PcapError::InvalidField(m) => Bad::Corrupt(m.to_string()),
            other => Bad::Corrupt(other.to_string()),
        }
    }
}

/// The receive queue of a pcap port.
pub(super) struct PcapRx {
    port: String,
    file: String,
    format: Format,
    /// Packet records read so far (for error messages).
    records: u64,
    ended: bool,
    /// An error met after some packets of a burst were read, reported by the next call.
    failed: Option<PortError>,
    /// Pass records cut by a snap length (`truncated = "pass"`) instead of dropping them.
    pass_truncated: bool,
    stats: QueueStats,
}

impl PcapRx {
    /// Opens `path` and reads its file header.
    pub(super) fn open(port: &str, path: &Path, pass_truncated: bool) -> Result<PcapRx, PortError> {
        let file = path.display().to_string();
        let mut f = File::open(path)
            .map_err(|e| PortError::io(port, format!("cannot open input file `{file}`"), e))?;
        let mut magic = [0u8; 4];
        let mut have = 0;
        while have < 4 {
            match f.read(&mut magic[have..]) {
                Ok(0) => break,
                Ok(n) => have += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(PortError::io(
                        port,
                        format!("cannot read input file `{file}`"),
                        e,
                    ))
                }
            }
        }
        if have < 4 {
            return Err(PortError::other(
                port,
                format!("input file `{file}` is not a pcap or pcapng file: too short"),
            ));
        }
        let source = Cursor::new(magic).chain(f);
        let not_pcap = |e: PcapError| match Bad::from(e) {
            Bad::Io(e) => PortError::io(port, format!("cannot read input file `{file}`"), e),
            Bad::Truncated => PortError::other(
                port,
                format!(
                    "input file `{file}` is not a pcap or pcapng file: its header is cut short"
                ),
            ),
            Bad::Corrupt(m) => PortError::other(
                port,
                format!("input file `{file}` is not a pcap or pcapng file ({m})"),
            ),
        };
        let format = if magic == PCAPNG_MAGIC {
            Format::PcapNg {
                reader: PcapNgReader::new(source).map_err(not_pcap)?,
                ifaces: Vec::new(),
            }
        } else {
            let reader = PcapReader::new(source).map_err(not_pcap)?;
            let header = reader.header();
            check_linktype(port, &file, header.datalink, "")?;
            Format::Pcap {
                reader,
                nanos: header.ts_resolution == TsResolution::NanoSecond,
            }
        };
        Ok(PcapRx {
            port: port.to_string(),
            file,
            format,
            records: 0,
            ended: false,
            failed: None,
            pass_truncated,
            stats: QueueStats::default(),
        })
    }

    fn error(&self, bad: Bad) -> PortError {
        let (file, n) = (&self.file, self.records + 1);
        match bad {
            Bad::Io(e) => PortError::io(&self.port, format!("cannot read input file `{file}`"), e),
            Bad::Truncated => PortError::other(
                &self.port,
                format!("input file `{file}` ends in the middle of packet {n} (truncated file?)"),
            ),
            Bad::Corrupt(m) => PortError::other(
                &self.port,
                format!("input file `{file}` is corrupt at packet {n}: {m}"),
            ),
        }
    }
}

fn check_linktype(port: &str, file: &str, dl: DataLink, what: &str) -> Result<(), PortError> {
    if dl == DataLink::ETHERNET {
        return Ok(());
    }
    Err(PortError::other(
        port,
        format!(
            "input file `{file}`{what} has link type {dl:?} ({}); only Ethernet (1) is supported",
            u32::from(dl)
        ),
    ))
}

/// Timestamp units per second of a pcapng interface.
fn iface_of(idb: &InterfaceDescriptionBlock<'_>) -> Result<Iface, Bad> {
    let mut units_per_sec = 1_000_000u128;
    for opt in &idb.options {
        if let InterfaceDescriptionOption::IfTsResol(r) = *opt {
            let exp = u32::from(r & 0x7f);
            let units = if r & 0x80 == 0 {
                10u128.checked_pow(exp)
            } else {
                1u128.checked_shl(exp)
            };
            units_per_sec = units.filter(|&u| u <= 1 << 64).ok_or_else(|| {
                Bad::Corrupt(format!("interface has an unusable if_tsresol {r:#04x}"))
            })?;
        }
    }
    Ok(Iface {
        linktype: idb.linktype,
        units_per_sec,
    })
}

/// What one step through the file found.
enum Step<'a> {
    /// A packet record.
    Packet(Record<'a>),
    /// A block that carries no packet (pcapng).
    Skip,
    /// The end of the file.
    End,
}

/// Reads the next record or block of the file.
fn next_step(format: &mut Format) -> Result<Step<'_>, Bad> {
    match format {
        Format::Pcap { reader, nanos } => next_pcap_step(reader, *nanos),
        Format::PcapNg { reader, ifaces } => next_pcapng_step(reader, ifaces),
    }
}

/// The next record of a classic pcap file.
fn next_pcap_step(reader: &mut PcapReader<Source>, nanos: bool) -> Result<Step<'_>, Bad> {
    let raw = match reader.next_raw_packet() {
        None => return Ok(Step::End),
        Some(r) => r?,
    };
    let (frac_max, frac_ns) = if nanos {
        (1_000_000_000, 1)
    } else {
        (1_000_000, 1000)
    };
    if raw.ts_frac >= frac_max {
        return Err(Bad::Corrupt(format!(
            "timestamp fraction {} out of range",
            raw.ts_frac
        )));
    }
    if raw.incl_len as usize > MAX_CAPLEN {
        return Err(Bad::Corrupt(format!(
            "record length {} is over {MAX_CAPLEN}",
            raw.incl_len
        )));
    }
    Ok(Step::Packet(Record {
        ts_ns: u64::from(raw.ts_sec) * 1_000_000_000 + u64::from(raw.ts_frac) * frac_ns,
        orig_len: raw.orig_len,
        data: raw.data,
    }))
}

/// The next block of a pcapng file: a packet, or a block to skip (an
/// interface description or a new section updates `ifaces` on the way).
fn next_pcapng_step<'r>(
    reader: &'r mut PcapNgReader<Source>,
    ifaces: &mut Vec<Iface>,
) -> Result<Step<'r>, Bad> {
    let block = match reader.next_block() {
        None => return Ok(Step::End),
        Some(b) => b?,
    };
    // (interface, raw timestamp, original length, data)
    let (iface, raw_ts, orig_len, data) = match block {
        Block::SectionHeader(_) => {
            ifaces.clear();
            return Ok(Step::Skip);
        }
        Block::InterfaceDescription(idb) => {
            ifaces.push(iface_of(&idb)?);
            return Ok(Step::Skip);
        }
        Block::EnhancedPacket(p) => (
            p.interface_id as usize,
            // pcap-file stores the raw 64-bit count as nanoseconds: undo that.
            u64::try_from(p.timestamp.as_nanos()).unwrap_or(u64::MAX),
            p.original_len,
            p.data,
        ),
        Block::Packet(p) => (
            usize::from(p.interface_id),
            p.timestamp,
            p.original_len,
            p.data,
        ),
        Block::SimplePacket(p) => (0, 0, p.original_len, p.data),
        _ => return Ok(Step::Skip),
    };
    let Some(ifc) = ifaces.get(iface) else {
        return Err(Bad::Corrupt(format!(
            "packet of interface {iface}, which no interface description block declares"
        )));
    };
    if ifc.linktype != DataLink::ETHERNET {
        return Err(Bad::Corrupt(format!(
            "interface {iface} has link type {:?} ({}); only Ethernet (1) is supported",
            ifc.linktype,
            u32::from(ifc.linktype)
        )));
    }
    if data.len() > MAX_CAPLEN {
        return Err(Bad::Corrupt(format!(
            "record length {} is over {MAX_CAPLEN}",
            data.len()
        )));
    }
    let ns = u128::from(raw_ts) * 1_000_000_000 / ifc.units_per_sec;
    Ok(Step::Packet(Record {
        ts_ns: u64::try_from(ns).unwrap_or(u64::MAX),
        orig_len,
        data,
    }))
}

impl RxQueue for PcapRx {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        if let Some(e) = self.failed.take() {
            self.ended = true;
            return Err(e);
        }
        if self.ended {
            return Ok(Recv::Ended);
        }
        let mut got = 0;
        while got < max {
            // Take the slot first: when the pool is empty nothing is read, so
            // nothing is lost; the next call reads the record.
            let Some(mut pkt) = pool.alloc() else { break };
            let cap = pkt.capacity();
            let rec = loop {
                match next_step(&mut self.format) {
                    Ok(Step::Skip) => {}
                    Ok(Step::Packet(rec)) => {
                        // Records that are dropped here leave the slot for the next one.
                        let cut = (rec.data.len() as u64) < u64::from(rec.orig_len);
                        if cut && !self.pass_truncated {
                            self.records += 1;
                            self.stats.drops += 1;
                            self.stats.truncated_capture += 1;
                        } else if rec.data.len() > cap {
                            self.records += 1;
                            self.stats.drops += 1;
                            self.stats.oversize += 1;
                        } else {
                            break Ok(rec);
                        }
                    }
                    Ok(Step::End) => break Err(None),
                    Err(bad) => break Err(Some(bad)),
                }
            };
            let rec = match rec {
                Ok(rec) => rec,
                Err(None) => {
                    pool.free(pkt);
                    self.ended = true;
                    break;
                }
                Err(Some(bad)) => {
                    pool.free(pkt);
                    self.stats.errors += 1;
                    let e = self.error(bad);
                    if got == 0 {
                        self.ended = true;
                        return Err(e);
                    }
                    // Deliver what was read; report the error on the next call.
                    self.failed = Some(e);
                    break;
                }
            };
            let len = rec.data.len();
            pkt.recv_buf()[..len].copy_from_slice(&rec.data);
            let wire = (rec.orig_len as usize).max(len);
            pkt.finish_recv(len, wire, rec.ts_ns);
            self.records += 1;
            self.stats.packets += 1;
            self.stats.bytes += len as u64;
            batch.push(pkt);
            got += 1;
        }
        if got == 0 && self.ended {
            return Ok(Recv::Ended);
        }
        Ok(Recv::Got(got))
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }

    fn replay(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        read_all, read_all_with, spec, udp_frame, write_through_port, TempPath,
    };
    use super::super::DEFAULT_PCAP_FRAME;
    use super::*;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::Endianness;
    use std::time::Duration;

    fn write_pcap(path: &TempPath, header: PcapHeader, pkts: &[PcapPacket<'_>]) {
        let mut w = PcapWriter::with_header(File::create(&path.0).unwrap(), header).unwrap();
        for p in pkts {
            w.write_packet(p).unwrap();
        }
    }

    fn open_err(path: &TempPath) -> String {
        match spec(Some(&path.s()), None).open("in", 1, true, false) {
            Ok(_) => panic!("opening {} succeeded", path.s()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn reads_big_endian_nanosecond_pcap_with_truncated_captures() {
        // A tcpdump -s 100 style capture: snaplen below the frames' length.
        let f = TempPath::new("pcap");
        let frame = udp_frame(1, 200);
        let header = PcapHeader {
            snaplen: 100,
            endianness: Endianness::Big,
            ts_resolution: TsResolution::NanoSecond,
            ..PcapHeader::default()
        };
        let pkt = PcapPacket::new(
            Duration::new(3, 999_999_999),
            frame.len() as u32,
            &frame[..100],
        );
        let mut w = PcapWriter::with_header(File::create(&f.0).unwrap(), header).unwrap();
        // pcap-file refuses orig_len > snaplen on write; write the record raw.
        w.write_raw_packet(&pcap_file::pcap::RawPcapPacket {
            ts_sec: 3,
            ts_frac: 999_999_999,
            incl_len: 100,
            orig_len: pkt.orig_len,
            data: pkt.data.clone(),
        })
        .unwrap();
        drop(w);
        // By default a record cut by the snap length is dropped and counted.
        let mut port = spec(Some(&f.s()), None).open("in", 1, true, false).unwrap();
        let (mut pool, mut batch) = (Pool::new(4), Batch::new());
        assert_eq!(
            port.rx[0].recv(&mut pool, &mut batch, 8).unwrap(),
            Recv::Ended
        );
        let st = port.rx[0].stats();
        assert_eq!((st.packets, st.drops, st.truncated_capture), (0, 1, 1));
        assert_eq!(pool.available(), 4, "no slot leaked");
        // `truncated = "pass"` hands it on, with its length on the wire.
        let got = read_all_with(&f.s(), &[("truncated", "pass")]).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data(), &frame[..100]);
        assert_eq!(got[0].wire_len(), frame.len());
        assert_eq!(got[0].timestamp(), 3_999_999_999);
    }

    /// Records of 9,216 and 16,450 bytes, whole (incl_len = orig_len), with a
    /// short frame after each.
    fn jumbo_file() -> (TempPath, Vec<Vec<u8>>) {
        let f = TempPath::new("pcap");
        let frames = vec![
            udp_frame(0, 9216 - 42),
            udp_frame(1, 10),
            udp_frame(2, 16450 - 42),
            udp_frame(3, 10),
        ];
        let ts = Duration::from_micros(5);
        let header = PcapHeader {
            snaplen: 65535,
            ..PcapHeader::default()
        };
        let pkts: Vec<_> = frames
            .iter()
            .map(|b| PcapPacket::new(ts, b.len() as u32, b))
            .collect();
        write_pcap(&f, header, &pkts);
        (f, frames)
    }

    #[test]
    fn frames_that_fit_the_slot_pass_whole_and_bigger_ones_are_dropped_as_oversize() {
        let (f, frames) = jumbo_file();
        assert_eq!((frames[0].len(), frames[2].len()), (9216, 16450));
        let mut port = spec(Some(&f.s()), None).open("in", 1, true, false).unwrap();
        assert_eq!(port.max_frame, DEFAULT_PCAP_FRAME);
        let rx = &mut port.rx[0];
        let mut pool = Pool::with_max_frame(8, 9216);
        let mut batch = Batch::new();
        assert_eq!(rx.recv(&mut pool, &mut batch, 8).unwrap(), Recv::Got(3));
        assert_eq!(rx.recv(&mut pool, &mut batch, 8).unwrap(), Recv::Ended);
        assert_eq!(batch[0].data(), &frames[0][..], "9,216 bytes, whole");
        assert_eq!(batch[1].data(), &frames[1][..]);
        assert_eq!(batch[2].data(), &frames[3][..]);
        let st = rx.stats();
        assert_eq!((st.packets, st.drops, st.oversize, st.errors), (3, 1, 1, 0));
        assert_eq!(st.bytes, (9216 + 2 * frames[1].len()) as u64);
        pool.free_batch(&mut batch);
        assert_eq!(pool.available(), 8, "no slot leaked");
        // Default slots (2048) take neither; a 64 KiB slot takes both.
        let got = read_all(&f.s()).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|p| p.len() == p.wire_len()), "none cut");
        let mut port = spec(Some(&f.s()), None).open("in", 1, true, false).unwrap();
        let mut pool = Pool::with_max_frame(8, 65535);
        let mut batch = Batch::new();
        assert_eq!(
            port.rx[0].recv(&mut pool, &mut batch, 8).unwrap(),
            Recv::Got(4)
        );
        assert_eq!(batch[2].data(), &frames[2][..], "16,450 bytes, whole");
    }

    #[test]
    fn absurd_original_lengths_are_cut_captures_not_panics() {
        // orig_len far over anything real (and over the 16-bit frame length):
        // a capture cut short, dropped by default, passed with its length
        // saturated when asked.
        let f = TempPath::new("pcap");
        let frame = udp_frame(7, 20);
        let mut w =
            PcapWriter::with_header(File::create(&f.0).unwrap(), PcapHeader::default()).unwrap();
        w.write_raw_packet(&pcap_file::pcap::RawPcapPacket {
            ts_sec: 1,
            ts_frac: 0,
            incl_len: frame.len() as u32,
            orig_len: u32::MAX,
            data: Cow::Borrowed(&frame),
        })
        .unwrap();
        drop(w);
        let mut port = spec(Some(&f.s()), None).open("in", 1, true, false).unwrap();
        let (mut pool, mut batch) = (Pool::new(2), Batch::new());
        assert_eq!(
            port.rx[0].recv(&mut pool, &mut batch, 8).unwrap(),
            Recv::Ended
        );
        assert_eq!(port.rx[0].stats().truncated_capture, 1);
        let got = read_all_with(&f.s(), &[("truncated", "pass")]).unwrap();
        assert_eq!(got[0].data(), &frame[..]);
        assert_eq!(got[0].wire_len(), 65535);
    }

    #[test]
    fn non_ethernet_linktype_is_refused_at_open() {
        let f = TempPath::new("pcap");
        let header = PcapHeader {
            datalink: DataLink::RAW,
            ..PcapHeader::default()
        };
        write_pcap(&f, header, &[]);
        let msg = open_err(&f);
        assert!(msg.starts_with("port `in`: "), "{msg}");
        assert!(msg.contains(&f.s()), "{msg}");
        assert!(
            msg.contains("has link type RAW (101); only Ethernet (1) is supported"),
            "{msg}"
        );
    }

    #[test]
    fn not_a_pcap_file() {
        let f = TempPath::new("txt");
        std::fs::write(&f.0, b"hello, this is not a capture at all").unwrap();
        assert!(open_err(&f).contains("is not a pcap or pcapng file"));
        std::fs::write(&f.0, b"hi").unwrap();
        assert!(open_err(&f).contains("too short"));
        std::fs::write(&f.0, [0xd4, 0xc3, 0xb2, 0xa1, 2, 0]).unwrap();
        assert!(open_err(&f).contains("header is cut short"));
    }

    #[test]
    fn pool_exhaustion_loses_no_packet() {
        let f = TempPath::new("pcap");
        let frames: Vec<(u64, Vec<u8>)> = (0..3u16)
            .map(|i| (i as u64 * 1000, udp_frame(i, 20)))
            .collect();
        write_through_port(&f.s(), &frames);
        let mut port = spec(Some(&f.s()), None).open("in", 1, true, false).unwrap();
        let rx = &mut port.rx[0];
        let mut pool = Pool::new(2);
        let mut batch = Batch::new();
        assert_eq!(rx.recv(&mut pool, &mut batch, 8).unwrap(), Recv::Got(2));
        assert_eq!(rx.recv(&mut pool, &mut batch, 8).unwrap(), Recv::Got(0));
        assert_eq!(batch[1].data(), &frames[1].1[..]);
        pool.free_batch(&mut batch);
        assert_eq!(rx.recv(&mut pool, &mut batch, 8).unwrap(), Recv::Got(1));
        assert_eq!(batch[0].data(), &frames[2].1[..]);
        assert_eq!(batch[0].timestamp(), 2000);
        assert_eq!(rx.recv(&mut pool, &mut batch, 8).unwrap(), Recv::Ended);
        assert_eq!(rx.stats().packets, 3);
        // An exhausted pool is not an error of the port.
        assert_eq!(rx.stats().errors, 0);
    }

    #[test]
    fn recv_respects_max() {
        let f = TempPath::new("pcap");
        let frames: Vec<(u64, Vec<u8>)> = (0..5u16).map(|i| (0, udp_frame(i, 0))).collect();
        write_through_port(&f.s(), &frames);
        let mut port = spec(Some(&f.s()), None).open("in", 1, true, false).unwrap();
        let rx = &mut port.rx[0];
        let mut pool = Pool::new(16);
        let mut batch = Batch::new();
        assert_eq!(rx.recv(&mut pool, &mut batch, 2).unwrap(), Recv::Got(2));
        assert_eq!(rx.recv(&mut pool, &mut batch, 2).unwrap(), Recv::Got(2));
        assert_eq!(rx.recv(&mut pool, &mut batch, 2).unwrap(), Recv::Got(1));
        assert_eq!(rx.recv(&mut pool, &mut batch, 2).unwrap(), Recv::Ended);
        assert_eq!(batch.len(), 5);
        assert_eq!(pool.available(), 11);
    }

    #[test]
    fn truncated_file_delivers_complete_packets_then_errors() {
        let f = TempPath::new("pcap");
        let frames: Vec<(u64, Vec<u8>)> = (0..3u16).map(|i| (0, udp_frame(i, 30))).collect();
        write_through_port(&f.s(), &frames);
        let bytes = std::fs::read(&f.0).unwrap();
        std::fs::write(&f.0, &bytes[..bytes.len() - 5]).unwrap();
        let mut port = spec(Some(&f.s()), None).open("in", 1, true, false).unwrap();
        let rx = &mut port.rx[0];
        let mut pool = Pool::new(16);
        let mut batch = Batch::new();
        assert_eq!(rx.recv(&mut pool, &mut batch, 8).unwrap(), Recv::Got(2));
        let msg = rx.recv(&mut pool, &mut batch, 8).unwrap_err().to_string();
        assert!(
            msg.contains("ends in the middle of packet 3 (truncated file?)"),
            "{msg}"
        );
        assert_eq!(rx.recv(&mut pool, &mut batch, 8).unwrap(), Recv::Ended);
        assert_eq!(pool.available(), 14, "no slot leaked");
    }

    #[test]
    fn corrupt_record_is_an_error() {
        let f = TempPath::new("pcap");
        write_through_port(&f.s(), &[(0, udp_frame(0, 30))]);
        let mut bytes = std::fs::read(&f.0).unwrap();
        // Microsecond field of the first record: 2_000_000 is out of range.
        bytes[28..32].copy_from_slice(&2_000_000u32.to_le_bytes());
        std::fs::write(&f.0, &bytes).unwrap();
        let msg = read_all(&f.s()).unwrap_err().to_string();
        assert!(
            msg.contains("is corrupt at packet 1: timestamp fraction 2000000 out of range"),
            "{msg}"
        );
        // A record length beyond anything libpcap writes.
        bytes[28..32].copy_from_slice(&0u32.to_le_bytes());
        bytes[32..36].copy_from_slice(&300_000u32.to_le_bytes());
        bytes.resize(bytes.len() + 300_000, 0);
        std::fs::write(&f.0, &bytes).unwrap();
        let msg = read_all(&f.s()).unwrap_err().to_string();
        assert!(msg.contains("record length 300000 is over 262144"), "{msg}");
    }

    #[test]
    fn garbage_never_panics() {
        let f = TempPath::new("pcap");
        let frames: Vec<(u64, Vec<u8>)> = (0..4u16).map(|i| (i as u64, udp_frame(i, 40))).collect();
        write_through_port(&f.s(), &frames);
        let pcap = std::fs::read(&f.0).unwrap();
        let ng = pcapng_bytes(&frames, None);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for base in [pcap, ng] {
            // Every truncation point, and random byte flips.
            for cut in 0..base.len() {
                std::fs::write(&f.0, &base[..cut]).unwrap();
                let _ = read_all(&f.s());
            }
            for _ in 0..300 {
                let mut b = base.clone();
                for _ in 0..4 {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let at = (seed >> 33) as usize % b.len();
                    b[at] = (seed >> 8) as u8;
                }
                std::fs::write(&f.0, &b).unwrap();
                let _ = read_all(&f.s());
            }
        }
    }

    /// A pcapng file (little-endian) with one Ethernet interface of the given
    /// `if_tsresol`, with timestamps written in that interface's units.
    fn pcapng_bytes(frames: &[(u64, Vec<u8>)], tsresol: Option<u8>) -> Vec<u8> {
        let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Little).unwrap();
        let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0);
        if let Some(r) = tsresol {
            idb.options.push(InterfaceDescriptionOption::IfTsResol(r));
        }
        w.write_pcapng_block(idb).unwrap();
        for (units, f) in frames {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                // pcap-file writes as_nanos() as the raw count of units.
                timestamp: Duration::from_nanos(*units),
                original_len: f.len() as u32,
                data: Cow::Borrowed(f),
                options: vec![],
            })
            .unwrap();
        }
        w.into_inner()
    }

    #[test]
    fn reads_pcapng_with_interface_time_resolution() {
        let f = TempPath::new("pcapng");
        let frames: Vec<(u64, Vec<u8>)> = (0..3u16)
            .map(|i| (1_700_000_000_000_000 + i as u64, udp_frame(i, 20)))
            .collect();
        // Default resolution: microseconds.
        std::fs::write(&f.0, pcapng_bytes(&frames, None)).unwrap();
        let got = read_all(&f.s()).unwrap();
        assert_eq!(got.len(), 3);
        for (p, (us, bytes)) in got.iter().zip(&frames) {
            assert_eq!(p.data(), &bytes[..]);
            assert_eq!(p.timestamp(), us * 1000);
        }
        // Nanoseconds (10^-9) and 2^-10 s units.
        std::fs::write(&f.0, pcapng_bytes(&frames, Some(9))).unwrap();
        assert_eq!(read_all(&f.s()).unwrap()[2].timestamp(), frames[2].0);
        std::fs::write(
            &f.0,
            pcapng_bytes(&[(3 * 1024 + 512, udp_frame(0, 0))], Some(0x8a)),
        )
        .unwrap();
        assert_eq!(read_all(&f.s()).unwrap()[0].timestamp(), 3_500_000_000);
    }

    #[test]
    fn pcapng_simple_packets_and_bad_interfaces() {
        let f = TempPath::new("pcapng");
        let frame = udp_frame(0, 10);
        let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Big).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0))
            .unwrap();
        w.write_pcapng_block(SimplePacketBlock {
            original_len: frame.len() as u32,
            data: Cow::Borrowed(&frame),
        })
        .unwrap();
        std::fs::write(&f.0, w.into_inner()).unwrap();
        let got = read_all(&f.s()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data(), &frame[..]);

        // A packet on a non-Ethernet interface.
        let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Little).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::LINUX_SLL, 0))
            .unwrap();
        w.write_pcapng_block(SimplePacketBlock {
            original_len: frame.len() as u32,
            data: Cow::Borrowed(&frame),
        })
        .unwrap();
        std::fs::write(&f.0, w.into_inner()).unwrap();
        let msg = read_all(&f.s()).unwrap_err().to_string();
        assert!(
            msg.contains(
                "interface 0 has link type LINUX_SLL (113); only Ethernet (1) is supported"
            ),
            "{msg}"
        );

        // A packet before any interface description.
        let mut w = PcapNgWriter::with_endianness(Vec::new(), Endianness::Little).unwrap();
        w.write_pcapng_block(SimplePacketBlock {
            original_len: frame.len() as u32,
            data: Cow::Borrowed(&frame),
        })
        .unwrap();
        std::fs::write(&f.0, w.into_inner()).unwrap();
        let msg = read_all(&f.s()).unwrap_err().to_string();
        assert!(
            msg.contains("no interface description block declares"),
            "{msg}"
        );
    }
}
