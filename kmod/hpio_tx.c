// SPDX-License-Identifier: GPL-2.0
/*
 * hpio: the transmit side.
 *
 * writev takes one struct hpio_hdr + frame per iovec.  In chunks of
 * HPIO_TX_BUILD, the headers are checked, the skbs allocated in one BH-off
 * section from the CPU's NAPI caches and the frames copied in (this may
 * sleep); each chunk is handed straight to the driver's ndo_start_xmit
 * under one TX lock once the next one is built, with the xmit_more hint
 * set on all but the last frame of each run of tx_batch frames, so that a
 * driver such as virtio-net notifies the device once per run.  The qdisc
 * layer is bypassed, as are packet taps on the device.
 */
#include <linux/etherdevice.h>
#include <linux/if_vlan.h>
#include <linux/netdevice.h>
#include <linux/skbuff.h>
#include <linux/uaccess.h>

#include "hpio.h"

/* hdrlen is the header size in bytes, or the original hpio's 4-byte words. */
static bool hpio_tx_hdrlen_ok(u8 hdrlen)
{
	return hdrlen == HPIO_HDR_LEN || hdrlen == HPIO_HDR_LEN_WORDS;
}

/*
 * Check the header of the packet in the current segment of @it and move
 * @it to the next segment.  Returns the frame length, or -EINVAL for a
 * short segment, bad version, header length or frame length, -EFAULT for
 * a bad user buffer.
 *
 * Length limit: what the stack itself sends on (packet_snd) and forwards
 * to (is_skb_forwardable) a device: MTU + link header, plus 4 bytes when
 * the frame carries one VLAN tag (hpio_tx_fill checks the tag).  Only
 * Ethernet devices have nodes, so the link header is 14 bytes and a tag
 * follows the MAC addresses.
 */
static int hpio_tx_check(struct net_device *dev, struct iov_iter *it)
{
	size_t seg = iov_iter_single_seg_count(it);
	unsigned int max = READ_ONCE(dev->mtu) + dev->hard_header_len;
	struct hpio_hdr hdr;
	unsigned int len;

	if (seg < sizeof(hdr))
		return -EINVAL;
	if (!copy_from_iter_full(&hdr, sizeof(hdr), it))
		return -EFAULT;
	len = hdr.pktlen;
	if (hdr.version != HPIO_HDR_VERSION || !hpio_tx_hdrlen_ok(hdr.hdrlen) ||
	    len < HPIO_MIN_PKTLEN || len > seg - sizeof(hdr) ||
	    len > max + VLAN_HLEN)
		return -EINVAL;
	iov_iter_advance(it, seg - sizeof(hdr));
	return len;
}

/*
 * An skb with room for a @len-byte frame.  With BH disabled (@atomic) the
 * data comes from the CPU's page fragment cache and the skb from its NAPI
 * cache (bulk-allocated, refilled by the drivers' TX completions), as on
 * the receive path; else from the slab.  NULL when out of memory.
 */
static struct sk_buff *hpio_tx_alloc(struct net_device *dev, unsigned int len,
				     bool atomic)
{
	unsigned int reserve = LL_RESERVED_SPACE(dev);
	unsigned int size = reserve + len + dev->needed_tailroom;
	unsigned int truesize;
	struct sk_buff *skb;
	void *data;

	truesize = SKB_DATA_ALIGN(size) +
		   SKB_DATA_ALIGN(sizeof(struct skb_shared_info));
	if (!atomic) {
		skb = alloc_skb(size, GFP_KERNEL);
	} else {
		if (truesize > PAGE_SIZE)
			return NULL;
		data = napi_alloc_frag(truesize);
		if (!data)
			return NULL;
		skb = napi_build_skb(data, truesize);
		if (!skb) {
			skb_free_frag(data);
			return NULL;
		}
	}
	if (skb)
		skb_reserve(skb, reserve);
	return skb;
}

/*
 * Copy the frame of the current segment of @from (its header was checked:
 * @len bytes) into @skb and move @from to the next segment.  Returns 0,
 * -EFAULT for a bad user buffer or -EINVAL for a frame longer than MTU +
 * link header without a VLAN tag.
 */
