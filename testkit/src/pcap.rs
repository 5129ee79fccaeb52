//! pcap files through the `pcap-file` crate, independent of the code under
//! test: what a test feeds a port and reads back.
//!
//! Files are written with the default header (microsecond stamps, snaplen
//! 65535, Ethernet); [`read`] takes microsecond and nanosecond files alike.

use std::path::Path;

use pcap_file::pcap::{PcapHeader, PcapReader, PcapWriter, RawPcapPacket};
use pcap_file::TsResolution;

/// One record of a pcap file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its timestamp in nanoseconds (a microsecond file keeps whole µs).
    pub ts_ns: u64,
    /// The bytes captured.
    pub data: Vec<u8>,
    /// The frame's length on the wire (more than `data` for a cut capture).
    pub orig_len: u32,
}

impl Frame {
    /// A whole frame (`orig_len` = its length) at `ts_ns`.
    pub fn new(ts_ns: u64, data: Vec<u8>) -> Frame {
        let orig_len = data.len() as u32;
        Frame {
            ts_ns,
            data,
            orig_len,
        }
    }
}

/// Writes `frames` to `path` as they are: stamps cut to microseconds,
/// `incl_len` the bytes given, `orig_len` as given.
pub fn write(path: &Path, frames: &[Frame]) {
    let f =
        std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut w = PcapWriter::with_header(f, PcapHeader::default()).unwrap();
    for fr in frames {
        w.write_raw_packet(&RawPcapPacket {
            ts_sec: (fr.ts_ns / 1_000_000_000) as u32,
            ts_frac: (fr.ts_ns % 1_000_000_000 / 1_000) as u32,
            incl_len: fr.data.len() as u32,
            orig_len: fr.orig_len,
            data: fr.data.as_slice().into(),
        })
        .unwrap();
    }
}

/// Writes whole frames `data` to `path`, the first at `start_ns` and each
/// next `step_ns` later.
pub fn write_data(path: &Path, data: &[Vec<u8>], start_ns: u64, step_ns: u64) {
    let frames: Vec<Frame> = data
        .iter()
        .enumerate()
        .map(|(i, d)| Frame::new(start_ns + i as u64 * step_ns, d.clone()))
        .collect();
    write(path, &frames);
}

/// Every record of `path`, in file order.
pub fn read(path: &Path) -> Vec<Frame> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut r = PcapReader::new(f).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let frac_ns = match r.header().ts_resolution {
        TsResolution::MicroSecond => 1_000,
        TsResolution::NanoSecond => 1,
    };
    let mut v = Vec::new();
    while let Some(p) = r.next_raw_packet() {
        let p = p.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        v.push(Frame {
            ts_ns: u64::from(p.ts_sec) * 1_000_000_000 + u64::from(p.ts_frac) * frac_ns,
            data: p.data.into_owned(),
            orig_len: p.orig_len,
        });
    }
    v
}

/// The bytes of every record of `path`, in file order.
pub fn read_data(path: &Path) -> Vec<Vec<u8>> {
    read(path).into_iter().map(|f| f.data).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_with_stamps_and_lengths() {
        let dir = std::env::temp_dir().join(format!("testkit-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.pcap");
        let frames = vec![
            Frame::new(1_000_002_000, vec![1; 60]),
            Frame {
                ts_ns: 3_999_999_000,
                data: vec![2; 100],
                orig_len: 9000,
            },
        ];
        write(&path, &frames);
        assert_eq!(read(&path), frames);
        // Nanoseconds below a microsecond are cut.
        write(&path, &[Frame::new(1_234, vec![3; 20])]);
        assert_eq!(read(&path)[0].ts_ns, 1_000);
        write_data(&path, &[vec![4; 20], vec![5; 30]], 1_000_000_000, 10_000);
        let back = read(&path);
        assert_eq!(
            back.iter().map(|f| f.ts_ns).collect::<Vec<_>>(),
            [1_000_000_000, 1_000_010_000]
        );
        assert_eq!(read_data(&path), [vec![4; 20], vec![5; 30]]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nanosecond_files_read_to_the_nanosecond() {
        let dir = std::env::temp_dir().join(format!("testkit-pcapns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ns.pcap");
        let header = PcapHeader {
            ts_resolution: TsResolution::NanoSecond,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(std::fs::File::create(&path).unwrap(), header).unwrap();
        w.write_raw_packet(&RawPcapPacket {
            ts_sec: 2,
            ts_frac: 7,
            incl_len: 3,
            orig_len: 3,
            data: vec![1, 2, 3].into(),
        })
        .unwrap();
        drop(w);
        assert_eq!(read(&path), [Frame::new(2_000_000_007, vec![1, 2, 3])]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
