use super::super::querier::{HOLD_FULL, TABLE_FULL, UNRESOLVED, WRONG_INPUT};
use super::*;
use crate::config::configure_element;
use crate::element::Registry;
use crate::elements::route::NEXT_HOP_ANNO;
use etherparse::{ArpOperation, NetSlice, SlicedPacket};
use testkit::frame::{Frame, Ip};

const MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];
const PEER: [u8; 6] = [2, 0, 0, 0, 9, 9];
const SEC: u64 = 1_000_000_000;

use super::super::tests_rig::Rig;

/// An ArpQuerier for 192.0.2.2 holding 2 packets a neighbour, with `extra`
/// parameters.
fn querier(extra: &str) -> Rig {
    let toml = format!("ipv4 = \"192.0.2.2\"\nmac = \"02:00:00:00:02:01\"\nhold = 2\n{extra}");
    Rig::new("ArpQuerier", &toml, 64)
}

fn ip_to(dst: [u8; 4], via: Option<[u8; 4]>) -> Packet {
    let mut p = Packet::from_bytes(&Frame::udp(Ip::v4([10, 0, 0, 1], dst), 1, 2).build());
    p.anno_mut()[NEXT_HOP_ANNO] = via.map_or(0, u32::from_be_bytes);
    p
}

/// The ARP request target of `frame`, checked with etherparse.
fn request_target(frame: &[u8]) -> [u8; 4] {
    let s = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(NetSlice::Arp(a)) = s.net else {
        panic!("not ARP: {frame:?}")
    };
    assert_eq!(a.operation(), ArpOperation::REQUEST);
    assert_eq!(a.sender_hw_addr(), &MAC);
    assert_eq!(a.sender_protocol_addr(), &[192, 0, 2, 2]);
    assert_eq!(&frame[..6], &[0xff; 6]);
    a.target_protocol_addr().try_into().unwrap()
}

fn reply_from(ip: [u8; 4], mac: [u8; 6]) -> Packet {
    let mut f = vec![0u8; 60];
    let a = Arp {
        op: super::super::ARP_REPLY,
        sender_mac: mac,
        sender_ip: ip,
        target_mac: MAC,
        target_ip: [192, 0, 2, 2],
    };
    a.write(MAC, &mut f);
    Packet::from_bytes(&f)
}

#[test]
fn holds_asks_then_releases_with_the_ethernet_header() {
    let mut r = querier("");
    let (got, _) = r.push(
        0,
        0,
        vec![ip_to([192, 0, 2, 9], None), ip_to([192, 0, 2, 9], None)],
    );
    assert_eq!(got.len(), 1, "one request for two packets");
    assert_eq!(request_target(&got[0]), [192, 0, 2, 9]);
    let (got, out) = r.push(0, 1, vec![ip_to([192, 0, 2, 9], None)]);
    assert!(got.is_empty());
    assert_eq!(out.drops(HOLD_FULL), 1);
    let (got, _) = r.push(1, 2, vec![reply_from([192, 0, 2, 9], PEER)]);
    assert_eq!(got.len(), 2, "the held packets go");
    for f in &got {
        assert_eq!((&f[..6], &f[6..12]), (&PEER[..], &MAC[..]));
        assert_eq!(&f[30..34], &[192, 0, 2, 9]);
    }
    let (got, _) = r.push(0, 3, vec![ip_to([192, 0, 2, 9], None)]);
    assert_eq!(&got[0][..6], &PEER);
    // The next hop annotation wins over the destination.
    let (got, _) = r.push(0, 4, vec![ip_to([8, 8, 8, 8], Some([192, 0, 2, 9]))]);
    assert_eq!(&got[0][..6], &PEER);
    let (got, _) = r.push(0, 5, vec![ip_to([8, 8, 8, 8], Some([192, 0, 2, 1]))]);
    assert_eq!(request_target(&got[0]), [192, 0, 2, 1]);
    assert_eq!(r.table_rows(5), 2);
}

#[test]
fn retries_then_gives_up_and_counts_the_held_packets() {
    let mut r = querier("retry = \"1s\"\ntries = 2");
    let (got, _) = r.push(0, 0, vec![ip_to([192, 0, 2, 7], None)]);
    assert_eq!(got.len(), 1);
    let (got, _) = r.push(0, SEC / 2, vec![]);
    assert!(got.is_empty(), "no retry before `retry`");
    let (got, _) = r.push(0, SEC, vec![]);
    assert_eq!(request_target(&got[0]), [192, 0, 2, 7], "second try");
    let (got, out) = r.push(0, 2 * SEC, vec![]);
    assert!(got.is_empty());
    assert_eq!(out.drops(UNRESOLVED), 1, "gave up after two tries");
    // The entry is gone: a new packet asks again from the start.
    let (got, _) = r.push(0, 2 * SEC + 1, vec![ip_to([192, 0, 2, 7], None)]);
    assert_eq!(got.len(), 1);
}