static int hpio_tx_fill(struct net_device *dev, struct sk_buff *skb,
			unsigned int len, struct iov_iter *from)
{
	size_t seg = iov_iter_single_seg_count(from);
	unsigned int max = READ_ONCE(dev->mtu) + dev->hard_header_len;

	iov_iter_advance(from, sizeof(struct hpio_hdr));
	if (!copy_from_iter_full(skb_put(skb, len), len, from))
		return -EFAULT;
	skb_reset_mac_header(skb);
	/* Room for a VLAN tag only when the frame carries one. */
	if (len > max && !eth_type_vlan(eth_hdr(skb)->h_proto))
		return -EINVAL;
	iov_iter_advance(from, seg - sizeof(struct hpio_hdr) - len);

	skb->dev = dev;
	skb->protocol = dev_parse_header_protocol(skb);
	if (!skb->protocol)
		skb->protocol = eth_hdr(skb)->h_proto;
	skb_set_network_header(skb, min(len, (unsigned int)dev->hard_header_len));
	return 0;
}

/*
 * Build skbs for the next packets of @from, at most @budget: check every
 * header, allocate every skb under one BH-off section, then copy the
 * frames in (this may sleep).  Returns how many were built into @batch;
 * on a bad packet or no memory, *@err is set and the packets before it
 * are built.
 */
static unsigned int hpio_tx_build(struct net_device *dev,
				  struct iov_iter *from, struct sk_buff **batch,
				  u16 *lens, unsigned int budget, int *err)
{
	struct iov_iter it = *from;
	unsigned int i, n = 0;
	int len;

	while (n < budget && iov_iter_count(&it)) {
		len = hpio_tx_check(dev, &it);
		if (len < 0) {
			*err = len;
			break;
		}
		lens[n++] = len;
	}

	local_bh_disable();
	for (i = 0; i < n; i++) {
		batch[i] = hpio_tx_alloc(dev, lens[i], true);
		if (!batch[i])
			break;
	}
	local_bh_enable();
	for (; i < n; i++) {
		batch[i] = hpio_tx_alloc(dev, lens[i], false);
		if (!batch[i]) {
			*err = -ENOMEM;
			n = i;
		}
	}

	for (i = 0; i < n; i++) {
		int ret = hpio_tx_fill(dev, batch[i], lens[i], from);

		if (ret) {
			*err = ret;
			while (i < n)
				kfree_skb(batch[--n]);
		}
	}
	return n;
}

/*
 * Is TX queue @qidx % real_num_tx_queues of @dev stopped?  Only a hint,
 * read without the TX lock: the index stays below num_tx_queues, for
 * which the queue array was allocated, whatever ethtool -L does meanwhile.
 */
static bool hpio_tx_stopped(struct net_device *dev, u32 qidx)
{
	u16 txq_index = qidx % READ_ONCE(dev->real_num_tx_queues);
	struct netdev_queue *txq = netdev_get_tx_queue(dev, txq_index);

	return netif_xmit_frozen_or_drv_stopped(txq);
}

/*
 * Hand the skbs of @list to the driver on TX queue @qidx %
 * real_num_tx_queues, unlinking each one the driver takes.  The xmit_more
 * hint is set on all but the last frame of each run of @budget frames
 * (*@run counts the frames of the current run), and on the last one of
 * @list too when @more_after (the caller has more frames for this run).
 * Stops early when the device is down, the queue is stopped or the driver
 * is busy; the skbs left on @list stay ours.
 * Returns the number the driver took; *@refused counts those of them it
 * dropped with an error.
 */
static unsigned int hpio_tx_xmit(struct net_device *dev, u32 qidx,
				 struct sk_buff_head *list, bool more_after,
				 unsigned int budget, unsigned int *run,
				 unsigned int *refused)
{
	struct netdev_queue *txq;
	struct sk_buff *skb;
	unsigned int i = 0;
	u16 txq_index;
	bool more;
	int rc;

	/* BH off is an RCU read-side section: once netif_running() was seen
	 * true here, dev_close() waits for us before calling ndo_stop. */
	local_bh_disable();
	if (unlikely(!netif_running(dev))) {
		local_bh_enable();
		return 0;
	}
	/* Cap the queue here, as netdev_cap_txqueue does for the stack: a
	 * driver shrinking its queues (ethtool -L) lowers real_num_tx_queues
	 * and then waits (synchronize_net) for sections like this one before
	 * it tears the queues above down. */
	txq_index = qidx % READ_ONCE(dev->real_num_tx_queues);
	skb_queue_walk(list, skb)
		skb_set_queue_mapping(skb, txq_index);
	txq = netdev_get_tx_queue(dev, txq_index);
	HARD_TX_LOCK(dev, txq, smp_processor_id());
	while ((skb = skb_peek(list))) {
		if (netif_xmit_frozen_or_drv_stopped(txq))
			break;
		__skb_unlink(skb, list);
		more = (!skb_queue_empty(list) || more_after) && ++*run < budget;
		if (!more)
			*run = 0;
		rc = netdev_start_xmit(skb, dev, txq, more);
		if (!dev_xmit_complete(rc)) {
			/* NETDEV_TX_BUSY: the skb was not consumed. */
			__skb_queue_head(list, skb);
			break;
		}
		i++;
		if (rc != NETDEV_TX_OK)
			(*refused)++;
	}
	HARD_TX_UNLOCK(dev, txq);
	local_bh_enable();
	return i;
}

