//! Throughput of the af_packet driver over veth pairs: ignored tests, run with
//! `BENCH_SECS=4 cargo test --release -p hpio-nf --test af_packet -- --ignored --nocapture
//! --test-threads=1 bench` (figures and method in `docs/benchmarks.md`, "AF_PACKET driver").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hpio_nf::config::Config;
use hpio_nf::packet::{Batch, Pool};
use hpio_nf::port::{Recv, TxQueue};
use hpio_nf::runtime::{self, RunOptions};

use super::{af_packet, open, src_mac, udp_frame, veth_up, RX_MODES};

/// The median and the smallest of `v`.
fn median_min(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0])
}

/// Throughput of the driver over a veth pair, four ways:
/// - transmit alone: one thread sends bursts of 32 as fast as it can;
/// - receive cost: frames queued while nobody reads (the socket buffer or
///   the ring holds them) are drained by one worker-like thread; the time
///   per frame of the median and of the fastest round (the fastest is the
///   least disturbed by other work on the machine);
/// - latency: one frame at a time, from `send` to the `recv` that returns it;
/// - through: one thread sends while another receives, both at full speed.
#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture --test-threads=1 bench"]
fn bench_veth_throughput() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let v = veth_up("bnch");
    let mac = src_mac(9);
    for size in [64usize, 1514] {
        let frame = udp_frame(mac, 0, 0, size - 42);
        assert_eq!(frame.len(), size);
        let mut a = open(&af_packet(&v.a, ""), 1, false, true).unwrap();
        let (tx_pps, _) = blast(&mut *a.tx[0], &frame, secs, None);
        println!("{size:5} B  tx only: {:.3} Mpps", tx_pps / 1e6);
        for mode in RX_MODES {
            // BENCH_VNET=false measures the receive path without the
            // vnet header (as before offloads were handled).
            let vnet =
                std::env::var("BENCH_VNET").map_or(String::new(), |v| format!("vnet_hdr = {v}"));
            let extra = format!("rx_mode = \"{mode}\"\n{vnet}");
            let mut b = open(&af_packet(&v.b, &extra), 1, true, false).unwrap();
            // Receive cost: fill, then drain.
            let fill = if size == 64 { 1536 } else { 1024 };
            let mut per_frame = Vec::new();
            let mut pool = Pool::new(4096);
            let mut batch = Batch::new();
            let start = Instant::now();
            while start.elapsed().as_secs_f64() < secs {
                let mut queued = Pool::new(32);
                for _ in 0..fill / 32 {
                    for _ in 0..32 {
                        let mut p = queued.alloc().unwrap();
                        p.set_frame(&frame);
                        batch.push(p);
                    }
                    a.tx[0].send(&mut queued, &mut batch).unwrap();
                }
                std::thread::sleep(Duration::from_millis(5));
                let t = Instant::now();
                let mut drained = 0;
                loop {
                    match b.rx[0].recv(&mut pool, &mut batch, 32).unwrap() {
                        Recv::Got(0) => break,
                        Recv::Got(n) => drained += n,
                        Recv::Ended => unreachable!(),
                    }
                    pool.free_batch(&mut batch);
                }
                if drained >= fill / 2 {
                    per_frame.push(t.elapsed().as_nanos() as f64 / drained as f64);
                }
            }
            let (med, min) = median_min(&mut per_frame);
            println!(
                "{size:5} B  rx_mode {mode:4} receive: {med:.0} ns per frame median, {min:.0} \
                 fastest ({:.2} Mpps per core), {} rounds of {fill}",
                1e3 / min,
                per_frame.len()
            );
            // Latency: one frame at a time.
            let mut lat = Vec::new();
            for _ in 0..200 {
                let mut one = Pool::new(1);
                let mut p = one.alloc().unwrap();
                p.set_frame(&frame);
                batch.push(p);
                let t = Instant::now();
                a.tx[0].send(&mut one, &mut batch).unwrap();
                while t.elapsed() < Duration::from_millis(50) {
                    if let Recv::Got(1..) = b.rx[0].recv(&mut pool, &mut batch, 32).unwrap() {
                        lat.push(t.elapsed().as_nanos() as f64 / 1e3);
                        pool.free_batch(&mut batch);
                        break;
                    }
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            let (med, min) = median_min(&mut lat);
            println!(
                "{size:5} B  rx_mode {mode:4} latency: {med:.0} us median, {min:.0} us least, \
                 {} of 200 frames",
                lat.len()
            );
            // Through: send and receive at once.
            let stop = Arc::new(AtomicBool::new(false));
            let receiver = {
                let mut rx = std::mem::take(&mut b.rx);
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut pool = Pool::new(4096);
                    let mut batch = Batch::new();
                    let mut got = 0u64;
                    let start = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        if let Recv::Got(n) = rx[0].recv(&mut pool, &mut batch, 32).unwrap() {
                            got += n as u64;
                            pool.free_batch(&mut batch);
                        }
                    }
                    (got, start.elapsed().as_secs_f64())
                })
            };
            std::thread::sleep(Duration::from_millis(50));
            let (sent_pps, sent) = blast(&mut *a.tx[0], &frame, secs, Some(&stop));
            let (got, rx_secs) = receiver.join().unwrap();
            println!(
                "{size:5} B  rx_mode {mode:4} through: tx {:.3} Mpps -> rx {:.3} Mpps, \
                 {:.1}% of {sent} received",
                sent_pps / 1e6,
                got as f64 / rx_secs / 1e6,
                100.0 * got as f64 / sent.max(1) as f64,
            );
        }
    }
}

