// SPDX-License-Identifier: GPL-2.0
/*
 * hpio: the receive side.
 *
 * While a device has at least one reader, hpio_rx_handler is its
 * rx_handler: every frame (or, with tos_value set, every matching IP
 * frame) is taken from the stack and queued to one of the device's rings.
 * The ring is the hardware receive queue the frame arrived on when the
 * device has several, else the CPU that received it.  Readers copy frames
 * out as struct hpio_hdr + frame: readv one frame per iovec, read one frame.
 * A bound reader reads its queue's ring; an unbound one reads every ring,
 * that of its CPU first, so that no ring is out of its reach (a device may
 * have more RX queues than there are CPUs).
 */
#include <linux/if_vlan.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/percpu.h>
#include <linux/rtnetlink.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <linux/skbuff.h>
#include <linux/uaccess.h>
#include <net/busy_poll.h>
#include <net/dsfield.h>

#include "hpio.h"

static void hpio_skb_free(void *ptr)
{
	kfree_skb(ptr);
}

/* Requires RTNL.  Allocate one ring per queue. */
static int hpio_rings_alloc(struct hpio_dev *hdev)
{
	unsigned int size = READ_ONCE(hpio_ring_size);
	unsigned int i;
	int err;

	ASSERT_RTNL();
	size = clamp(size, HPIO_RING_MIN, HPIO_RING_MAX);
	for (i = 0; i < hdev->nqueues; i++) {
		err = ptr_ring_init(&hdev->queues[i].ring, size, GFP_KERNEL);
		if (err)
			goto err_free;
	}
	WRITE_ONCE(hdev->ring_size, size);
	return 0;

err_free:
	while (i--)
		ptr_ring_cleanup(&hdev->queues[i].ring, hpio_skb_free);
	return err;
}

/* Requires RTNL, no reader left and no rx_handler installed. */
static void hpio_rings_free(struct hpio_dev *hdev)
{
	unsigned int i;

	ASSERT_RTNL();
	for (i = 0; i < hdev->nqueues; i++)
		ptr_ring_cleanup(&hdev->queues[i].ring, hpio_skb_free);
	WRITE_ONCE(hdev->ring_size, 0);
}

/* Should this frame be stolen?  Called before anything is changed. */
static bool hpio_rx_wanted(const struct sk_buff *skb)
{
	int tos = READ_ONCE(hpio_tos_value);

	if (unlikely(skb->pkt_type == PACKET_LOOPBACK))
		return false;
	if (likely(tos < 0))
		return true;

	/* skb->data is at the network header here. */
	if (skb->protocol == htons(ETH_P_IP)) {
		const struct iphdr *iph;
		struct iphdr _iph;

		iph = skb_header_pointer(skb, 0, sizeof(_iph), &_iph);
		return iph && iph->tos == tos;
	}
	if (skb->protocol == htons(ETH_P_IPV6)) {
		const struct ipv6hdr *ip6h;
		struct ipv6hdr _ip6h;

		ip6h = skb_header_pointer(skb, 0, sizeof(_ip6h), &_ip6h);
		return ip6h && ipv6_get_dsfield(ip6h) == tos;
	}
	return false;
}

static unsigned int hpio_rx_ring_index(const struct hpio_dev *hdev,
				       const struct sk_buff *skb)
{
	unsigned int idx;

	if (skb->dev->real_num_rx_queues > 1 && skb_rx_queue_recorded(skb))
		idx = skb_get_rx_queue(skb);
	else
		idx = smp_processor_id();
	return idx < hdev->nqueues ? idx : idx % hdev->nqueues;
}

/*
 * Make the frame what the wire carried: a checksum left to the NIC by a
 * local sender (veth, loopback paths) is computed now, so readers never see
 * a half-done checksum.
 */
static int hpio_rx_fix_csum(struct sk_buff *skb)
{
	int end;

	if (skb->ip_summed != CHECKSUM_PARTIAL)
		return 0;
	end = skb_checksum_start_offset(skb) + skb->csum_offset +
	      sizeof(__sum16);
	if (!pskb_may_pull(skb, end))
		return -EINVAL;
	return skb_checksum_help(skb);
}

