//! What one scattered table read costs on this machine, with the reads
//! prefetched ahead as `IpLookup` does: the floor under `bench lookup4`,
//! whose DIR-24-8 `tbl24` is 32 MiB read at random (docs/benchmarks.md,
//! "How fast can a 32 MiB table be read at random").
//!
//! ```sh
//! cargo run --release -p hpio-nf --example random_reads -- [AHEAD] [WORK] [MIB...]
//! taskset -c 1 target/release/examples/random_reads 16 0
//! ```
//!
//! For tables of 1 to 64 MiB (or the sizes given) of `u16` entries it reads 50 M entries at
//! pseudo-random indices, in bursts of 256 with each entry prefetched
//! `AHEAD` reads before its use, and spends `WORK` dependent
//! multiply-adds on each value (the rest of a packet's work stands in for
//! them). It prints nanoseconds of wall clock per read: pin it to a core.
//! Whether the table sits on huge pages follows the system's setting
//! (`/sys/kernel/mm/transparent_hugepage/enabled`: `always` gives them).

use std::time::Instant;

const READS: usize = 50_000_000;
const BURST: usize = 256;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| match args.get(i) {
        None => default,
        Some(a) => a.parse().unwrap_or_else(|_| {
            eprintln!("random_reads: {a:?} is not a number; usage: random_reads [AHEAD] [WORK]");
            std::process::exit(2)
        }),
    };
    let (ahead, work) = (arg(0, 16).min(BURST), arg(1, 0));
    println!(
        "{READS} reads, bursts of {BURST}, prefetched {ahead} ahead, {work} multiply-adds each"
    );
    let sizes: Vec<usize> = if args.len() > 2 {
        (2..args.len()).map(|i| arg(i, 1)).collect()
    } else {
        vec![1, 2, 4, 8, 16, 32, 64]
    };
    for mib in sizes {
        let entries = (mib << 20) / 2;
        // Every page written, so that no read finds the shared zero page.
        let table: Vec<u16> = (0..entries).map(|i| i as u16).collect();
        let ns = reads(&table, ahead, work);
        let latency = chase(mib << 20);
        println!("{mib:3} MiB: {ns:6.2} ns per read, {latency:6.1} ns per dependent read");
    }
}

/// Nanoseconds per load of a chain of dependent loads through `bytes` of
/// `u32`s that link every entry in one pseudo-random cycle: the latency
/// a read pays when nothing hides it.
fn chase(bytes: usize) -> f64 {
    const LOADS: usize = 5_000_000;
    let n = bytes / 4;
    // One random cycle through all entries (Sattolo's shuffle), so that
    // no prefetcher can guess the next address.
    let mut next: Vec<u32> = (0..n as u32).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        next.swap(i, (x % i as u64) as usize);
    }
    let mut p = 0u32;
    let start = Instant::now();
    for _ in 0..LOADS {
        p = next[p as usize];
    }
    std::hint::black_box(p);
    start.elapsed().as_secs_f64() * 1e9 / LOADS as f64
}

/// Nanoseconds per read of `READS` scattered reads of `table` (a power
/// of two long).
fn reads(table: &[u16], ahead: usize, work: usize) -> f64 {
    let mask = table.len() - 1;
    let mut idx = [0usize; BURST];
    let mut x: u32 = 1;
    let mut sum: u64 = 0;
    let start = Instant::now();
    for _ in 0..READS / BURST {
        for i in &mut idx {
            x = x.wrapping_mul(2_654_435_761).wrapping_add(12_345);
            *i = (x >> 4) as usize & mask;
        }
        for &i in &idx[..ahead] {
            prefetch(&table[i]);
        }
        for k in 0..BURST {
            if let Some(&j) = idx.get(k + ahead) {
                prefetch(&table[j]);
            }
            let mut v = u64::from(table[idx[k]]);
            for w in 0..work as u64 {
                v = std::hint::black_box(v.wrapping_mul(31).wrapping_add(w));
            }
            sum = sum.wrapping_add(v);
        }
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / READS as f64;
    std::hint::black_box(sum);
    ns
}

#[inline(always)]
fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 (SSE, on every x86-64 processor) loads nothing
    // into a register and cannot fault; `x` is a live reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}
