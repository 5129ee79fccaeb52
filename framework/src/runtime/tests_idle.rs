//! Idle workers sleeping in `poll` (`[runtime] idle`): over a receive queue
//! backed by a Unix datagram socket, which `poll` can wait on like a
//! packet socket or `/dev/hpio`.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use super::*;
use crate::element::{Context, Output};
use crate::graph::Target;
use crate::packet::{Batch, Pool};
use crate::port::{QueueStats, Recv, RxQueue, TxQueue};

/// Receives the datagrams of a socket as frames; can be waited on unless
/// `waitable` is false; says it is read by polling when `polled`.
struct SockRx {
    sock: UnixDatagram,
    waitable: bool,
    polled: bool,
}

impl RxQueue for SockRx {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        let mut n = 0;
        let mut buf = [0u8; 256];
        while n < max {
            let Ok(len) = self.sock.recv(&mut buf) else {
                break;
            };
            let mut p = pool.alloc().expect("pool large enough");
            p.set_frame(&buf[..len]);
            batch.push(p);
            n += 1;
        }
        Ok(Recv::Got(n))
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }

    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        self.waitable.then(|| self.sock.as_fd())
    }

    fn polled(&self) -> bool {
        self.polled
    }
}

/// Counts the packets sent; says it has a backlog when told to.
struct CountTx(Arc<AtomicU64>, bool);

impl TxQueue for CountTx {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        pool.free_batch(batch);
        Ok(())
    }

    fn stats(&self) -> QueueStats {
        QueueStats::default()
    }

    fn backlog(&self) -> bool {
        self.1
    }
}

/// A run forwarding port `in` to port `out`, and the sending end of `in`.
struct Fixture {
    running: Option<Running>,
    feed: UnixDatagram,
    sent: Arc<AtomicU64>,
}

/// Port `in` straight to port `out`.
fn forward_spec() -> GraphSpec {
    GraphSpec {
        nodes: vec![],
        ports: vec!["in".into(), "out".into()],
        sources: vec![Some(Target::Port(1)), None],
    }
}

fn fixture(idle: Idle, waitable: bool, backlog: bool) -> Fixture {
    fixture_of(forward_spec(), idle, waitable, backlog)
}

/// The fixture over `spec` (ports `in` and `out`).
fn fixture_of(spec: GraphSpec, idle: Idle, waitable: bool, backlog: bool) -> Fixture {
    fixture_with(spec, idle, waitable, backlog, false)
}

/// The fixture forwarding `in` to `out` over a queue read by polling when
/// `polled`.
fn fixture_polled(polled: bool) -> Fixture {
    fixture_with(forward_spec(), Idle::Sleep, true, false, polled)
}

fn fixture_with(
    spec: GraphSpec,
    idle: Idle,
    waitable: bool,
    backlog: bool,
    polled: bool,
) -> Fixture {
    let (feed, sock) = UnixDatagram::pair().unwrap();
    sock.set_nonblocking(true).unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let port = |rx: Vec<Box<dyn RxQueue>>, tx: Vec<Box<dyn TxQueue>>| OpenPort {
        rx,
        tx,
        driver: "mem".into(),
        driver_stats: None,
        max_frame: crate::packet::DEFAULT_MAX_FRAME,
    };
    let rx: Box<dyn RxQueue> = Box::new(SockRx {
        sock,
        waitable,
        polled,
    });
    let tx: Box<dyn TxQueue> = Box::new(CountTx(sent.clone(), backlog));
    let opts = RunOptions {
        pool: 64,
        idle,
        ..RunOptions::default()
    };
    let running = start(
        &spec,
        vec![port(vec![rx], vec![]), port(vec![], vec![tx])],
        &opts,
    );
    Fixture {
        running: Some(running.expect("starts")),
        feed,
        sent,
    }
}

impl Fixture {
    fn controller(&self) -> Controller {
        self.running.as_ref().unwrap().controller()
    }

    /// The worker's snapshot.
    fn snapshot(&self) -> super::worker::Snapshot {
        self.controller().shared.snapshots[0]
            .lock()
            .unwrap()
            .clone()
    }

