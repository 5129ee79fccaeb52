//! The table file: a bridge worker's MAC table as a small text file,
//! rewritten atomically at most once per second.
//!
//! ```text
//! # hpio-nf Bridge MAC table: worker 0, 2 entries (max 4096), aging 300s
//! # mac port age
//! 02:00:00:00:00:0a 0 0.125
//! 02:00:00:00:00:0b 1 3.000
//! ```
//!
//! One line per entry live at the latest frame's time, sorted by address;
//! the age is in seconds since the address was last seen, as of that time.
//! Each write goes to `<file>.tmp`, then is renamed over `<file>`, so a
//! reader sees either the previous table or the new one, whole.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::table::{Entry, MacTable};

/// Least time between two periodic writes.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Where and how a worker's table is written.
#[derive(Debug)]
pub(super) struct TableFile {
    path: PathBuf,
    tmp: PathBuf,
    worker: usize,
    max_entries: usize,
    aging_ns: u64,
    /// Reused for every write.
    text: String,
    rows: Vec<Entry>,
    /// Time of the last write attempt, and the table's (change count,
    /// clock) it showed.
    last: Option<(Instant, u64, u64)>,
    errors: u64,
}

impl TableFile {
    /// A writer to `path` for worker `worker`'s table.
    pub fn new(path: PathBuf, worker: usize, max_entries: usize, aging_ns: u64) -> TableFile {
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        TableFile {
            path,
            tmp: PathBuf::from(tmp),
            worker,
            max_entries,
            aging_ns,
            text: String::new(),
            rows: Vec::new(),
            last: None,
            errors: 0,
        }
    }

    /// Failed writes so far.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Writes the table if the last write is a second old or more and the
    /// table (its contents, or the clock its ages are measured at) changed
    /// since; the first call always writes.
    pub fn tick(&mut self, table: &MacTable, now: u64, changes: u64) {
        if let Some((at, c, n)) = self.last {
            if (c, n) == (changes, now) || at.elapsed() < MIN_INTERVAL {
                return;
            }
        }
        self.write(table, now, changes);
    }

    /// Writes the table now.
    pub fn write(&mut self, table: &MacTable, now: u64, changes: u64) {
        self.last = Some((Instant::now(), changes, now));
        self.render(table, now);
        let res = replaceable(&self.path)
            .and_then(|()| std::fs::write(&self.tmp, self.text.as_bytes()))
            .and_then(|()| std::fs::rename(&self.tmp, &self.path));
        if let Err(e) = res {
            if self.errors == 0 {
                log::warn!(
                    "Bridge worker {}: cannot write table_file {}: {e} (further failures are \
                     only counted in table-file-errors)",
                    self.worker,
                    self.path.display()
                );
            }
            self.errors += 1;
        }
    }

    /// The file's text for `table` at `now`, in `self.text`.
    fn render(&mut self, table: &MacTable, now: u64) {
        self.rows.clear();
        self.rows
            .extend(table.entries().filter(|e| !table.is_expired(e.seen, now)));
        self.rows.sort_unstable_by_key(|e| e.mac);
        let t = &mut self.text;
        t.clear();
        // Writing to a String cannot fail.
        let _ = writeln!(
            t,
            "# hpio-nf Bridge MAC table: worker {}, {} entries (max {}), aging {}",
            self.worker,
            self.rows.len(),
            self.max_entries,
            format_duration(self.aging_ns)
        );
        let _ = writeln!(t, "# mac port age");
        for e in &self.rows {
            let b = e.mac.to_be_bytes();
            let age = now.saturating_sub(e.seen);
            let _ = writeln!(
                t,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} {} {}.{:03}",
                b[2],
                b[3],
                b[4],
                b[5],
                b[6],
                b[7],
                e.port,
                age / 1_000_000_000,
                age % 1_000_000_000 / 1_000_000
            );
        }
    }
}

