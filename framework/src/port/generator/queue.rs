//! The generator's queues: receive queues that fill slots from templates,
//! and the transmit sink.
//!
//! Two receive strategies produce the same frames. With few flows (their
//! frames fit in [`TABLE_BYTES`]) every flow's frame is built once at open
//! and packets cycle through that table: per packet one slot, one copy, no
//! arithmetic. With more flows, each queue keeps the frame of the current
//! addresses and per packet copies it, writes the two ports and the
//! transport checksum from precomputed partial sums; the IP and MAC
//! addresses (and the IPv4 header checksum) are rewritten only when they
//! change.

use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use super::frame::{addr_sum, l4_checksum, mac_add, FrameSpec, Proto};
use crate::packet::{Batch, Pool};
use crate::port::{PortError, QueueStats, Recv, RxQueue, TxQueue};
use crate::wire::checksum::fold;

/// Largest table of per-flow frames (sized to stay in a core's L2 cache).
pub(super) const TABLE_BYTES: usize = 256 << 10;

/// Offset of the IPv4 header checksum in a frame.
const IPV4_CSUM: usize = crate::wire::ETH_HLEN + 10;

/// Frames are copied in blocks of this many bytes.
const BLOCK: usize = 64;

/// Bytes a frame of `size` takes in a table: whole copy blocks.
pub(super) fn stride(size: usize) -> usize {
    size.div_ceil(BLOCK) * BLOCK
}

/// Wall-clock time in nanoseconds since the Unix epoch, read once per burst.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Copies `src` (whole blocks) to the start of `dst` in fixed-size blocks,
/// which compile to a few vector moves instead of a `memcpy` call.
#[inline(always)]
fn copy_blocks(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.chunks_exact_mut(BLOCK).zip(src.chunks_exact(BLOCK)) {
        d.copy_from_slice(s);
    }
}

/// Packets left to generate by queue `q` of `queues`, `count` in all.
pub(super) fn share_of_count(count: Option<u64>, q: usize, queues: usize) -> u64 {
    match count {
        None => u64::MAX,
        Some(c) => c / queues as u64 + u64::from((q as u64) < c % queues as u64),
    }
}

/// Queue `q`'s share of `flows` flows when there are `queues`: a range of
/// its own, as RSS gives each queue flows no other queue sees (per-worker
/// state such as NAT mappings relies on it). With fewer flows than queues,
/// queue `q` sends flow `q * flows / queues` alone.
pub(super) fn flow_share(flows: u128, q: usize, queues: usize) -> Range<u128> {
    let (q, n) = (q as u128, queues as u128);
    // q * flows may overflow a u128 (flows goes up to 2^128 - 1): divide first.
    let at = |i: u128| flows / n * i + flows % n * i / n;
    let start = at(q);
    start..at(q + 1).max(start + 1)
}

/// A receive queue cycling through a table of per-flow frames.
///
/// Cache-line aligned: each worker writes its own queue every burst, and
/// queues opened one after another would otherwise share lines.
#[repr(align(64))]
pub(super) struct TableRx {
    /// The frames of this queue's flows, `stride` bytes each.
    table: Box<[u8]>,
    stride: usize,
    size: usize,
    /// Byte offset of the next flow's frame in `table`.
    next: usize,
    remaining: u64,
    stats: QueueStats,
}

impl TableRx {
    /// A queue cycling through `flows` with `remaining` packets to send:
    /// a table of their frames, its own.
    pub(super) fn new(spec: &FrameSpec, flows: Range<u128>, remaining: u64) -> TableRx {
        let stride = stride(spec.size);
        // A table queue is made only when every flow's frame fits in
        // TABLE_BYTES: the share's length fits a usize.
        let mut table = vec![0u8; (flows.end - flows.start) as usize * stride];
        for (frame, k) in table.chunks_exact_mut(stride).zip(flows) {
            spec.build(&spec.flow(k), frame);
        }
        TableRx {
            next: 0,
            table: table.into(),
            stride,
            size: spec.size,
            remaining,
            stats: QueueStats::default(),
        }
    }
}