    /// Waits (for up to a minute: never a bound on speed) until `f` holds.
    fn until(&self, what: &str, f: impl Fn(&Fixture) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !f(self) {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the run and returns its report.
    fn stop(mut self) -> Report {
        let running = self.running.take().unwrap();
        running.controller().stop();
        running.wait(|_| {}).expect("a clean end")
    }
}

/// CPU seconds the calling thread has used (from /proc/thread-self/stat).
fn thread_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // Fields after the command name (which is in parentheses): state is
    // field 3, utime and stime fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // In USER_HZ, 100 on Linux whatever the kernel's tick rate.
    ticks as f64 / 100.0
}

/// Sleeps of an hour: whatever wakes the worker below does not wait for
/// the timeout.
fn sleep_long(c: &Controller) {
    c.on_each_worker(|a| {
        a.worker.sleeper.max = Duration::from_secs(3600);
        a.worker.sleeper.first = Duration::from_secs(3600);
    })
    .unwrap();
}

#[test]
fn a_quiet_spell_begins_with_short_sleeps_on_a_polled_queue_only() {
    // A queue whose frames arrive only when it is read (hpio: a busy-polled
    // NIC whose interrupts are deferred) must be read again soon after it
    // went quiet: with sleeps of an hour allowed, a spell's first sleeps
    // still end after a millisecond, each at most twice the last. A queue
    // that wakes the worker itself gets the long sleeps at once.
    for polled in [true, false] {
        let f = fixture_polled(polled);
        let c = f.controller();
        c.on_each_worker(|a| a.worker.sleeper.max = Duration::from_secs(3600))
            .unwrap();
        // A frame begins a new spell (the published counters, read below,
        // wake no one).
        f.feed.send(&[7u8; 60]).unwrap();
        f.until("the frame forwarded", |f| {
            f.sent.load(Ordering::Relaxed) == 1
        });
        let before = f.snapshot().sleeps;
        if polled {
            // One sleep of an hour would leave the count where it is.
            f.until("five sleeps more", |f| f.snapshot().sleeps >= before + 5);
        } else {
            std::thread::sleep(Duration::from_millis(300));
            let after = f.snapshot().sleeps;
            // (At most the sleep that was under way, and the one the
            // frame ended, published late.)
            assert!(after <= before + 2, "slept {before} -> {after}");
        }
        f.stop();
    }
}

#[test]
fn an_idle_worker_sleeps_and_uses_little_cpu() {
    let f = fixture(Idle::Sleep, true, false);
    f.until("the worker sleeps", |f| f.snapshot().sleeps > 0);
    let c = f.controller();
    let cpu0 = c.on_each_worker(|_| thread_cpu_secs()).unwrap()[0];
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let cpu = c.on_each_worker(|_| thread_cpu_secs()).unwrap()[0] - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    // Spinning, the worker would use all the CPU it is given; asleep it
    // wakes ten times a second. (A loaded machine gives it less, never more.)
    assert!(
        cpu < 0.2 * wall,
        "the idle worker used {cpu:.3} s of CPU in {wall:.3} s"
    );
    f.until("published", |f| f.snapshot().sleep_secs > 0.5);
    let s = f.snapshot();
    assert!(s.sleep_secs <= s.idle_secs + 0.2, "{s:?}");
    let report = f.stop();
    let w = &report.workers[0];
    assert!(w.sleeps > 0 && w.sleep_secs > 0.5, "{w:?}");
    assert!(report.to_string().contains(" sleeps)"), "{report}");
}

#[test]
fn frames_wake_a_sleeping_worker() {
    let f = fixture(Idle::Sleep, true, false);
    let c = f.controller();
    sleep_long(&c);
    for i in 1..=3u64 {
        let before = c.on_each_worker(|a| a.worker.sleeper.sleeps).unwrap()[0];
        // (That job woke the worker: let it go back to sleep.)
        std::thread::sleep(Duration::from_millis(20));
        f.feed.send(&[i as u8; 60]).unwrap();
        f.until("the frame forwarded", |f| {
            f.sent.load(Ordering::Relaxed) == i
        });
        let after = c.on_each_worker(|a| a.worker.sleeper.sleeps).unwrap()[0];
        assert!(after > before, "frame {i}: slept {before} -> {after}");
    }
    f.stop();
}

#[test]
fn a_control_job_and_a_stop_wake_a_sleeping_worker() {
    let f = fixture(Idle::Sleep, true, false);
    let c = f.controller();
    sleep_long(&c);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(20));
        // Answered, though the worker sleeps for an hour (or the request
        // would time out after 5 s).
        assert_eq!(c.on_each_worker(|a| a.worker.index()).unwrap(), [0]);
    }
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        f.snapshot().sleeps > 0 || c.on_each_worker(|a| a.worker.sleeper.sleeps).unwrap()[0] > 0
    );
    let report = f.stop();
    assert!(report.workers[0].finished);
    // A stop as a signal handler sets it (the flag only): `wait` wakes it.
    let mut f = fixture(Idle::Sleep, true, false);
    let c = f.controller();
    sleep_long(&c);
    std::thread::sleep(Duration::from_millis(20));
    c.shared.stop.store(true, Ordering::SeqCst);
    let report = f.running.take().unwrap().wait(|_| {}).unwrap();
    assert!(report.workers[0].finished && report.workers[0].sleeps > 0);
}