#[test]
fn full_table_and_expired_entries() {
    let mut r = querier("capacity = 1\ntimeout = \"10s\"");
    r.push(0, 0, vec![ip_to([192, 0, 2, 9], None)]);
    let (_, out) = r.push(0, 0, vec![ip_to([192, 0, 2, 10], None)]);
    assert_eq!(out.drops(TABLE_FULL), 1);
    let (got, _) = r.push(1, 0, vec![reply_from([192, 0, 2, 9], PEER)]);
    assert_eq!(got.len(), 1);
    let (got, _) = r.push(0, 11 * SEC, vec![ip_to([192, 0, 2, 9], None)]);
    assert_eq!(
        request_target(&got[0]),
        [192, 0, 2, 9],
        "asked again after the timeout"
    );
    let (_, out) = r.push(0, 11 * SEC, vec![Packet::from_bytes(&[0; 60])]);
    assert_eq!(out.drops(WRONG_INPUT), 1);
    // Held packets are counted when the run ends.
    assert_eq!(r.finish(12 * SEC).drops(UNRESOLVED), 1);
}

#[test]
fn a_static_neighbour_is_used_at_once_and_for_good() {
    let mut r = querier(
        "capacity = 1\ntimeout = \"10s\"\n\
         static = [{ ip = \"192.0.2.9\", mac = \"02:00:00:00:09:09\" }]",
    );
    let (got, _) = r.push(0, 0, vec![ip_to([8, 8, 8, 8], Some([192, 0, 2, 9]))]);
    assert_eq!(got.len(), 1, "sent, no request");
    assert_eq!((&got[0][..6], &got[0][6..12]), (&PEER[..], &MAC[..]));
    // An ARP message claiming another address changes nothing.
    r.push(1, SEC, vec![reply_from([192, 0, 2, 9], [2, 0, 0, 0, 6, 6])]);
    // Long past the timeout, and with the one dynamic entry in use.
    r.push(0, 100 * SEC, vec![ip_to([192, 0, 2, 10], None)]);
    let (got, out) = r.push(0, 1000 * SEC, vec![ip_to([192, 0, 2, 9], None)]);
    assert_eq!(out.drops(TABLE_FULL), 0);
    // (The sweep may send a request for .10 as well.)
    let got: Vec<_> = got.into_iter().filter(|f| f[12..14] == [8, 0]).collect();
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0][..6], &PEER, "still the static address");
    // The timer's ageing passes it by too: .10 resolved makes a scan due.
    r.push(
        1,
        1500 * SEC,
        vec![reply_from([192, 0, 2, 10], [2, 0, 0, 0, 7, 7])],
    );
    r.timer(2000 * SEC);
    let (got, _) = r.push(0, 2001 * SEC, vec![ip_to([192, 0, 2, 9], None)]);
    let got: Vec<_> = got.into_iter().filter(|f| f[12..14] == [8, 0]).collect();
    assert_eq!(got.len(), 1, "sent at once, no request");
    assert_eq!(&got[0][..6], &PEER, "static after the timer ran");
}

#[test]
fn a_static_neighbour_of_the_wrong_family_is_refused() {
    let bad = |class: &str, base: &str, ip: &str| {
        let toml = format!("{base}\nstatic = [{{ ip = \"{ip}\", mac = \"02:00:00:00:09:09\" }}]");
        configure_element(&Registry::builtin(), &[], class, &toml)
            .err()
            .unwrap_or_else(|| panic!("{class} took {ip}"))
            .to_string()
    };
    let arp = "ipv4 = \"192.0.2.2\"\nmac = \"02:00:00:00:02:01\"";
    let nd = "ipv6 = \"fe80::2:1\"\nmac = \"02:00:00:00:02:01\"";
    assert!(bad("ArpQuerier", arp, "fe80::1").contains("IPv4"));
    assert!(bad("NdQuerier", nd, "192.0.2.9").contains("IPv6"));
}

#[test]
fn the_timer_retries_and_gives_up_on_time_without_traffic() {
    let mut r = querier("retry = \"1s\"\ntries = 2");
    assert_eq!(r.timer(0).2, None, "nothing to do, nothing asked");
    let asked = r.push_asks(0, 0, vec![ip_to([192, 0, 2, 7], None)]);
    assert_eq!(asked, Some(SEC), "the retry's time");
    let (got, out, asked) = r.timer(SEC / 2);
    assert!(
        got.is_empty() && out.drops(UNRESOLVED) == 0,
        "called early: nothing"
    );
    assert_eq!(asked, Some(SEC));
    let (got, _, asked) = r.timer(SEC);
    assert_eq!(
        request_target(&got[0]),
        [192, 0, 2, 7],
        "second try, on time"
    );
    assert_eq!(asked, Some(2 * SEC), "when to give up");
    let (got, out, asked) = r.timer(2 * SEC);
    assert!(got.is_empty());
    assert_eq!(
        out.drops(UNRESOLVED),
        1,
        "dropped and counted at its timeout"
    );
    assert_eq!(asked, None, "nothing left to do");
    assert_eq!(r.table_rows(2 * SEC), 0);
}