/// Frames per second forwarded by one worker of the runtime from one veth
/// pair to another (`b -> c`), 64-byte frames, for each `rx_mode`. A
/// thread pinned to core 1 blasts frames into the pair's other end; the
/// worker is pinned to core 0; nothing reads behind `c`.
#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture --test-threads=1 bench"]
fn bench_forward_one_worker() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let inp = veth_up("fwi");
    let out = veth_up("fwo");
    let mac = src_mac(10);
    let frame = udp_frame(mac, 0, 0, 64 - 42);
    for mode in RX_MODES {
        let text = format!(
            "connections = [\"b -> c\"]\n\
             [ports.b]\ndriver = \"af_packet\"\ninterface = \"{}\"\nrx_mode = \"{mode}\"\n\
             [ports.c]\ndriver = \"af_packet\"\ninterface = \"{}\"\n",
            inp.b, out.a
        );
        let cfg = Config::parse_builtin(&text, "fwd.toml").unwrap_or_else(|e| panic!("{e}"));
        let ports = cfg
            .ports
            .iter()
            .map(|p| p.spec.open(&p.name, 1, p.rx_used, p.tx_used).unwrap())
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let stop = stop.clone();
            let mut a = open(&af_packet(&inp.a, ""), 1, false, true).unwrap();
            let frame = frame.clone();
            std::thread::spawn(move || {
                core_affinity::set_for_current(core_affinity::CoreId { id: 1 });
                let mut pool = Pool::new(64);
                let mut batch = Batch::new();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..32 {
                        let mut p = pool.alloc().unwrap();
                        p.set_frame(&frame);
                        batch.push(p);
                    }
                    a.tx[0].send(&mut pool, &mut batch).unwrap();
                }
                a.tx[0].stats().packets
            })
        };
        let opts = RunOptions {
            workers: 1,
            cores: vec![0],
            stats_interval: Some(Duration::from_millis(50)),
            stop: stop.clone(),
            ..RunOptions::default()
        };
        let t0 = Instant::now();
        let mut first: Option<(f64, u64)> = None;
        let report = runtime::run(&cfg.graph, ports, &opts, |r| {
            // Measure from the first report on, so start-up does not count.
            let fwd = r.ports[1].tx.packets;
            if first.is_none() {
                first = Some((r.elapsed_secs, fwd));
            }
            if t0.elapsed().as_secs_f64() > secs + 0.05 {
                stop.store(true, Ordering::Relaxed);
            }
        })
        .unwrap();
        let sent = sender.join().unwrap();
        let (t1, f1) = first.unwrap();
        let fwd = report.ports[1].tx.packets - f1;
        let rate = fwd as f64 / (report.elapsed_secs - t1);
        println!(
            "forward 64 B  rx_mode {mode:4}: {:.3} Mpps forwarded by one worker \
             ({} received, {} sent into the input, input kernel drops {})",
            rate / 1e6,
            report.ports[0].rx.packets,
            sent,
            report.ports[0].rx.drops
        );
    }
}

/// Sends copies of `frame` in bursts of 32 for `secs`; returns (frames/s, frames).
fn blast(tx: &mut dyn TxQueue, frame: &[u8], secs: f64, stop: Option<&AtomicBool>) -> (f64, u64) {
    let mut pool = Pool::new(64);
    let mut batch = Batch::new();
    let before = tx.stats().packets;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..32 {
            let mut p = pool.alloc().unwrap();
            p.set_frame(frame);
            batch.push(p);
        }
        tx.send(&mut pool, &mut batch).unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(s) = stop {
        // Let the receiver drain what is queued.
        std::thread::sleep(Duration::from_millis(200));
        s.store(true, Ordering::Relaxed);
    }
    let sent = tx.stats().packets - before;
    (sent as f64 / elapsed, sent)
}
