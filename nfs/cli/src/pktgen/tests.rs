//! pktgen's options and the frames they make.

use std::collections::BTreeSet;
use std::net::IpAddr;

use clap::Parser;
use etherparse::{LinkHeader, NetHeaders, PacketHeaders, TransportHeader};

use super::args::{parse_ip_range, parse_port_range, PortRange};
use super::frames::Frames;
use super::*;
use crate::tool::load_config;
use hpio_nf::packet::{Batch, Pool};
use hpio_nf::port::Recv;

#[derive(Parser)]
struct Cmd {
    #[command(flatten)]
    a: PktgenArgs,
}

fn args(line: &str) -> Result<PktgenArgs, String> {
    Cmd::try_parse_from(std::iter::once("pktgen").chain(line.split_whitespace()))
        .map(|c| c.a)
        .map_err(|e| e.to_string())
}

/// The first `n` frames pktgen sends for `line`, from the generator it configures.
fn frames(line: &str, n: usize) -> (Frames, Vec<Vec<u8>>) {
    let a = args(line).unwrap();
    let f = Frames::new(&a).unwrap();
    let table = f.generator_table(1, None);
    let config = load_config("test", &[&format!("{GEN} -> discard")], &[table], &[]).unwrap();
    let mut open = config.ports[0].spec.open(GEN, 1, true, false).unwrap();
    let mut pool = Pool::new(n);
    let mut b = Batch::new();
    assert_eq!(open.rx[0].recv(&mut pool, &mut b, n).unwrap(), Recv::Got(n));
    (f, b.iter().map(|p| p.data().to_vec()).collect())
}

/// What etherparse reads from a frame: (src MAC, dst MAC, src IP, dst IP,
/// src port, dst port), after checking lengths and every checksum.
type Seen = ([u8; 6], [u8; 6], IpAddr, IpAddr, u16, u16);

fn check(frame: &[u8], length: usize) -> Seen {
    assert_eq!(frame.len(), length);
    let h = PacketHeaders::from_ethernet_slice(frame).unwrap();
    let Some(LinkHeader::Ethernet2(eth)) = h.link else {
        panic!("no Ethernet header")
    };
    let net = h.net.as_ref().unwrap();
    let (src, dst, l4) = match net {
        NetHeaders::Ipv4(ip, _) => {
            assert_eq!(ip.total_len as usize, length - 14);
            assert_eq!(ip.header_checksum, ip.calc_header_checksum());
            (IpAddr::from(ip.source), IpAddr::from(ip.destination), 34)
        }
        NetHeaders::Ipv6(ip, _) => {
            assert_eq!(ip.payload_length as usize, length - 54);
            (IpAddr::from(ip.source), IpAddr::from(ip.destination), 54)
        }
        other => panic!("unexpected {other:?}"),
    };
    let Some(TransportHeader::Udp(u)) = h.transport.as_ref() else {
        panic!("not UDP")
    };
    assert_eq!(u.length as usize, length - l4);
    let payload = &frame[l4 + 8..];
    let want = match net {
        NetHeaders::Ipv4(ip, _) => u.calc_checksum_ipv4(ip, payload).unwrap(),
        NetHeaders::Ipv6(ip, _) => u.calc_checksum_ipv6(ip, payload).unwrap(),
        _ => unreachable!(),
    };
    assert_eq!(u.checksum, want, "UDP checksum");
    (
        eth.source,
        eth.destination,
        src,
        dst,
        u.source_port,
        u.destination_port,
    )
}

#[test]
fn ipv4_frames_carry_the_options_with_correct_checksums() {
    let line = "-S 02:aa:00:00:00:01 -D 02:bb:00:00:00:02 -s 192.168.1.10 -d 192.168.2.20 \
                --src-port 5000 --dst-port 7 -l 128";
    let (f, got) = frames(line, 3);
    assert_eq!(f.flows(), 1);
    for frame in &got {
        assert_eq!(
            check(frame, 128),
            (
                [2, 0xaa, 0, 0, 0, 1],
                [2, 0xbb, 0, 0, 0, 2],
                "192.168.1.10".parse().unwrap(),
                "192.168.2.20".parse().unwrap(),
                5000,
                7
            )
        );
    }
}