#[test]
fn neighbours_asked_at_different_times_are_retried_each_on_its_own_time() {
    let mut r = querier("retry = \"1s\"\ntries = 3");
    let asked = r.push_asks(0, 0, vec![ip_to([192, 0, 2, 7], None)]);
    assert_eq!(asked, Some(SEC));
    let asked = r.push_asks(0, SEC / 2, vec![ip_to([192, 0, 2, 8], None)]);
    assert_eq!(asked, Some(SEC), "the first one's retry comes first");
    let (got, _, asked) = r.timer(SEC);
    let targets: Vec<_> = got.iter().map(|p| request_target(p)).collect();
    assert_eq!(targets, [[192, 0, 2, 7]], "only the first is due");
    assert_eq!(asked, Some(SEC + SEC / 2), "then the second's");
    // Traffic between the two retries asks nothing more.
    let (got, _) = r.push(0, SEC + SEC / 4, vec![]);
    assert!(got.is_empty());
    let (got, _, asked) = r.timer(SEC + SEC / 2);
    let targets: Vec<_> = got.iter().map(|p| request_target(p)).collect();
    assert_eq!(targets, [[192, 0, 2, 8]]);
    assert_eq!(asked, Some(2 * SEC));
}

#[test]
fn the_timer_ages_resolved_entries_without_traffic() {
    let mut r = querier("timeout = \"16s\"");
    let asked = r.push_asks(1, 0, vec![reply_from([192, 0, 2, 9], PEER)]);
    assert_eq!(asked, Some(16 * SEC), "its expiry");
    let (_, _, asked) = r.timer(SEC);
    assert_eq!(asked, Some(16 * SEC));
    assert_eq!(r.table_rows(SEC), 1);
    // Refreshed at 8 s: not expired at 16 s; looked at again at 24 s.
    r.push(1, 8 * SEC, vec![reply_from([192, 0, 2, 9], PEER)]);
    let (_, _, asked) = r.timer(16 * SEC);
    assert_eq!(r.table_rows(16 * SEC), 1);
    assert_eq!(asked, Some(24 * SEC));
    let (got, _, asked) = r.timer(24 * SEC);
    assert!(got.is_empty());
    assert_eq!(r.table_rows(24 * SEC), 0, "expired and freed");
    assert_eq!(asked, None);
}

#[test]
fn a_batch_to_the_last_neighbour_then_others_keeps_its_order() {
    let mut r = querier("timeout = \"10s\"");
    r.push(0, 0, vec![ip_to([192, 0, 2, 9], None)]);
    r.push(1, 0, vec![reply_from([192, 0, 2, 9], PEER)]);
    // The gateway (by annotation and by destination), one to resolve, the
    // gateway again, one not IPv4.
    let pkts = vec![
        ip_to([8, 8, 8, 8], Some([192, 0, 2, 9])),
        ip_to([192, 0, 2, 9], None),
        ip_to([192, 0, 2, 7], None),
        ip_to([8, 8, 4, 4], Some([192, 0, 2, 9])),
        Packet::from_bytes(&[0; 60]),
    ];
    let (got, out) = r.push(0, SEC, pkts);
    assert_eq!(got.len(), 4);
    for i in [0, 1, 3] {
        assert_eq!((&got[i][..6], &got[i][6..12]), (&PEER[..], &MAC[..]));
    }
    let dsts: Vec<_> = [0, 1, 3].map(|i| got[i][30..34].to_vec()).into();
    assert_eq!(dsts, [[8, 8, 8, 8], [192, 0, 2, 9], [8, 8, 4, 4]]);
    assert_eq!(request_target(&got[2]), [192, 0, 2, 7]);
    assert_eq!(out.drops(WRONG_INPUT), 1);
    // Past the timeout the neighbour is asked for again, not used.
    // (The sweep may ask for .7 again as well.)
    let (got, _) = r.push(0, 11 * SEC, vec![ip_to([192, 0, 2, 9], None)]);
    assert!(got.iter().all(|f| f[12..14] == [8, 6]), "only requests");
    assert!(got.iter().any(|f| request_target(f) == [192, 0, 2, 9]));
}