static void hpio_rx_enqueue(struct hpio_dev *hdev, struct hpio_queue *q,
			    struct sk_buff *skb)
{
	unsigned int len = skb->len;

	if (skb_vlan_tag_present(skb))
		len += VLAN_HLEN;
	if (unlikely(len > U16_MAX || hpio_rx_fix_csum(skb))) {
		atomic64_inc(&q->rx_errors);
		kfree_skb(skb);
		return;
	}
	if (unlikely(ptr_ring_produce(&q->ring, skb))) {
		atomic64_inc(&q->rx_drops);
		kfree_skb(skb);
		return;
	}
	atomic64_inc(&q->rx_packets);
	/* As wq_has_sleeper, for both queues: the frame is in the ring
	 * before a sleeper is looked for (pairs with the barrier of
	 * prepare_to_wait and of poll's set_current_state). */
	smp_mb();
	if (waitqueue_active(&q->wait))
		wake_up_interruptible_poll(&q->wait, EPOLLIN | EPOLLRDNORM);
	if (waitqueue_active(&hdev->wait))
		wake_up_interruptible_poll(&hdev->wait, EPOLLIN | EPOLLRDNORM);
}

/* A GRO/GSO super-frame: queue it as the wire frames it stands for. */
static void hpio_rx_segment(struct hpio_dev *hdev, struct hpio_queue *q,
			    struct sk_buff *skb)
{
	struct sk_buff *segs, *seg, *next;

	/* Segmenting a frame without checksum state would warn; none of the
	 * stack's GSO/GRO producers make one. */
	if (skb->ip_summed == CHECKSUM_NONE)
		goto drop;
	segs = __skb_gso_segment(skb, NETIF_F_SG, false);
	if (IS_ERR_OR_NULL(segs))
		goto drop;
	consume_skb(skb);
	skb_list_walk_safe(segs, seg, next) {
		skb_mark_not_on_list(seg);
		hpio_rx_enqueue(hdev, q, seg);
	}
	return;

drop:
	atomic64_inc(&q->rx_errors);
	kfree_skb(skb);
}

/*
 * Receive stamps without a clock-source read per frame: each CPU reads
 * CLOCK_REALTIME at most once per HPIO_STAMP_REFRESH_NS and adds the
 * local_clock() (TSC) time since.  Stamps keep nanosecond steps; a step of
 * the wall clock shows within that time.  On a VM whose clock source is
 * an emulated HPET, this saves a device access per frame.
 */
#define HPIO_STAMP_REFRESH_NS	(NSEC_PER_SEC / 1000)

struct hpio_stamp {
	u64 local;
	ktime_t real;
};

static DEFINE_PER_CPU(struct hpio_stamp, hpio_stamps);

static ktime_t hpio_rx_stamp(void)
{
	struct hpio_stamp *st = get_cpu_ptr(&hpio_stamps);
	u64 now = local_clock();
	ktime_t stamp;

	if (unlikely(!st->real || now - st->local >= HPIO_STAMP_REFRESH_NS)) {
		st->local = now;
		st->real = ktime_get_real();
	}
	stamp = ktime_add_ns(st->real, now - st->local);
	put_cpu_ptr(&hpio_stamps);
	return stamp;
}