/// `300s`, `1.5s`, `250ms`: a duration as the config would write it.
fn format_duration(ns: u64) -> String {
    if ns % 1_000_000_000 == 0 {
        format!("{}s", ns / 1_000_000_000)
    } else if ns >= 1_000_000_000 {
        format!("{}s", ns as f64 / 1e9)
    } else if ns % 1_000_000 == 0 {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{}us", ns as f64 / 1e3)
    }
}

/// Only a regular file (or none yet) may be replaced by the rename: a
/// `table_file` naming a device such as /dev/null, or a FIFO, would be
/// replaced by a regular file, breaking everything else that uses it.
fn replaceable(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (the table is written to FILE.tmp and renamed over FILE)",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn read(path: &std::path::Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn renders_live_entries_sorted_with_ages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdb");
        let mut f = TableFile::new(path.clone(), 0, 8, 10 * S);
        let mut t = MacTable::new(8, 10 * S);
        t.learn(0x0200_0000_000b, 1, 2 * S);
        t.learn(0x0200_0000_000a, 0, 5 * S + 125_000_000);
        t.learn(0xfeed_0000_0001, 7, 0); // expired at 10 s: not shown
        f.write(&t, 10 * S, 3);
        assert_eq!(
            read(&path),
            "# hpio-nf Bridge MAC table: worker 0, 2 entries (max 8), aging 10s\n\
             # mac port age\n\
             02:00:00:00:00:0a 0 4.875\n\
             02:00:00:00:00:0b 1 8.000\n"
        );
        assert!(!dir.path().join("fdb.tmp").exists(), "renamed into place");
        assert_eq!(f.errors(), 0);
    }

    #[test]
    fn tick_writes_at_most_once_a_second_and_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdb");
        let mut f = TableFile::new(path.clone(), 3, 8, 300 * S);
        let mut t = MacTable::new(8, 300 * S);
        f.tick(&t, 0, 0);
        assert!(read(&path).contains("worker 3, 0 entries (max 8), aging 300s"));
        t.learn(1, 0, S);
        f.tick(&t, S, 1);
        assert!(
            read(&path).contains("0 entries"),
            "within a second of the last write"
        );
        // A second later: written.
        f.last = f.last.map(|(at, c, n)| (at - MIN_INTERVAL, c, n));
        f.tick(&t, S, 1);
        assert!(read(&path).contains("1 entries"));
        assert!(read(&path).contains("00:00:00:00:00:01 0 0.000"));
        // Nothing changed since: not rewritten, even much later.
        std::fs::remove_file(&path).unwrap();
        f.last = f.last.map(|(at, c, n)| (at - 10 * MIN_INTERVAL, c, n));
        f.tick(&t, S, 1);
        assert!(!path.exists());
        // The clock moved: the ages changed.
        f.tick(&t, 3 * S, 1);
        assert!(read(&path).contains("00:00:00:00:00:01 0 2.000"));
    }

    #[test]
    fn a_failed_write_is_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("fdb");
        let mut f = TableFile::new(path, 0, 8, S);
        let t = MacTable::new(8, S);
        f.write(&t, 0, 0);
        f.write(&t, 0, 0);
        assert_eq!(f.errors(), 2);
    }

    /// A table_file naming a FIFO (or a device: /dev/null) is not replaced
    /// by a regular file: the write fails and is counted.
    #[test]
    fn a_file_that_is_not_regular_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let mut f = TableFile::new(path.clone(), 0, 8, S);
        f.write(&MacTable::new(8, S), 0, 0);
        assert_eq!(f.errors(), 1);
        assert!(!std::fs::metadata(&path).unwrap().is_file(), "still a FIFO");
        assert!(!dir.path().join("fifo.tmp").exists());
    }

    #[test]
    fn durations_read_like_the_config() {
        assert_eq!(format_duration(300 * S), "300s");
        assert_eq!(format_duration(1_500_000_000), "1.5s");
        assert_eq!(format_duration(250_000_000), "250ms");
        assert_eq!(format_duration(1_500), "1.5us");
    }
}
