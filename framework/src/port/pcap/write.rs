//! The transmit side of a pcap port: one classic pcap file shared by every worker.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use pcap_file::pcap::PcapHeader;
use pcap_file::{DataLink, Endianness, TsResolution};

use crate::packet::{Batch, Packet, Pool};
use crate::port::{PortError, QueueStats, TxQueue};

/// Snapshot length written in the file header.
const SNAPLEN: u32 = 65_535;
/// Buffer between the workers and the file.
const BUF_BYTES: usize = 1 << 20;

/// The output file of one port.
pub(super) struct PcapSink {
    file: String,
    out: BufWriter<File>,
}

/// A worker's transmit handle.
pub(super) struct PcapTx {
    port: String,
    /// Shared by the transmit handles of all workers of the port; the mutex
    /// guards the file, and each handle holds a reference. Locked once per
    /// `send` or `finish` call.
    sink: Arc<Mutex<PcapSink>>,
    stats: QueueStats,
}

impl PcapSink {
    /// Creates (or truncates) `path` and writes the pcap file header.
    pub(super) fn create(port: &str, path: &Path) -> Result<Arc<Mutex<PcapSink>>, PortError> {
        let file = path.display().to_string();
        let f = File::create(path)
            .map_err(|e| PortError::io(port, format!("cannot create output file `{file}`"), e))?;
        let mut out = BufWriter::with_capacity(BUF_BYTES, f);
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::Little,
        };
        header
            .write_to(&mut out)
            .map_err(std::io::Error::other)
            .map_err(|e| PortError::io(port, format!("cannot write output file `{file}`"), e))?;
        Ok(Arc::new(Mutex::new(PcapSink { file, out })))
    }

    /// Appends one record: little-endian header, microsecond timestamp.
    fn write(&mut self, p: &Packet) -> std::io::Result<()> {
        let ns = p.timestamp();
        let sec = u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX);
        let usec = (ns % 1_000_000_000 / 1000) as u32;
        let data = p.data();
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&sec.to_le_bytes());
        rec[4..8].copy_from_slice(&usec.to_le_bytes());
        rec[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(p.wire_len() as u32).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(data)
    }
}

impl PcapTx {
    pub(super) fn new(port: &str, sink: Arc<Mutex<PcapSink>>) -> PcapTx {
        PcapTx {
            port: port.to_string(),
            sink,
            stats: QueueStats::default(),
        }
    }
}

/// Locks the file of port `port`.
fn lock<'a>(port: &str, sink: &'a Mutex<PcapSink>) -> Result<MutexGuard<'a, PcapSink>, PortError> {
    sink.lock().map_err(|_| {
        PortError::other(
            port,
            "output file abandoned: another worker panicked while writing it",
        )
    })
}