/* Runs under rcu_read_lock in softirq context, installed while readers > 0. */
static rx_handler_result_t hpio_rx_handler(struct sk_buff **pskb)
{
	struct sk_buff *skb = *pskb;
	struct hpio_dev *hdev = rcu_dereference(skb->dev->rx_handler_data);
	struct hpio_queue *q;
	ktime_t stamp;

	if (!hpio_rx_wanted(skb))
		return RX_HANDLER_PASS;
	q = &hdev->queues[hpio_rx_ring_index(hdev, skb)];
#ifdef CONFIG_NET_RX_BUSY_POLL
	/* Remember the NAPI instance feeding this ring (GRO marks it). */
	if (skb->napi_id >= MIN_NAPI_ID &&
	    READ_ONCE(q->napi_id) != skb->napi_id)
		WRITE_ONCE(q->napi_id, skb->napi_id);
#endif

	skb = skb_share_check(skb, GFP_ATOMIC);
	if (unlikely(!skb)) {
		atomic64_inc(&q->rx_errors);
		return RX_HANDLER_CONSUMED;
	}
	skb_orphan(skb);

	/* Give readers the frame from its link-layer header on. */
	if (skb_mac_header_was_set(skb))
		__skb_push(skb, skb->data - skb_mac_header(skb));

	/* The frame never returns to the stack, so tstamp is ours. */
	stamp = skb_hwtstamps(skb)->hwtstamp;
	skb->tstamp = stamp ? stamp : hpio_rx_stamp();

	if (skb_is_gso(skb))
		hpio_rx_segment(hdev, q, skb);
	else
		hpio_rx_enqueue(hdev, q, skb);
	return RX_HANDLER_CONSUMED;
}

/* Requires RTNL.  A file was opened for reading. */
int hpio_rx_open(struct hpio_dev *hdev)
{
	struct net_device *dev;
	int err;

	ASSERT_RTNL();
	if (hdev->gone)
		return -ENODEV;
	if (hdev->readers) {
		WRITE_ONCE(hdev->readers, hdev->readers + 1);
		return 0;
	}

	err = hpio_rings_alloc(hdev);
	if (err)
		return err;
	/* -EBUSY when a bridge, bond, macvlan, team... owns the device. */
	dev = rtnl_dereference(hdev->netdev);
	err = netdev_rx_handler_register(dev, hpio_rx_handler, hdev);
	if (err)
		goto err_rings;
	hdev->rx_attached = true;
	WRITE_ONCE(hdev->readers, 1);
	return 0;

err_rings:
	hpio_rings_free(hdev);
	return err;
}

/* Requires RTNL.  Stop stealing frames (waits for handlers in flight). */
static void hpio_rx_detach(struct hpio_dev *hdev)
{
	ASSERT_RTNL();
	if (!hdev->rx_attached)
		return;
	netdev_rx_handler_unregister(rtnl_dereference(hdev->netdev));
	hdev->rx_attached = false;
}

/* Requires RTNL.  A file opened for reading is being released. */
void hpio_rx_close(struct hpio_dev *hdev)
{
	ASSERT_RTNL();
	WRITE_ONCE(hdev->readers, hdev->readers - 1);
	if (hdev->readers)
		return;
	hpio_rx_detach(hdev);
	hpio_rings_free(hdev);
}

/*
 * Requires RTNL.  The network device is going away: stop stealing, drop
 * queued frames and wake every sleeper so that it returns ENODEV.  The
 * rings themselves stay until the last reader closes.
 */
void hpio_rx_gone(struct hpio_dev *hdev)
{
	unsigned int i;
	void *skb;

	ASSERT_RTNL();
	WRITE_ONCE(hdev->gone, true);
	hpio_rx_detach(hdev);
	if (!hdev->readers)
		return;
	for (i = 0; i < hdev->nqueues; i++) {
		struct hpio_queue *q = &hdev->queues[i];

		while ((skb = ptr_ring_consume(&q->ring)))
			kfree_skb(skb);
		wake_up_interruptible_poll(&q->wait, EPOLLHUP | EPOLLERR);
	}
	wake_up_interruptible_poll(&hdev->wait, EPOLLHUP | EPOLLERR);
}

/*
 * Copy @skb into the current segment of @to (@seg bytes, at least the
 * header) as struct hpio_hdr + frame, truncating the frame to fit, then
 * move @to to the next segment.  Returns the bytes written or -EFAULT.
 */
