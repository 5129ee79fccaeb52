//! Transmit mode: one thread per transmit queue of the port, each sending
//! the batches of its generator queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hpio_nf::packet::{Batch, Pool};
use hpio_nf::port::{PortError, Recv, RxQueue, TxQueue};

use super::frames::Frames;
use super::{join, PktgenArgs, Running, GEN, PORT};
use crate::tool::{load_config, pin, wait_until, Live};

pub(super) fn start_tx(
    a: &PktgenArgs,
    cores: &[usize],
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Running> {
    let threads = cores.len();
    a.port.check()?;
    let frames = Frames::new(a)?;
    let config = load_config(
        "pktgen",
        &[&format!("{GEN} -> {PORT}")],
        &[
            frames.generator_table(threads, a.count),
            a.port.table(PORT, &[]),
        ],
        &a.port.overrides(PORT),
    )?;
    let (gen, port) = (&config.ports[0], &config.ports[1]);
    let generated = gen.spec.open(GEN, threads, true, false)?;
    let open = port.spec.open(PORT, threads, false, true)?;
    if open.tx.len() != threads {
        bail!(
            "port `{PORT}` ({}) opened {} transmit queue(s) for {threads} thread(s)",
            open.driver,
            open.tx.len()
        );
    }
    eprintln!(
        "pktgen: sending {} on {} (driver {}), {threads} thread(s) on core(s) {}",
        frames.describe(),
        a.port.label(&*port.spec),
        open.driver,
        join(cores)
    );
    let live: Arc<[Live]> = (0..threads).map(|_| Live::default()).collect();
    let start = Instant::now();
    let batch = usize::from(a.batch);
    // Slots that hold the generator's frames (jumbo frames included).
    let slot = generated.max_frame;
    let handles = generated
        .rx
        .into_iter()
        .zip(open.tx)
        .enumerate()
        .map(|(t, (gen, tx))| {
            let (live, stop, core, interval) = (live.clone(), stop.clone(), cores[t], a.interval);
            std::thread::Builder::new()
                .name(format!("pktgen-tx{t}"))
                .spawn(move || {
                    pin(core);
                    let r = send_loop(gen, tx, batch, slot, interval, &stop, &live[t]);
                    live[t].finish();
                    r
                })
                .context("starting a thread")
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Running {
        mode: "tx",
        what: a.port.label(&*port.spec),
        driver: open.driver,
        start,
        live,
        handles,
    })
}

/// One transmit thread: batches from the generator queue to the port's
/// transmit queue until the generator ends or `stop`.
fn send_loop(
    mut gen: Box<dyn RxQueue>,
    mut tx: Box<dyn TxQueue>,
    batch: usize,
    slot: usize,
    interval: Option<Duration>,
    stop: &AtomicBool,
    live: &Live,
) -> Result<Instant, PortError> {
    // The generator fills a batch from the pool and sending returns every slot.
    let mut pool = Pool::with_max_frame(2 * batch.max(32), slot);
    let mut b = Batch::new();
    let mut next = Instant::now();
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        match gen.recv(&mut pool, &mut b, batch) {
            Ok(Recv::Ended) => break Ok(()),
            Ok(Recv::Got(_)) => {}
            Err(e) => break Err(e),
        }
        if let Err(e) = tx.send(&mut pool, &mut b) {
            break Err(e);
        }
        live.publish(&tx.stats());
        if let Some(iv) = interval {
            next += iv;
            let now = Instant::now();
            if next < now {
                next = now;
            } else {
                wait_until(next, stop);
            }
        }
    };
    let end = Instant::now();
    let finished = tx.finish();
    live.publish(&tx.stats());
    result.and(finished).map(|()| end)
}
