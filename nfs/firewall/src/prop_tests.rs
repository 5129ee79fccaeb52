//! Property tests of connection tracking against a reference model: random
//! TCP flag sequences (and UDP) in both directions over a few flows, with
//! time moving on and sweeps between packets. The model keeps, per flow, who
//! opened it, whether the responder has spoken, which sides sent a FIN and
//! the TCP state as docs/elements.md tells it (handshake, FINs, last ACK,
//! RST), and the expiry of each state.
//!
//! CI runs the case count below from a fixed seed; `PROPTEST_CASES=100000`
//! runs more (testkit::prop).

use proptest::prelude::*;

use crate::conntrack::{FlowTable, State, Timeouts, Track};
use crate::tuple::{extract, Extract, Kind, Seen, Tuple};
use hpio_nf::wire::tcp_flags::{ACK, FIN, RST, SYN};
use hpio_nf::wire::{Headers, ParseStatus};

const T: Timeouts = Timeouts {
    tcp_syn: 5,
    tcp_established: 60,
    tcp_fin: 7,
    tcp_time_wait: 3,
    tcp_close: 2,
    udp: 4,
    udp_stream: 20,
    icmp: 4,
};

/// One flow as the model sees it.
#[derive(Debug, Clone, Copy)]
struct Flow {
    /// The client side (`true`) opened it.
    opener: bool,
    replied: bool,
    fin_opener: bool,
    fin_responder: bool,
    state: State,
    expires: u64,
}

/// The reference TCP transitions, written from the documentation as a
/// list of rules rather than as the table's code is written.
fn next_tcp(f: &mut Flow, flags: u8, from_opener: bool) {
    use State::*;
    let (syn, ack, fin, rst) = (
        flags & SYN != 0,
        flags & ACK != 0,
        flags & FIN != 0,
        flags & RST != 0,
    );
    if rst {
        f.state = Close;
        return;
    }
    if syn {
        // Only the responder's SYN-ACK moves a handshake on; other SYNs
        // (retransmissions) change nothing, not even with FIN set.
        if ack && !from_opener && f.state == SynSent {
            f.state = SynRecv;
        }
        return;
    }
    if from_opener && ack && f.state == SynRecv {
        f.state = Established;
    }
    if fin {
        if from_opener {
            f.fin_opener = true;
        } else {
            f.fin_responder = true;
        }
        if [SynSent, SynRecv, Established, FinWait].contains(&f.state) {
            f.state = if f.fin_opener && f.fin_responder {
                LastAck
            } else {
                FinWait
            };
        }
        return;
    }
    if ack && f.state == LastAck {
        f.state = TimeWait;
    }
}

fn timeout(f: &Flow) -> u64 {
    match f.state {
        State::SynSent | State::SynRecv => T.tcp_syn,
        State::Established => T.tcp_established,
        State::FinWait | State::LastAck => T.tcp_fin,
        State::TimeWait => T.tcp_time_wait,
        State::Close => T.tcp_close,
        State::Udp if f.replied => T.udp_stream,
        State::Udp => T.udp,
        State::Icmp => T.icmp,
        State::Empty => 0,
    }
}

/// A packet of flow `n` from the client side or the server side.
fn seen(n: u8, client: bool, kind: Kind) -> Seen {
    let (c, s) = ([0, 0x0a00_0001], [0, 0x0a00_0002 + u64::from(n % 2)]);
    let (cp, sp) = (40_000 + u16::from(n), 443);
    let proto = if matches!(kind, Kind::Udp) { 17 } else { 6 };
    let (tuple, forward) = if client {
        Tuple::new(c, cp, s, sp, proto, false)
    } else {
        Tuple::new(s, sp, c, cp, proto, false)
    };
    Seen {
        tuple,
        forward,
        kind,
    }
}

/// What the model expects the table to say of a packet, and the model updated.
#[derive(Debug, PartialEq)]
enum Expect {
    Start,
    Flow { orig: bool, established: bool },
    Invalid,
}

fn model_step(flow: &mut Option<Flow>, client: bool, kind: Kind, now: u64) -> Expect {
    if flow.is_some_and(|f| f.expires <= now) {
        *flow = None;
    }
    let starts = kind.starts_flow();
    let reopen = matches!(kind, Kind::Tcp(_))
        && starts
        && flow.is_some_and(|f| matches!(f.state, State::TimeWait | State::Close));
    match flow {
        Some(f) if !reopen => {
            let orig = client == f.opener;
            let established = !orig || f.replied;
            if !orig {
                f.replied = true;
            }
            if let Kind::Tcp(flags) = kind {
                next_tcp(f, flags, orig);
            }
            f.expires = now + timeout(f);
            Expect::Flow { orig, established }
        }
        _ if starts => {
            let state = if matches!(kind, Kind::Udp) {
                State::Udp
            } else {
                State::SynSent
            };
            let mut f = Flow {
                opener: client,
                replied: false,
                fin_opener: false,
                fin_responder: false,
                state,
                expires: 0,
            };
            f.expires = now + timeout(&f);
            *flow = Some(f);
            Expect::Start
        }
        _ => Expect::Invalid,
    }
}