static ssize_t hpio_rx_copy(struct hpio_queue *q, struct sk_buff *skb,
			    struct iov_iter *to, size_t seg)
{
	bool tagged = skb_vlan_tag_present(skb);
	size_t len = skb->len + (tagged ? VLAN_HLEN : 0);
	size_t n = min(len, seg - sizeof(struct hpio_hdr));
	struct hpio_hdr hdr = {
		.version = HPIO_HDR_VERSION,
		.hdrlen = sizeof(hdr),
		.pktlen = len,
		.tstamp = ktime_to_ns(skb->tstamp),
	};

	if (copy_to_iter(&hdr, sizeof(hdr), to) != sizeof(hdr))
		return -EFAULT;

	if (tagged) {
		/* Put back the 802.1Q/802.1ad tag the NIC (or the stack's
		 * skb_vlan_untag) moved out of the frame: MACs, tag, rest. */
		__be16 tag[2] = { skb->vlan_proto,
				  htons(skb_vlan_tag_get(skb)) };
		size_t mac = min_t(size_t, n, 2 * ETH_ALEN);
		size_t tl = min_t(size_t, n - mac, VLAN_HLEN);

		if (skb_copy_datagram_iter(skb, 0, to, mac))
			return -EFAULT;
		if (copy_to_iter(tag, tl, to) != tl)
			return -EFAULT;
		if (skb_copy_datagram_iter(skb, mac, to, n - mac - tl))
			return -EFAULT;
	} else if (skb_copy_datagram_iter(skb, 0, to, n)) {
		return -EFAULT;
	}

	if (n < len)
		atomic64_inc(&q->truncated);
	iov_iter_advance(to, seg - sizeof(hdr) - n);
	return sizeof(hdr) + n;
}

/*
 * The rings a call on @hf reads: the bound queue's, or for an unbound file
 * all of them, starting with that of the caller's CPU.  *@first is the
 * first ring, the return value how many to visit: ring (first + i) %
 * nqueues for i < count.
 */
static unsigned int hpio_rx_rings(const struct hpio_file *hf, u32 *first)
{
	unsigned int nq = hf->hdev->nqueues;
	u32 q = READ_ONCE(hf->queue);

	if (q != HPIO_QUEUE_CPU) {
		*first = q;
		return 1;
	}
	*first = raw_smp_processor_id() % nq;
	return nq;
}

/* Does one of the @count rings from @first hold a frame? */
static bool hpio_rx_any(struct hpio_dev *hdev, u32 first, unsigned int count)
{
	unsigned int i, nq = hdev->nqueues;

	for (i = 0; i < count; i++)
		if (!__ptr_ring_empty(&hdev->queues[(first + i) % nq].ring))
			return true;
	return false;
}

/* Frames a read takes from a ring per consumer lock. */
#define HPIO_RX_BATCH	16

/* Frames taken from ring @ring, not yet delivered: skbs[next..n). */
struct hpio_rx_batch {
	struct sk_buff *skbs[HPIO_RX_BATCH];
	unsigned int next, n;
	u32 ring;
};

/*
 * Take the next frame: from @b, else up to @want (at most HPIO_RX_BATCH)
 * at once from the first non-empty ring among the @count from *@ring on
 * (in ring order, wrapping), moving *@ring and *@count to it.
 * Returns NULL when all are empty.
 */
static struct sk_buff *hpio_rx_take(struct hpio_dev *hdev, u32 *ring,
				    unsigned int *count,
				    struct hpio_rx_batch *b, size_t want)
{
	int n = min_t(size_t, max_t(size_t, want, 1), HPIO_RX_BATCH);

	if (b->next < b->n)
		return b->skbs[b->next++];
	while (*count) {
		b->n = ptr_ring_consume_batched(&hdev->queues[*ring].ring,
						(void **)b->skbs, n);
		if (b->n) {
			b->ring = *ring;
			b->next = 1;
			return b->skbs[0];
		}
		if (--*count)
			*ring = (*ring + 1) % hdev->nqueues;
	}
	return NULL;
}

/*
 * Put frames taken but not delivered back at the head of their ring (only
 * after a fault or a short iovec: reads take no more frames than they have
 * iovecs).  Frames whose slots the producer filled meanwhile are freed.
 */
