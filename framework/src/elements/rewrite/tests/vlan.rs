//! VLAN push, pop and set.

use super::*;

#[test]
fn pushes_a_tag_on_untagged_frames() {
    let list = [("vlan_push", Value::Int(100)), ("vlan_pcp", Value::Int(3))];
    for base in bases().into_iter().filter(|f| f.vlan.is_none()) {
        let got = rewrite(&list, &build(&base)).unwrap();
        assert_eq!(
            got,
            build(&Frame {
                vlan: Some((100, 3)),
                ..base
            })
        );
        assert_checksums(&got);
    }
    // The priority defaults to 0.
    let base = frame(false, false, true);
    let got = rewrite(&list[..1], &build(&base)).unwrap();
    assert_eq!(
        got,
        build(&Frame {
            vlan: Some((100, 0)),
            ..base
        })
    );
}

#[test]
fn pushes_an_outer_tag_on_tagged_frames() {
    let list = [("vlan_push", Value::Int(4094)), ("vlan_pcp", Value::Int(7))];
    for base in bases().into_iter().filter(|f| f.vlan.is_some()) {
        let input = build(&base);
        let got = rewrite(&list, &input).unwrap();
        assert_eq!(&got[..12], &input[..12]);
        assert_eq!(&got[12..16], &[0x81, 0x00, 0xef, 0xfe]);
        assert_eq!(&got[16..], &input[12..]);
        let p = PacketHeaders::from_ethernet_slice(&got).unwrap();
        assert_eq!(
            p.vlan_ids().as_slice(),
            &[VlanId::try_new(4094).unwrap(), VlanId::try_new(10).unwrap()]
        );
        assert_checksums(&got);
    }
}

#[test]
fn pops_the_outer_tag() {
    let list = [("vlan_pop", Value::Bool(true))];
    for base in bases().into_iter().filter(|f| f.vlan.is_some()) {
        let got = rewrite(&list, &build(&base)).unwrap();
        assert_eq!(got, build(&Frame { vlan: None, ..base }));
        assert_checksums(&got);
    }
    // An 802.1ad outer tag goes, the inner 802.1Q tag stays.
    let f = frame(false, false, false);
    let qinq = kit(&f).vlans(&[3000, 10]).build();
    assert_eq!(&qinq[12..14], &[0x88, 0xa8]);
    let got = rewrite(&list, &qinq).unwrap();
    assert_eq!(
        got,
        build(&Frame {
            vlan: Some((10, 0)),
            ..f
        })
    );
}

#[test]
fn untagged_frames_pass_vlan_pop_and_set_and_are_counted() {
    for list in [
        [("vlan_pop", Value::Bool(true))],
        [("vlan_set", Value::Int(20))],
    ] {
        let mut el = element(&list);
        let frames: Vec<_> = bases()
            .iter()
            .filter(|f| f.vlan.is_none())
            .map(build)
            .collect();
        let (sent, _) = run(&mut *el, &frames);
        assert_eq!(sent, frames);
        assert_eq!(stat(&*el, "untagged"), 4);
        assert_eq!(stat(&*el, "skipped"), 4);
        assert_eq!(stat(&*el, "rewritten"), 0);
    }
}

#[test]
fn sets_the_outer_tag() {
    // The tag keeps its priority unless `vlan_pcp` is given.
    check(&[("vlan_set", Value::Int(20))], |f| {
        f.vlan = f.vlan.map(|(_, pcp)| (20, pcp))
    });
    check(
        &[("vlan_set", Value::Int(0)), ("vlan_pcp", Value::Int(2))],
        |f| f.vlan = f.vlan.map(|_| (0, 2)),
    );
}

#[test]
fn push_then_pop_restores_the_original_bytes() {
    let mut push = element(&[("vlan_push", Value::Int(42)), ("vlan_pcp", Value::Int(6))]);
    let mut pop = element(&[("vlan_pop", Value::Bool(true))]);
    let frames: Vec<_> = bases().iter().map(build).collect();
    let mut out = push_packets(
        &mut *push,
        frames.iter().map(|f| Packet::from_bytes(f)).collect(),
    );
    let pushed: Vec<Packet> = out.take(0).into_iter().collect();
    assert!(pushed
        .iter()
        .zip(&frames)
        .all(|(p, f)| p.len() == f.len() + 4));
    let out = push_packets(&mut *pop, pushed);
    let back: Vec<_> = out.batch(0).iter().map(|p| p.data().to_vec()).collect();
    assert_eq!(back, frames);
}

#[test]
fn push_without_headroom_is_dropped() {
    let f = build(&frame(false, false, true));
    let mut p = Packet::from_bytes(&f);
    let room = p.headroom();
    p.push_front(room).unwrap()[..f.len()].copy_from_slice(&f);
    p.set_len(f.len()).unwrap();
    assert_eq!((p.headroom(), p.data()), (0, &f[..]));
    let mut el = element(&[("vlan_push", Value::Int(5))]);
    let out = push_packets(&mut *el, vec![p]);
    assert_eq!(out.drops(NO_HEADROOM), 1);
    assert!(out.batch(0).is_empty());
}