/// One step: flow, direction, TCP flags (or UDP), time passing, sweep.
fn step() -> impl Strategy<Value = (u8, bool, Option<u8>, u64, Option<usize>)> {
    let flags = prop_oneof![
        Just(SYN),
        Just(SYN | ACK),
        Just(ACK),
        Just(FIN | ACK),
        Just(FIN),
        Just(RST),
        Just(RST | ACK),
        any::<u8>().prop_map(|f| f & 0x3f),
    ];
    (
        0u8..4,
        any::<bool>(),
        prop_oneof![6 => flags.prop_map(Some), 1 => Just(None)],
        prop_oneof![3 => Just(0u64), 2 => 0u64..4, 1 => 0u64..80],
        prop_oneof![4 => Just(None), 1 => (0usize..40).prop_map(Some)],
    )
}

proptest! {
    #![proptest_config(testkit::prop::config(512))]

    #[test]
    fn conntrack_agrees_with_the_model(steps in prop::collection::vec(step(), 1..120), seed: u64) {
        let mut table = FlowTable::with_seed(16, T, seed);
        let mut model: [Option<Flow>; 8] = [None; 8];
        let mut now = 1_000u64;
        for (n, client, flags, dt, sweep) in steps {
            now += dt;
            // UDP flows have their own tuples (protocol 17): model slots 4..8.
            let kind = flags.map_or(Kind::Udp, Kind::Tcp);
            let at = n as usize + if flags.is_none() { 4 } else { 0 };
            let s = seen(n, client, kind);
            let want = model_step(&mut model[at], client, kind, now);
            let track = table.track(&s, now);
            let got = match track {
                Track::Start { .. } => Expect::Start,
                Track::Flow { orig, established, .. } => Expect::Flow { orig, established },
                Track::Invalid => Expect::Invalid,
            };
            prop_assert_eq!(&got, &want, "flow {} at {}", at, now);
            table.pass(track, &s, now, 60).expect("16 flows fit");
            if let Some(k) = sweep {
                table.sweep(now, k);
            }
            for (i, f) in model.iter().enumerate() {
                let kind = if i < 4 { Kind::Tcp(0) } else { Kind::Udp };
                let tuple = seen(i as u8 % 4, true, kind).tuple;
                if let Some(f) = f.filter(|f| f.expires > now) {
                    prop_assert_eq!(table.state_of(&tuple), Some(f.state), "flow {}", i);
                }
            }
        }
    }
}

/// A TCP or UDP frame over IPv4 or IPv6 (maybe VLAN-tagged), written here
/// byte by byte, with the tuple it must give.
fn l4_frame() -> impl Strategy<Value = (Vec<u8>, Seen)> {
    (
        (any::<bool>(), any::<u128>(), any::<u128>()),
        (any::<u16>(), any::<u16>()),
        (
            any::<bool>(),
            any::<u8>(),
            prop::option::of(1u16..4095),
            0usize..40,
        ),
    )
        .prop_map(|((v6, s, d), (sp, dp), (tcp, flags, vlan, payload))| {
            let (s, d) = if v6 {
                (s, d)
            } else {
                (s as u32 as u128, d as u32 as u128)
            };
            let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
            if let Some(v) = vlan {
                f.extend([0x81, 0]);
                f.extend(v.to_be_bytes());
            }
            let mut l4 = if tcp { vec![0u8; 20] } else { vec![0u8; 8] };
            l4[0..2].copy_from_slice(&sp.to_be_bytes());
            l4[2..4].copy_from_slice(&dp.to_be_bytes());
            if tcp {
                l4[12] = 0x50;
                l4[13] = flags & 0x3f;
            }
            l4.extend(std::iter::repeat_n(0x5a, payload));
            if !tcp {
                let n = l4.len() as u16;
                l4[4..6].copy_from_slice(&n.to_be_bytes());
            }
            let proto = if tcp { 6 } else { 17 };
            if v6 {
                f.extend([0x86, 0xdd, 0x60, 0, 0, 0]);
                f.extend((l4.len() as u16).to_be_bytes());
                f.extend([proto, 64]);
                f.extend(s.to_be_bytes());
                f.extend(d.to_be_bytes());
            } else {
                f.extend([0x08, 0x00, 0x45, 0]);
                f.extend((20 + l4.len() as u16).to_be_bytes());
                f.extend([0, 0, 0x40, 0, 64, proto, 0, 0]);
                f.extend((s as u32).to_be_bytes());
                f.extend((d as u32).to_be_bytes());
            }
            f.extend(&l4);
            let w = |a: u128| [(a >> 64) as u64, a as u64];
            let (tuple, forward) = Tuple::new(w(s), sp, w(d), dp, proto, v6);
            let kind = if tcp {
                Kind::Tcp(flags & 0x3f)
            } else {
                Kind::Udp
            };
            (
                f,
                Seen {
                    tuple,
                    forward,
                    kind,
                },
            )
        })
}

proptest! {
    #![proptest_config(testkit::prop::config(1024))]

    /// Well-formed TCP and UDP frames give exactly their tuple; the same
    /// frame with any byte changed or cut anywhere never panics.
    #[test]
    fn tuple_extraction(
        (frame, want) in l4_frame(), trailer in 0usize..6,
        at in any::<prop::sample::Index>(), v: u8, cut in any::<prop::sample::Index>(),
    ) {
        let mut f = frame.clone();
        f.extend(std::iter::repeat_n(0, trailer));
        let h = Headers::parse(&f);
        prop_assert_eq!(h.status, ParseStatus::Ok);
        prop_assert_eq!(extract(&h, &f), Extract::Tracked(want));
        let i = at.index(f.len());
        f[i] = v;
        f.truncate(cut.index(f.len() + 1).max(i));
        let h = Headers::parse(&f);
        if h.status == ParseStatus::Ok {
            let _ = extract(&h, &f);
        }
    }
}