static void hpio_rx_untake(struct hpio_dev *hdev, struct hpio_rx_batch *b)
{
	if (b->next < b->n)
		ptr_ring_unconsume(&hdev->queues[b->ring].ring,
				   (void **)b->skbs + b->next, b->n - b->next,
				   hpio_skb_free);
	b->next = b->n;
}

#ifdef CONFIG_NET_RX_BUSY_POLL
struct hpio_poll {
	atomic64_t *rx_packets;
	s64 start, last;
	size_t want;
};

/* Stop polling once @want frames reached the ring, or a poll added none. */
static bool hpio_rx_poll_end(void *arg, unsigned long start_time)
{
	struct hpio_poll *p = arg;
	s64 now = atomic64_read(p->rx_packets);

	if (now - p->start >= p->want || now == p->last)
		return true;
	p->last = now;
	return false;
}
#endif

/*
 * Frames waiting in @r, read without its locks: a hint.  The consumer
 * zeroes the slots it took only in batches, so the count runs from the
 * consumer's head to the producer; when the two meet, the ring is full if
 * the head's slot holds a frame, else empty.
 */
static unsigned int hpio_ring_count(struct ptr_ring *r)
{
	int head = READ_ONCE(r->consumer_head);
	int n = READ_ONCE(r->producer) - head;

	if (n < 0)
		n += r->size;
	else if (!n && READ_ONCE(r->queue[head]))
		n = r->size;
	return n;
}

/*
 * Let the reader drive the NIC: poll the NAPI instance that feeds ring
 * @ring, with the busy_poll budget per poll, until @want frames are in
 * the ring (counting those already there) or a poll brought none (the
 * kernel's busy-poll code polls once more as it stops), so that frames
 * enter the ring at the pace they are read.  The polls run the stack's
 * receive path, hpio_rx_handler included, in this task with BH disabled.
 * With the device's napi_defer_hard_irqs and gro_flush_timeout set, the
 * NIC's interrupt then stays off while reads keep polling, and frames
 * beyond what the reader takes wait in the NIC instead of being received
 * by softirq and dropped at a full ring.  A stale NAPI id is harmless: no
 * instance is found.
 */
static void hpio_rx_busy_poll(struct hpio_dev *hdev, u32 ring, size_t want)
{
#ifdef CONFIG_NET_RX_BUSY_POLL
	struct hpio_queue *q = &hdev->queues[ring];
	unsigned int budget = READ_ONCE(hpio_busy_poll);
	unsigned int id = READ_ONCE(q->napi_id);
	struct hpio_poll p = {
		.rx_packets = &q->rx_packets,
		.want = max_t(size_t, want, 1),
	};
	unsigned int have;

	if (!budget || id < MIN_NAPI_ID)
		return;
	/* Frames left from earlier polls count: the poll as it stops adds
	 * up to a budget more than asked for, and polling on top of them
	 * would fill the ring until it drops. */
	have = hpio_ring_count(&q->ring);
	if (have >= p.want) {
		/*
		 * Unless the NIC's softirq brought them: a reader that slept
		 * longer than the NIC's gro_flush_timeout left it to its
		 * interrupt, and in a flood the softirq goes on filling the
		 * ring faster than the reader empties it.  A busy poll now
		 * makes the stack hand the instance back to busy polling at
		 * its next poll (NAPI_STATE_PREFER_BUSY_POLL); if the instance
		 * is idle, it polls: up to two budgets, so only with room.
		 */
		s64 seen = atomic64_read(&q->rx_packets) +
			   atomic64_read(&q->rx_drops);

		if (seen == READ_ONCE(q->polled_to) ||
		    have + 2 * budget > READ_ONCE(hdev->ring_size))
			return;
		p.want = 1;
	} else {
		p.want -= have;
	}
	p.start = atomic64_read(&q->rx_packets);
	p.last = p.start;
	napi_busy_loop(id, hpio_rx_poll_end, &p, true, budget);
	WRITE_ONCE(q->polled_to, atomic64_read(&q->rx_packets) +
				 atomic64_read(&q->rx_drops));
#endif
}