impl TxQueue for PcapTx {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        let (mut written, mut bytes) = (0u64, 0u64);
        let result = lock(&self.port, &self.sink).and_then(|mut sink| {
            for p in batch.iter() {
                sink.write(p).map_err(|e| {
                    let what = format!("cannot write output file `{}`", sink.file);
                    PortError::io(&self.port, what, e)
                })?;
                written += 1;
                bytes += p.len() as u64;
            }
            Ok(())
        });
        self.stats.packets += written;
        self.stats.bytes += bytes;
        self.stats.drops += batch.len() as u64 - written;
        self.stats.errors += u64::from(result.is_err());
        pool.free_batch(batch);
        result
    }

    fn finish(&mut self) -> Result<(), PortError> {
        let mut sink = lock(&self.port, &self.sink)?;
        sink.out.flush().map_err(|e| {
            let what = format!("cannot write output file `{}`", sink.file);
            PortError::io(&self.port, what, e)
        })
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{read_all_with, spec, udp_frame, TempPath};
    use super::*;
    use crate::port::Recv;

    #[test]
    fn header_is_classic_little_endian_microsecond_ethernet() {
        let f = TempPath::new("pcap");
        let port = spec(None, Some(&f.s())).open("o", 1, false, true).unwrap();
        let mut tx = port.tx.into_iter().next().unwrap();
        let mut pool = Pool::new(2);
        let mut batch = Batch::new();
        let mut p = pool.alloc().unwrap();
        p.set_frame(&udp_frame(0, 4));
        p.set_timestamp(5_000_001_999);
        batch.push(p);
        tx.send(&mut pool, &mut batch).unwrap();
        tx.finish().unwrap();
        let b = std::fs::read(&f.0).unwrap();
        assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1], "microsecond magic, LE");
        assert_eq!(&b[4..8], &[2, 0, 4, 0], "version 2.4");
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 65_535);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 5);
        assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), 1);
        assert_eq!(b.len(), 24 + 16 + udp_frame(0, 4).len());
        // The slot went back to the pool.
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn workers_share_one_file_and_keep_wire_len() {
        let f = TempPath::new("pcap");
        let port = spec(None, Some(&f.s())).open("o", 3, false, true).unwrap();
        let mut txs = port.tx;
        assert_eq!(txs.len(), 3);
        let mut pool = Pool::new(8);
        for (w, tx) in txs.iter_mut().enumerate() {
            let mut batch = Batch::new();
            for i in 0..2u16 {
                let mut p = pool.alloc().unwrap();
                p.set_frame(&udp_frame(w as u16 * 10 + i, 8));
                p.set_timestamp(w as u64 * 1000);
                batch.push(p);
            }
            tx.send(&mut pool, &mut batch).unwrap();
            assert_eq!(tx.stats().packets, 2);
        }
        // A truncated frame (a capture passed with `truncated = "pass"`)
        // keeps its wire length; a jumbo frame is written whole.
        let mut batch = Batch::new();
        let mut p = Packet::new();
        assert!(!p.set_frame(&udp_frame(99, 3000)));
        assert_eq!(p.len(), 2048);
        p.set_timestamp(7000);
        batch.push(p);
        let jumbo = udp_frame(100, 9216 - 42);
        batch.push(Packet::from_bytes(&jumbo));
        txs[0].send(&mut pool, &mut batch).unwrap();
        assert_eq!(pool.available(), 8);
        drop(txs); // The last handle flushes.
        let got = read_all_with(&f.s(), &[("truncated", "pass")]).unwrap();
        assert_eq!(
            got.len(),
            7,
            "the jumbo frame is over the reader's 2048-byte slots"
        );
        let mut port = spec(Some(&f.s()), None).open("in", 1, true, false).unwrap();
        let mut big = Pool::with_max_frame(16, 9216);
        let mut all = Batch::new();
        while let Recv::Got(_) = port.rx[0].recv(&mut big, &mut all, 16).unwrap() {}
        assert_eq!(all.len(), 7, "the cut record is dropped by default");
        assert_eq!(all[6].data(), &jumbo[..]);
        assert_eq!(port.rx[0].stats().truncated_capture, 1);
        for (i, p) in got[..6].iter().enumerate() {
            let (w, k) = (i / 2, i % 2);
            assert_eq!(p.data(), &udp_frame(w as u16 * 10 + k as u16, 8)[..]);
            assert_eq!(p.timestamp(), w as u64 * 1000);
        }
        assert_eq!(got[6].len(), 2048);
        assert_eq!(got[6].wire_len(), udp_frame(99, 3000).len());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn write_errors_are_reported_and_slots_recycled() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let port = spec(None, Some("/dev/full"))
            .open("o", 1, false, true)
            .unwrap();
        let mut tx = port.tx.into_iter().next().unwrap();
        let mut pool = Pool::new(1);
        let mut batch = Batch::new();
        batch.push(pool.alloc().unwrap());
        // The 1 MiB buffer hides the error until the flush.
        tx.send(&mut pool, &mut batch).unwrap();
        assert_eq!(pool.available(), 1);
        let msg = tx.finish().unwrap_err().to_string();
        assert!(
            msg.contains("port `o`: cannot write output file `/dev/full`"),
            "{msg}"
        );
        assert!(msg.contains("No space left on device"), "{msg}");
    }
}