impl TableRx {
    /// The burst loop, with the frame copy specialised for frames of
    /// `BLOCKS` copy blocks (0: any length).
    #[inline(always)]
    fn fill<const BLOCKS: usize>(
        &mut self,
        pool: &mut Pool,
        batch: &mut Batch,
        want: usize,
    ) -> usize {
        let ts = now_ns();
        let (size, stride) = (self.size, self.stride);
        let table: &[u8] = &self.table;
        let mut next = self.next;
        let start = batch.len();
        let got = pool.take_into(batch, want);
        for p in &mut batch[start..] {
            let frame = &table[next..next + stride];
            if BLOCKS == 0 {
                copy_blocks(p.recv_room(), frame);
            } else {
                p.recv_room()[..BLOCKS * BLOCK].copy_from_slice(&frame[..BLOCKS * BLOCK]);
            }
            p.set_received(size, size, ts);
            next += stride;
            if next == table.len() {
                next = 0;
            }
        }
        self.next = next;
        got
    }
}

/// A burst of frames larger than the pool's slots (`[runtime] max_frame`
/// set below the generator's `size`): each is dropped and counted
/// `oversize`, as a receive port would, and none reaches the graph.
#[cold]
fn oversize(remaining: &mut u64, stats: &mut QueueStats, want: usize) -> Recv {
    *remaining -= want as u64;
    stats.drops += want as u64;
    stats.oversize += want as u64;
    Recv::Got(0)
}

impl TableRx {
    fn oversize(&mut self, want: usize) -> Recv {
        oversize(&mut self.remaining, &mut self.stats, want)
    }
}

impl RxQueue for TableRx {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        if self.remaining == 0 {
            return Ok(Recv::Ended);
        }
        let want = (max as u64).min(self.remaining) as usize;
        if pool.max_frame() < self.stride {
            return Ok(self.oversize(want));
        }
        let got = match self.stride / BLOCK {
            1 => self.fill::<1>(pool, batch, want),
            2 => self.fill::<2>(pool, batch, want),
            _ => self.fill::<0>(pool, batch, want),
        };
        self.remaining -= got as u64;
        self.stats.packets += got as u64;
        self.stats.bytes += (got * self.size) as u64;
        Ok(Recv::Got(got))
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}

/// Writes address `a` (IPv6, or IPv4 in the low 32 bits) at byte `at` of
/// `frame`; returns its one's-complement sum.
#[inline(always)]
fn put_addr(frame: &mut [u8], ipv6: bool, at: usize, a: u128) -> u32 {
    if ipv6 {
        frame[at..at + 16].copy_from_slice(&a.to_be_bytes());
    } else {
        frame[at..at + 4].copy_from_slice(&(a as u32).to_be_bytes());
    }
    addr_sum_of(a, ipv6)
}

/// The one's-complement sum of address `a`'s 16-bit words.
#[inline(always)]
fn addr_sum_of(a: u128, ipv6: bool) -> u32 {
    if ipv6 {
        addr_sum(a)
    } else {
        let a = a as u32;
        (a >> 16) + (a & 0xffff)
    }
}

/// A receive queue patching the varying fields into a template per packet.
///
/// Cache-line aligned: each worker writes its own queue every burst, and
/// queues opened one after another would otherwise share lines.
#[repr(align(64))]
pub(super) struct PatchRx {
    spec: FrameSpec,
    /// The frame of the current addresses (ports and transport checksum
    /// are overwritten per packet), padded to whole copy blocks.
    cur: Vec<u8>,
    /// Digits of the current flow: source port, destination port,
    /// source address, destination address, source MAC, destination MAC.
    sp: u32,
    dp: u32,
    si: u64,
    di: u64,
    sm: u64,
    dm: u64,
    /// The current destination's offset from `dst_ip` (before the shift):
    /// `di * dst_step % dst_ip_count`, kept by addition.
    dst_k: u64,
    /// `dst_ip_step % dst_ip_count`.
    dst_step: u64,
    /// Only the destination address changes from one packet to the next
    /// (one port pair and one source address): it and the IPv4 header
    /// checksum are then written into each frame, after the copy, instead
    /// of into the template that the next copy would read back.
    dst_only: bool,
    /// The current IPv4 header checksum (in the template too, unless `dst_only`).
    ip_csum: u16,
    /// Current ports and addresses.
    sport: u16,
    dport: u16,
    src: u128,
    dst: u128,
    /// One's-complement sums of the current addresses.
    src_sum: u32,
    dst_sum: u32,
    /// Transport sum of everything but the ports (addresses included).
    l4_base: u32,
    /// Constant parts of the IPv4 header and transport sums.
    ip_const: u32,
    l4_const: u32,
    /// This queue's flows (its share, as RSS would give a queue its own).
    share: Range<u128>,
    /// The share is every flow: the digits wrap back to the first by themselves.
    whole: bool,
    /// Flows left before the share starts again (unused when `whole`).
    left_in_share: u128,
    remaining: u64,
    stats: QueueStats,
}