/*
 * Deliver queued frames into @to, one per segment, at most one if @single.
 * A bound file reads its ring; an unbound one drains the ring of its CPU,
 * then the next ones in turn.  Blocks while every ring it reads is empty,
 * unless @nonblock or legacy_empty.
 * Returns the number of frames (bytes of the frame if @single) or an errno.
 */
static ssize_t hpio_recv(struct hpio_file *hf, struct iov_iter *to,
			 bool nonblock, bool single)
{
	struct hpio_dev *hdev = hf->hdev;
	size_t seg = iov_iter_single_seg_count(to);
	ssize_t copied = 0, frames = 0, ret;
	/* Frames to take at once: one per iovec (ITER_UBUF: nr_segs 0). */
	size_t want = single ? 1 : to->nr_segs;
	struct hpio_rx_batch b = {};
	unsigned int rings, left;
	wait_queue_head_t *wq;
	struct sk_buff *skb;
	u32 first, ring;

	if (seg < sizeof(struct hpio_hdr))
		return -EINVAL;
	rings = hpio_rx_rings(hf, &first);
	wq = rings == 1 ? &hdev->queues[first].wait : &hdev->wait;

	for (;;) {
		if (READ_ONCE(hdev->gone))
			return -ENODEV;
		hpio_rx_busy_poll(hdev, first, want);
		ring = first;
		left = rings;
		skb = hpio_rx_take(hdev, &ring, &left, &b, want);
		if (skb)
			break;
		if (READ_ONCE(hpio_legacy_empty))
			return 0;
		if (nonblock)
			return -EAGAIN;
		ret = wait_event_interruptible(*wq,
					       hpio_rx_any(hdev, first, rings) ||
					       READ_ONCE(hdev->gone));
		if (ret)
			return ret;
	}

	for (;;) {
		struct hpio_queue *q = &hdev->queues[ring];

		ret = hpio_rx_copy(q, skb, to, seg);
		consume_skb(skb);
		if (ret < 0) {
			/* The frame is lost: it left the ring. */
			atomic64_inc(&q->rx_errors);
			break;
		}
		copied += ret;
		frames++;
		if (single || !iov_iter_count(to))
			break;
		seg = iov_iter_single_seg_count(to);
		if (seg < sizeof(struct hpio_hdr))
			break;
		skb = hpio_rx_take(hdev, &ring, &left, &b, want - frames);
		if (!skb)
			break;
	}
	hpio_rx_untake(hdev, &b);

	if (!frames)
		return ret;
	return single ? copied : frames;
}

/* readv/preadv/aio/io_uring: one frame per iovec, returns frames. */
ssize_t hpio_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct file *file = iocb->ki_filp;
	bool nonblock = (file->f_flags & O_NONBLOCK) ||
			(iocb->ki_flags & IOCB_NOWAIT);

	return hpio_recv(file->private_data, to, nonblock, false);
}

/* read(): one frame, returns header + frame bytes copied. */
ssize_t hpio_read(struct file *file, char __user *buf, size_t count,
		  loff_t *pos)
{
	struct iov_iter to;

	if (!access_ok(buf, count))
		return -EFAULT;
	iov_iter_ubuf(&to, ITER_DEST, buf, count);
	return hpio_recv(file->private_data, &to,
			 file->f_flags & O_NONBLOCK, true);
}

/*
 * Requires a reader file.  Waits on, and reports, the rings a read would
 * take from: the bound one, or every ring for an unbound file (whatever
 * CPU the read then runs on).
 */
__poll_t hpio_rx_poll(struct hpio_file *hf, struct file *file,
		      poll_table *wait)
{
	struct hpio_dev *hdev = hf->hdev;
	unsigned int rings;
	u32 first;

	rings = hpio_rx_rings(hf, &first);
	poll_wait(file, rings == 1 ? &hdev->queues[first].wait : &hdev->wait,
		  wait);
	if (hpio_rx_any(hdev, first, rings))
		return EPOLLIN | EPOLLRDNORM;
	return 0;
}