#[test]
fn spin_mode_a_queue_without_a_descriptor_and_a_backlog_never_sleep() {
    for (idle, waitable, backlog) in [
        (Idle::Spin, true, false),
        (Idle::Sleep, false, false),
        (Idle::Sleep, true, true),
    ] {
        let f = fixture(idle, waitable, backlog);
        f.until("idle passes", |f| f.snapshot().idle_polls > 10_000);
        f.feed.send(&[1; 60]).unwrap();
        f.until("the frame forwarded", |f| {
            f.sent.load(Ordering::Relaxed) == 1
        });
        let report = f.stop();
        assert_eq!(report.workers[0].sleeps, 0, "{idle:?} {waitable} {backlog}");
    }
}

/// Holds every packet for [`HOLD`] of worker time, then sends it on from
/// its timer.
#[derive(Default)]
struct Hold {
    held: Vec<(u64, crate::packet::Packet)>,
}

const HOLD: Duration = Duration::from_millis(50);

impl crate::element::Element for Hold {
    fn push(&mut self, cx: &mut Context<'_>, _: usize, batch: &mut Batch, _: &mut Output) {
        let at = cx.now() + HOLD.as_nanos() as u64;
        self.held.extend(batch.drain(..).map(|p| (at, p)));
        cx.wake_at(at);
    }

    fn timer(&mut self, cx: &mut Context<'_>, out: &mut Output) {
        let now = cx.now();
        while self.held.first().is_some_and(|&(at, _)| at <= now) {
            out.push(0, self.held.remove(0).1);
        }
        if let Some(at) = self.held.iter().map(|(at, _)| *at).min() {
            cx.wake_at(at);
        }
    }
}

#[test]
fn a_sleeping_worker_wakes_up_for_an_element_timer() {
    use crate::element::{ClassInfo, Configured, Inputs};
    use crate::graph::NodeSpec;
    let hold = Configured::new(Inputs::Fixed(1), 1, |_| Box::new(Hold::default())).with_timer();
    let spec = GraphSpec {
        nodes: vec![NodeSpec {
            name: "hold".into(),
            class: ClassInfo::bare("Hold"),
            configured: hold,
            outputs: vec![Target::Port(1)],
        }],
        ports: vec!["in".into(), "out".into()],
        sources: vec![Some(Target::Element { node: 0, input: 0 }), None],
    };
    let f = fixture_of(spec, Idle::Sleep, true, false);
    let c = f.controller();
    // Sleeps of an hour: only the timer's deadline ends the one below.
    sleep_long(&c);
    let slept = c.on_each_worker(|a| a.worker.sleeper.sleeps).unwrap()[0];
    // (That job woke the worker: let it go back to sleep.)
    std::thread::sleep(Duration::from_millis(20));
    f.feed.send(&[1; 60]).unwrap();
    f.until("the frame released by the timer, no traffic coming", |f| {
        f.sent.load(Ordering::Relaxed) == 1
    });
    let after = c.on_each_worker(|a| a.worker.sleeper.sleeps).unwrap()[0];
    assert!(
        after > slept,
        "the worker slept meanwhile: {slept} -> {after}"
    );
    f.stop();
}