impl PatchRx {
    /// A queue cycling through `flows` with `remaining` packets to send.
    pub(super) fn new(spec: &FrameSpec, flows: Range<u128>, remaining: u64) -> PatchRx {
        let (ip_const, l4_const) = spec.constant_sums();
        // Only a share of the flows needs the count down to its end; all
        // of them wrap by themselves.
        let whole = flows.start == 0 && flows.end == spec.flows();
        let mut q = PatchRx {
            spec: spec.clone(),
            cur: vec![0u8; stride(spec.size)],
            sp: 0,
            dp: 0,
            si: 0,
            di: 0,
            sm: 0,
            dm: 0,
            dst_k: 0,
            dst_step: spec.dst_ip_step % spec.dst_ip_count,
            dst_only: spec.src_port_count == 1
                && spec.dst_port_count == 1
                && spec.src_ip_count == 1
                && spec.dst_ip_count > 1,
            ip_csum: 0,
            sport: 0,
            dport: 0,
            src: 0,
            dst: 0,
            src_sum: 0,
            dst_sum: 0,
            l4_base: 0,
            ip_const,
            l4_const,
            left_in_share: if whole {
                u128::MAX
            } else {
                flows.end - flows.start
            },
            share: flows,
            whole,
            remaining,
            stats: QueueStats::default(),
        };
        q.seek(q.share.start);
        q
    }

    /// Makes flow `first` the next one: its digits, its template, its sums.
    fn seek(&mut self, first: u128) {
        let spec = &self.spec;
        let mut k = first % spec.flows();
        let mut digit = |n: u128| {
            let d = k % n;
            k /= n;
            d
        };
        self.sp = digit(spec.src_port_count.into()) as u32;
        self.dp = digit(spec.dst_port_count.into()) as u32;
        self.si = digit(spec.src_ip_count.into()) as u64;
        self.di = digit(spec.dst_ip_count.into()) as u64;
        self.sm = digit(spec.src_mac_count.into()) as u64;
        self.dm = digit(spec.dst_mac_count.into()) as u64;
        // Both below 2^32: the product fits.
        self.dst_k = self.di * self.dst_step % spec.dst_ip_count;
        let flow = spec.flow(first);
        spec.build(&flow, &mut self.cur);
        self.sport = flow.src_port;
        self.dport = flow.dst_port;
        self.src = flow.src_ip;
        self.dst = flow.dst_ip;
        self.src_sum = addr_sum(flow.src_ip);
        self.dst_sum = addr_sum(flow.dst_ip);
        self.set_sums();
    }

    /// Recomputes the sums that depend on the addresses (and the IPv4
    /// header checksum in the template).
    #[inline]
    fn set_sums(&mut self) {
        let addrs = u64::from(self.src_sum) + u64::from(self.dst_sum);
        if !self.spec.ipv6 {
            self.ip_csum = !(fold(u64::from(self.ip_const) + addrs) as u16);
            if !self.dst_only {
                self.cur[IPV4_CSUM..IPV4_CSUM + 2].copy_from_slice(&self.ip_csum.to_be_bytes());
            }
        }
        self.l4_base = fold(u64::from(self.l4_const) + addrs);
    }

