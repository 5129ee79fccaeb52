//! Nat44's ICMP: queries (echo, timestamp), whose identifier is mapped
//! like a port, and errors, whose quoted datagram is translated with them
//! (RFC 5508), hairpinned ones included.

use super::table::{key, ICMP, TCP, UDP};
use super::translate::{is_error, is_reply, is_request, quoted, rewrite, translate_error, End};
use super::{Nat44, MALFORMED, NO_MAPPING, TABLE_FULL, UNSUPPORTED};
use crate::element::DropReason;
use crate::wire::napt::{self, ICMP_ID};
use crate::wire::{be16, Headers, Ipv4Packet, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

impl Nat44 {
    /// An ICMP message from `input`'s side: a query (its identifier is
    /// mapped like a port) or an error (its quoted datagram is translated).
    /// Returns the output it leaves on.
    pub(super) fn icmp(
        &mut self,
        h: &Headers,
        f: &mut [u8],
        input: usize,
        now: u64,
    ) -> Result<usize, DropReason> {
        let (l3, l4) = (h.l3_off as usize, h.l4_off as usize);
        let t = f[l4];
        if is_error(t) {
            return self.icmp_error(f, l3, l4, input);
        }
        let outward = input == 0;
        if !(outward && is_request(t) || !outward && is_reply(t)) {
            return Err(if outward { UNSUPPORTED } else { NO_MAPPING });
        }
        if f.len() < l4 + napt::ICMP_HLEN {
            return Err(MALFORMED);
        }
        let ip = Ipv4Packet::new_unchecked(&f[l3..]);
        let id = be16(f, l4 + ICMP_ID);
        if outward {
            let (src, dst): (u32, u32) = (ip.src_addr().into(), ip.dst_addr().into());
            if self.is_external(dst) {
                // Hairpinned, a query is what it would be from outside: a
                // request to an external address, which no inside host
                // owns (RFC 5508 REQ-7 asks query hairpinning of basic NAT
                // only, not of NAPT).
                return Err(NO_MAPPING);
            }
            let slot = match self.table.find_inside(key(ICMP, src, id)) {
                Some(s) => s,
                None => self
                    .table
                    .create(ICMP, src, id, now)
                    .map_err(|_| TABLE_FULL)?,
            };
            let m = self.table.get_mut(slot);
            (m.last, m.packets) = (now, m.packets + 1);
            let (idx, eid) = (m.ext_idx, m.ext_port);
            let ext = self.table.externals[idx as usize];
            rewrite(f, l3, l4, IPPROTO_ICMP, End::Src, ext, eid, true);
        } else {
            let dst: u32 = ip.dst_addr().into();
            let slot = self
                .live_outside(key(ICMP, dst, id), now)
                .ok_or(NO_MAPPING)?;
            let m = self.table.get_mut(slot);
            (m.last, m.packets) = (now, m.packets + 1);
            let (addr, iid) = (m.in_addr, m.in_port);
            rewrite(f, l3, l4, IPPROTO_ICMP, End::Dst, addr, iid, true);
        }
        Ok(input)
    }

    /// An ICMP error: from outside it quotes a datagram that went out
    /// (its source is a mapping's external endpoint); from inside, one that
    /// came in (its destination is a mapping's internal endpoint). Errors
    /// do not refresh their mapping (RFC 5508). Returns the output.
    ///
    /// From inside, an error about a hairpinned datagram (its quoted
    /// source is an external endpoint: another inside host's mapping) is
    /// hairpinned too (RFC 5508 REQ-7): the quoted destination and the
    /// outer source become this host's external endpoint and address, the
    /// quoted source and the outer destination the other host's internal
    /// ones, and it goes back inside (output 1). The other host sees an
    /// error from the external address about the datagram it sent.
    fn icmp_error(
        &mut self,
        f: &mut [u8],
        l3: usize,
        l4: usize,
        input: usize,
    ) -> Result<usize, DropReason> {
        let q = quoted(f, l3, l4).ok_or(MALFORMED)?;
        let class = match q.proto {
            IPPROTO_TCP => TCP,
            IPPROTO_UDP => UDP,
            _ => ICMP,
        };
        let mut output = input;
        if input == 0 {
            let slot = self
                .table
                .find_inside(key(class, q.dst, q.dport))
                .ok_or(NO_MAPPING)?;
            let m = *self.table.get(slot);
            let back = match self.is_external(q.src) {
                true => Some(
                    self.table
                        .find_outside(key(class, q.src, q.sport))
                        .ok_or(NO_MAPPING)?,
                ),
                false => None,
            };
            let ext = self.table.ext_addr(&m);
            translate_error(f, l3, l4, &q, End::Dst, ext, m.ext_port);
            if let Some(slot) = back {
                let a = *self.table.get(slot);
                translate_error(f, l3, l4, &q, End::Src, a.in_addr, a.in_port);
                self.hairpinned += 1;
                output = 1;
            }
        } else {
            let slot = self
                .table
                .find_outside(key(class, q.src, q.sport))
                .ok_or(NO_MAPPING)?;
            let m = *self.table.get(slot);
            translate_error(f, l3, l4, &q, End::Src, m.in_addr, m.in_port);
        }
        self.icmp_errors += 1;
        Ok(output)
    }
}