/*
 * Transmit the packets of @from (at most one if @single).  Returns the
 * number of frames the driver took (the header + frame bytes if @single),
 * or an errno when none was taken: the error of the first bad packet,
 * -ENOBUFS when the TX queue is full, -ENETDOWN, -ENODEV.
 *
 * Chunks of HPIO_TX_BUILD are built one ahead of the one handed to the
 * driver, so that the hint of a chunk's last frame can say whether more
 * follow: virtio-net then notifies the device once per tx_batch frames
 * (once per writev of up to 256).  Nothing is built while the queue is
 * stopped: those skbs would only be freed again, and a caller that waits
 * for room retries often.
 */
static ssize_t hpio_send(struct hpio_file *hf, struct iov_iter *from,
			 bool single)
{
	struct sk_buff *chunk[HPIO_TX_BUILD];
	u16 lens[HPIO_TX_BUILD];
	struct hpio_dev *hdev = hf->hdev;
	unsigned int budget, n, i, run = 0, errors = 0, refused = 0;
	ssize_t sent = 0, bytes = 0;
	struct sk_buff_head ready;
	netdevice_tracker tracker;
	struct net_device *dev;
	struct hpio_queue *q;
	bool full = false;
	int err = 0;
	u32 qidx;

	dev = hpio_netdev_get(hdev, &tracker);
	if (!dev)
		return -ENODEV;
	if (!netif_running(dev) || !netif_device_present(dev)) {
		err = -ENETDOWN;
		goto out;
	}
	q = hpio_file_queue(hf, &qidx);
	budget = single ? 1 : clamp(READ_ONCE(hpio_tx_batch), 1U, HPIO_TX_BATCH_MAX);

	__skb_queue_head_init(&ready);
	for (;;) {
		n = 0;
		if (!err && iov_iter_count(from) &&
		    !(single && (sent || !skb_queue_empty(&ready)))) {
			if (hpio_tx_stopped(dev, qidx))
				full = true;
			else
				n = hpio_tx_build(dev, from, chunk, lens,
						  single ? 1 : HPIO_TX_BUILD, &err);
			if (err)
				errors++;
		}
		if (skb_queue_empty(&ready)) {
			if (!n)
				break;
			bytes = sizeof(struct hpio_hdr) + chunk[0]->len;
		} else {
			sent += hpio_tx_xmit(dev, qidx, &ready, n > 0, budget,
					     &run, &refused);
			if (!skb_queue_empty(&ready)) {
				/* Queue full: the rest is not sent, the
				 * caller retries it (a later bad packet is
				 * not reported). */
				__skb_queue_purge(&ready);
				while (n)
					kfree_skb(chunk[--n]);
				full = true;
				break;
			}
		}
		for (i = 0; i < n; i++)
			__skb_queue_tail(&ready, chunk[i]);
	}

	if (!sent && full)
		err = netif_running(dev) ? -ENOBUFS : -ENETDOWN;
	atomic64_add(sent - refused, &q->tx_packets);
	if (errors + refused)
		atomic64_add(errors + refused, &q->tx_errors);
out:
	netdev_put(dev, &tracker);
	if (!sent)
		return err;
	return single ? bytes : sent;
}

/* writev/aio/io_uring: one packet per iovec, returns frames sent. */
ssize_t hpio_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	return hpio_send(iocb->ki_filp->private_data, from, false);
}

/* write(): one packet, returns header + frame bytes. */
ssize_t hpio_write(struct file *file, const char __user *buf, size_t count,
		   loff_t *pos)
{
	struct iov_iter from;

	if (!access_ok(buf, count))
		return -EFAULT;
	iov_iter_ubuf(&from, ITER_SOURCE, (void __user *)buf, count);
	return hpio_send(file->private_data, &from, true);
}