    /// Writes address `a` at byte `at` of the template; returns its sum.
    #[inline]
    fn put_addr(&mut self, at: usize, a: u128) -> u32 {
        put_addr(&mut self.cur, self.spec.ipv6, at, a)
    }

    /// Writes the current destination address and IPv4 header checksum
    /// into `buf` (in `dst_only` mode, after the template's copy).
    #[inline(always)]
    fn put_dst(&self, buf: &mut [u8]) {
        let (_, dst_at, _) = self.spec.addr_offs();
        put_addr(buf, self.spec.ipv6, dst_at, self.dst);
        if !self.spec.ipv6 {
            buf[IPV4_CSUM..IPV4_CSUM + 2].copy_from_slice(&self.ip_csum.to_be_bytes());
        }
    }

    /// Moves to the next addresses once the ports have wrapped: IP
    /// addresses, then MAC addresses once both IP addresses have wrapped.
    fn next_addrs(&mut self) {
        let (src_at, dst_at, _) = self.spec.addr_offs();
        if self.spec.src_ip_count > 1 {
            self.si += 1;
            self.src += 1;
            if self.si == self.spec.src_ip_count {
                self.si = 0;
                self.src = self.spec.src_ip;
            }
            self.src_sum = self.put_addr(src_at, self.src);
            if self.si != 0 {
                self.set_sums();
                return;
            }
        }
        let count = self.spec.dst_ip_count;
        self.di += 1;
        self.dst_k += self.dst_step;
        if self.dst_k >= count {
            self.dst_k -= count;
        }
        if self.di == count {
            self.di = 0;
            self.dst_k = 0;
            self.next_macs();
        }
        self.dst = self.spec.dst_ip + (u128::from(self.dst_k) << self.spec.dst_ip_shift);
        self.dst_sum = if self.dst_only {
            addr_sum_of(self.dst, self.spec.ipv6)
        } else {
            self.put_addr(dst_at, self.dst)
        };
        self.set_sums();
    }

    /// Moves to the next MAC addresses (no checksum covers them).
    fn next_macs(&mut self) {
        self.sm += 1;
        if self.sm == self.spec.src_mac_count {
            self.sm = 0;
            self.dm += 1;
            if self.dm == self.spec.dst_mac_count {
                self.dm = 0;
            }
            self.cur[0..6].copy_from_slice(&mac_add(self.spec.dst_mac, self.dm));
        }
        self.cur[6..12].copy_from_slice(&mac_add(self.spec.src_mac, self.sm));
    }