#[test]
fn defaults_are_a_minimal_broadcast_frame() {
    let (_, got) = frames("", 1);
    let (_, dmac, s, d, sp, dp) = check(&got[0], 60);
    assert_eq!(dmac, [0xff; 6]);
    assert_eq!(
        (s, d),
        ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
    );
    assert_eq!((sp, dp), (1024, 9));
}

#[test]
fn ranges_vary_source_ports_fastest_then_addresses() {
    let (f, got) = frames("-s 10.1.0.1-10.1.0.3 --src-port 2000-2003 -l 60", 24);
    assert_eq!(f.flows(), 12);
    let seen: Vec<Seen> = got.iter().map(|fr| check(fr, 60)).collect();
    assert_eq!(seen[0].4, 2000);
    assert_eq!(seen[1].4, 2001);
    assert_eq!(seen[4].2, "10.1.0.2".parse::<IpAddr>().unwrap());
    let distinct: BTreeSet<(IpAddr, u16)> = seen.iter().map(|s| (s.2, s.4)).collect();
    assert_eq!(distinct.len(), 12, "every flow once per cycle");
    assert_eq!(seen[12], seen[0], "then the cycle repeats");
}

#[test]
fn ipv6_by_flag_or_by_address() {
    let (f, got) = frames("-6", 2);
    assert!(f.ipv6);
    let (_, _, s, d, _, _) = check(&got[0], 62);
    assert_eq!(
        (s, d),
        ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
    );
    let (_, got) = frames("-d 2001:db8::5 -l 200 --dst-port 100-101", 2);
    let seen: Vec<Seen> = got.iter().map(|fr| check(fr, 200)).collect();
    assert_eq!(seen[0].2, "fd00::1".parse::<IpAddr>().unwrap());
    assert_eq!(seen[0].3, "2001:db8::5".parse::<IpAddr>().unwrap());
    assert_eq!((seen[0].5, seen[1].5), (100, 101));
}

#[test]
fn range_syntax() {
    assert_eq!(
        parse_port_range("10-12"),
        Ok(PortRange {
            first: 10,
            count: 3
        })
    );
    assert_eq!(
        parse_port_range("0-65535").unwrap().count,
        65536,
        "the whole port space"
    );
    assert!(parse_port_range("12-10")
        .unwrap_err()
        .contains("before it starts"));
    assert!(parse_port_range("70000")
        .unwrap_err()
        .contains("not a port"));
    let r = parse_ip_range("10.0.0.250-10.0.1.4").unwrap();
    assert_eq!(r.count, 11);
    assert!(parse_ip_range("10.0.0.1-fd00::1")
        .unwrap_err()
        .contains("different families"));
    assert!(parse_ip_range("::-::1:0:0")
        .unwrap_err()
        .contains("more than"));
    assert!(parse_ip_range("10.0.0.x")
        .unwrap_err()
        .contains("not an IPv4"));
}

#[test]
fn bad_options_are_clear_errors() {
    let err = |line: &str| Frames::new(&args(line).unwrap()).unwrap_err().to_string();
    assert!(err("-l 40").contains("-l 40: a UDP/IPv4 frame takes 42..=65535"));
    assert!(err("-6 -l 60").contains("UDP/IPv6 frame takes 62"));
    assert!(err("-l 70000").contains("42..=65535"));
    assert!(
        Frames::new(&args("-l 9014").unwrap()).is_ok(),
        "jumbo frames"
    );
    assert!(err("-s 10.0.0.1 -d fd00::2").contains("different IP families"));
    assert!(err("-6 -d 10.0.0.2").contains("-6 asks for IPv6"));
    // Options of one mode are refused in the other.
    assert!(args("--rx -d 10.0.0.2")
        .unwrap_err()
        .contains("cannot be used with"));
    assert!(args("--filter udp").unwrap_err().contains("--rx"));
    assert!(args("-D 02:00").unwrap_err().contains("not a MAC address"));
    assert!(args("--interval 10xs")
        .unwrap_err()
        .contains("expected a duration"));
    assert!(args("-b 0").is_err());
}
