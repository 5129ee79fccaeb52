//! Receive mode (`--rx`): each thread polls its share of the port's receive
//! queues and counts the frames that pass the filter.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hpio_nf::packet::{Batch, Pool};
use hpio_nf::port::{PortError, QueueStats, Recv, RxQueue};

use super::{join, PktgenArgs, Running, PORT};
use crate::tool::{load_config, pin, Filter, Live};

/// Packets per receive call in `--rx` mode.
const RX_BURST: usize = 256;
/// Empty polls in a row before a receive thread starts napping.
const RX_SPINS: u32 = 2000;
/// A receive thread's nap when nothing arrives.
const RX_NAP: Duration = Duration::from_micros(50);
/// Passes between two looks at the clock, to see whether the queues'
/// counters are due.
const CLOCK_EVERY: u32 = 64;
/// The least time between two reads of the queues' counters: a
/// `getsockopt` each on `af_packet`, which takes the lock the kernel's
/// receive path takes, and a system call costs microseconds in some
/// guests. Counted by passes alone (every 64th), a thread spinning
/// between naps made about 70,000 a second in scripts/bench-live.sh.
const STATS_EVERY: Duration = Duration::from_millis(10);

pub(super) fn start_rx(
    a: &PktgenArgs,
    cores: &[usize],
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Running> {
    let threads = cores.len();
    a.port.check()?;
    let filter = a.filter.as_deref().map(Filter::parse).transpose()?;
    // One receive queue per thread, unless --param says otherwise.
    let extra = if a.port.driver_has("queues") {
        vec![("queues", threads.to_string())]
    } else {
        Vec::new()
    };
    let config = load_config(
        "pktgen",
        &[&format!("{PORT} -> discard")],
        &[a.port.table(PORT, &extra)],
        &a.port.overrides(PORT),
    )?;
    let open = config.ports[0].spec.open(PORT, threads, true, false)?;
    let queues = open.rx.len();
    // Slots that hold the largest frame the interface delivers.
    let slot = open.max_frame;
    if queues < threads {
        log::warn!(
            "port `{PORT}` has {queues} receive queue(s) for {threads} threads: \
             {} thread(s) will be idle",
            threads - queues
        );
    }
    let mut shares: Vec<Vec<Box<dyn RxQueue>>> = (0..threads).map(|_| Vec::new()).collect();
    for (q, rxq) in open.rx.into_iter().enumerate() {
        shares[q % threads].push(rxq);
    }
    eprintln!(
        "pktgen: counting frames{} on {} (driver {}, {queues} queue(s)), {threads} thread(s) on core(s) {}",
        a.filter
            .as_deref()
            .map_or(String::new(), |f| format!(" matching `{f}`")),
        a.port.label(&*config.ports[0].spec),
        open.driver,
        join(cores)
    );
    let live: Arc<[Live]> = (0..threads).map(|_| Live::default()).collect();
    let limit = a.count.map(|c| (c, Arc::new(AtomicU64::new(0))));
    let start = Instant::now();
    let handles = shares
        .into_iter()
        .enumerate()
        .map(|(t, qs)| {
            let (live, stop, core) = (live.clone(), stop.clone(), cores[t]);
            let (filter, limit) = (filter.clone(), limit.clone());
            std::thread::Builder::new()
                .name(format!("pktgen-rx{t}"))
                .spawn(move || {
                    pin(core);
                    let r = count_loop(qs, filter.as_ref(), limit, slot, &stop, &live[t]);
                    live[t].finish();
                    r
                })
                .context("starting a thread")
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Running {
        mode: "rx",
        what: a.port.label(&*config.ports[0].spec),
        driver: open.driver,
        start,
        live,
        handles,
    })
}

/// One receive thread: counts frames (those passing `filter`) on its
/// queues until they all end, `stop`, or the shared `limit` is reached.
fn count_loop(
    mut queues: Vec<Box<dyn RxQueue>>,
    filter: Option<&Filter>,
    limit: Option<(u64, Arc<AtomicU64>)>,
    slot: usize,
    stop: &AtomicBool,
    live: &Live,
) -> Result<Instant, PortError> {
    let mut pool = Pool::with_max_frame(4 * RX_BURST, slot);
    let mut b = Batch::new();
    let mut counted = QueueStats::default();
    let mut ended = vec![false; queues.len()];
    let mut idle = 0u32;
    let mut kept = QueueStats::default();
    let mut pass = 0u32;
    let mut stats_at = Instant::now();
    while !stop.load(Ordering::Relaxed) && ended.iter().any(|e| !e) {
        let mut got = 0;
        for (q, rxq) in queues.iter_mut().enumerate() {
            if ended[q] {
                continue;
            }
            match rxq.recv(&mut pool, &mut b, RX_BURST)? {
                Recv::Ended => ended[q] = true,
                Recv::Got(n) => got += n,
            }
            let (mut n, mut bytes) = count_matching(&mut b, filter, u64::MAX);
            if let Some((max, total)) = &limit {
                let allowed = claim(*max, total, n, stop);
                if allowed < n {
                    (n, bytes) = count_matching(&mut b, filter, allowed);
                }
            }
            counted.packets += n;
            counted.bytes += bytes;
            pool.free_batch(&mut b);
        }
        pass = pass.wrapping_add(1);
        if pass % CLOCK_EVERY == 0 && stats_at.elapsed() >= STATS_EVERY {
            kept = queue_faults(&queues);
            stats_at = Instant::now();
        }
        live.publish(&with_faults(counted, kept));
        if got == 0 {
            idle = idle.saturating_add(1);
            if idle > RX_SPINS {
                std::thread::sleep(RX_NAP);
            }
        } else {
            idle = 0;
        }
    }
    live.publish(&with_faults(counted, queue_faults(&queues)));
    Ok(Instant::now())
}

/// The drops and errors of `queues` so far.
fn queue_faults(queues: &[Box<dyn RxQueue>]) -> QueueStats {
    let mut s = QueueStats::default();
    for rxq in queues {
        let q = rxq.stats();
        s.drops += q.drops;
        s.errors += q.errors;
    }
    s
}

/// `counted` with the drops and errors of `faults`.
fn with_faults(counted: QueueStats, faults: QueueStats) -> QueueStats {
    QueueStats {
        drops: faults.drops,
        errors: faults.errors,
        ..counted
    }
}

/// The frames of `b` that pass `filter` and their bytes on the wire, counting
/// the first `most` of them only.
fn count_matching(b: &mut Batch, filter: Option<&Filter>, most: u64) -> (u64, u64) {
    let (mut n, mut bytes) = (0u64, 0u64);
    for p in b.iter_mut() {
        if n < most && filter.is_none_or(|f| f.pass(p)) {
            n += 1;
            bytes += p.wire_len() as u64;
        }
    }
    (n, bytes)
}

/// Adds `n` counted frames to the threads' shared `total`, and returns how
/// many of them fit under `max` (the rest are not counted); sets `stop` once
/// `max` is reached.
fn claim(max: u64, total: &AtomicU64, n: u64, stop: &AtomicBool) -> u64 {
    if n == 0 {
        return 0;
    }
    let before = total.fetch_add(n, Ordering::Relaxed);
    if before + n >= max {
        stop.store(true, Ordering::Relaxed);
    }
    n.min(max.saturating_sub(before))
}