    /// The burst loop, with the frame copy specialised for templates of
    /// `BLOCKS` copy blocks (0: any length); `DST_ONLY` in `dst_only` mode
    /// (IPv6 here: IPv4 has [`PatchRx::fill_dst4`]).
    #[inline(always)]
    fn fill<const BLOCKS: usize, const DST_ONLY: bool>(
        &mut self,
        pool: &mut Pool,
        batch: &mut Batch,
        want: usize,
    ) -> usize {
        let ts = now_ns();
        let size = self.spec.size;
        let (sp_n, dp_n) = (self.spec.src_port_count, self.spec.dst_port_count);
        let (sp0, dp0) = (self.spec.src_port, self.spec.dst_port);
        let addrs_vary = self.spec.src_ip_count > 1
            || self.spec.dst_ip_count > 1
            || self.spec.src_mac_count > 1
            || self.spec.dst_mac_count > 1;
        let proto = self.spec.proto;
        let l4 = self.spec.l4_off();
        let csum_at = self.spec.l4_csum_off();
        // As in `fill_dst4`: a short template in registers, copied again
        // whenever the addresses move on.
        let mut tmpl = [[0u8; BLOCK]; BLOCKS];
        load_blocks(&mut tmpl, &self.cur);
        let start = batch.len();
        let got = pool.take_into(batch, want);
        for p in &mut batch[start..] {
            let buf = p.recv_room();
            if BLOCKS == 0 {
                copy_blocks(buf, &self.cur);
            } else {
                store_blocks(buf, &tmpl);
            }
            buf[l4..l4 + 2].copy_from_slice(&self.sport.to_be_bytes());
            buf[l4 + 2..l4 + 4].copy_from_slice(&self.dport.to_be_bytes());
            let acc = u64::from(self.l4_base) + u64::from(self.sport) + u64::from(self.dport);
            let c = l4_checksum(proto, fold(acc));
            buf[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
            if DST_ONLY {
                self.put_dst(buf);
            }
            p.set_received(size, size, ts);
            // Next flow: source port fastest, then destination port, then addresses.
            self.sp += 1;
            self.sport = self.sport.wrapping_add(1);
            if self.sp == sp_n {
                self.sp = 0;
                self.sport = sp0;
                self.dp += 1;
                self.dport = self.dport.wrapping_add(1);
                if self.dp == dp_n {
                    self.dp = 0;
                    self.dport = dp0;
                    if addrs_vary {
                        self.next_addrs();
                        load_blocks(&mut tmpl, &self.cur);
                    }
                }
            }
        }
        got
    }
}

/// Folds a 32-bit one's-complement sum to 16 bits (two steps always do).
#[inline(always)]
fn fold32(x: u32) -> u32 {
    let x = (x & 0xffff) + (x >> 16);
    (x & 0xffff) + (x >> 16)
}

impl PatchRx {
    /// The burst loop when only the IPv4 destination changes from packet to
    /// packet (`dst_only`, the route lookup benchmark's traffic): per packet
    /// the template's copy, then the destination and both checksums written
    /// from sums of the fixed fields plus the destination's, the next
    /// destination by one addition. The template is written only when the
    /// destinations wrap and the MAC addresses move on.
    #[inline(always)]
    fn fill_dst4<const BLOCKS: usize, const UDP: bool>(
        &mut self,
        pool: &mut Pool,
        batch: &mut Batch,
        want: usize,
    ) -> usize {
        let ts = now_ns();
        let size = self.spec.size;
        let (_, dst_at, _) = self.spec.addr_offs();
        let csum_at = self.spec.l4_csum_off();
        let count = self.spec.dst_ip_count;
        let (step, shift, base) = (
            self.dst_step,
            self.spec.dst_ip_shift,
            self.spec.dst_ip as u32,
        );
        // Sums of everything but the destination (each at most 0xffff).
        let ip_rest = fold(u64::from(self.ip_const) + u64::from(self.src_sum));
        let l4_rest = fold(
            u64::from(self.l4_const)
                + u64::from(self.src_sum)
                + u64::from(self.sport)
                + u64::from(self.dport),
        );
        // The template of a short frame in registers rather than read
        // back from `cur` per packet (copied again when the MACs move on).
        let mut tmpl = [[0u8; BLOCK]; BLOCKS];
        load_blocks(&mut tmpl, &self.cur);
        let (mut di, mut k) = (self.di, self.dst_k);
        let start = batch.len();
        let got = pool.take_into(batch, want);
        for p in &mut batch[start..] {
            let buf = p.recv_room();
            if BLOCKS == 0 {
                copy_blocks(buf, &self.cur);
            } else {
                store_blocks(buf, &tmpl);
            }
            // The configuration keeps the shifted index below 2^32 - base.
            let dst = base.wrapping_add((k as u32) << shift);
            let ds = (dst >> 16) + (dst & 0xffff);
            let ip_csum = !(fold32(ip_rest + ds) as u16);
            // `l4_checksum` tells only UDP from the rest: a constant here.
            let l4_proto = if UDP { Proto::Udp } else { Proto::Tcp };
            let l4_csum = l4_checksum(l4_proto, fold32(l4_rest + ds));
            buf[dst_at..dst_at + 4].copy_from_slice(&dst.to_be_bytes());
            buf[IPV4_CSUM..IPV4_CSUM + 2].copy_from_slice(&ip_csum.to_be_bytes());
            buf[csum_at..csum_at + 2].copy_from_slice(&l4_csum.to_be_bytes());
            p.set_received(size, size, ts);
            k += step;
            if k >= count {
                k -= count;
            }
            di += 1;
            if di == count {
                di = 0;
                k = 0;
                self.next_macs();
                load_blocks(&mut tmpl, &self.cur);
            }
        }
        self.di = di;
        self.dst_k = k;
        self.dst = self.spec.dst_ip + (u128::from(k) << shift);
        self.dst_sum = addr_sum_of(self.dst, false);
        self.set_sums();
        got
    }
}

/// Copies the first blocks of `cur` into `tmpl` (as many as it holds).
#[inline(always)]
fn load_blocks<const BLOCKS: usize>(tmpl: &mut [[u8; BLOCK]; BLOCKS], cur: &[u8]) {
    for (t, c) in tmpl.iter_mut().zip(cur.chunks_exact(BLOCK)) {
        t.copy_from_slice(c);
    }
}

/// Copies `tmpl` back to the start of `buf` (the inverse of [`load_blocks`]).
#[inline(always)]
fn store_blocks<const BLOCKS: usize>(buf: &mut [u8], tmpl: &[[u8; BLOCK]; BLOCKS]) {
    for (d, s) in buf.chunks_exact_mut(BLOCK).zip(tmpl) {
        d.copy_from_slice(s);
    }
}

impl PatchRx {
    /// Up to `want` frames, by the burst loop made for this queue's frames.
    #[inline(always)]
    fn fill_any(&mut self, pool: &mut Pool, batch: &mut Batch, want: usize) -> usize {
        let blocks = self.cur.len() / BLOCK;
        let udp = self.spec.proto == Proto::Udp;
        match (self.dst_only, self.spec.ipv6, blocks) {
            (true, false, 1) if udp => self.fill_dst4::<1, true>(pool, batch, want),
            (true, false, 1) => self.fill_dst4::<1, false>(pool, batch, want),
            (true, false, _) if udp => self.fill_dst4::<0, true>(pool, batch, want),
            (true, false, _) => self.fill_dst4::<0, false>(pool, batch, want),
            (true, true, 2) => self.fill::<2, true>(pool, batch, want),
            (true, true, _) => self.fill::<0, true>(pool, batch, want),
            (false, _, 1) => self.fill::<1, false>(pool, batch, want),
            (false, _, 2) => self.fill::<2, false>(pool, batch, want),
            (false, _, _) => self.fill::<0, false>(pool, batch, want),
        }
    }
}

impl RxQueue for PatchRx {
    fn recv(&mut self, pool: &mut Pool, batch: &mut Batch, max: usize) -> Result<Recv, PortError> {
        if self.remaining == 0 {
            return Ok(Recv::Ended);
        }
        let want = (max as u64).min(self.remaining) as usize;
        if pool.max_frame() < self.cur.len() {
            let (remaining, stats) = (&mut self.remaining, &mut self.stats);
            return Ok(oversize(remaining, stats, want));
        }
        let mut got = 0;
        // In runs that end where the share does (a share of the flows starts
        // again from its first, not from the next queue's).
        loop {
            let run = (want - got).min(self.left_in_share.try_into().unwrap_or(usize::MAX));
            let filled = self.fill_any(pool, batch, run);
            got += filled;
            if !self.whole {
                self.left_in_share -= filled as u128;
                if self.left_in_share == 0 {
                    self.seek(self.share.start);
                    self.left_in_share = self.share.end - self.share.start;
                }
            }
            if got == want || filled < run {
                break;
            }
        }
        self.remaining -= got as u64;
        self.stats.packets += got as u64;
        self.stats.bytes += (got * self.spec.size) as u64;
        Ok(Recv::Got(got))
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}

/// The transmit side: counts what the graph sends and frees it.
#[derive(Default)]
///
/// Cache-line aligned: each worker writes its own queue every burst, and
/// queues opened one after another would otherwise share lines.
#[repr(align(64))]
pub(super) struct SinkTx {
    stats: QueueStats,
}

impl TxQueue for SinkTx {
    fn send(&mut self, pool: &mut Pool, batch: &mut Batch) -> Result<(), PortError> {
        self.stats.packets += batch.len() as u64;
        self.stats.bytes += batch.iter().map(|p| p.len() as u64).sum::<u64>();
        pool.free_batch(batch);
        Ok(())
    }

    fn stats(&self) -> QueueStats {
        self.stats
    }
}
