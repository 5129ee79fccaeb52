/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hpio: internal definitions shared by hpio_main.c, hpio_rx.c and hpio_tx.c.
 *
 * Objects and who keeps them alive:
 *
 *   struct hpio_dev   one per network device of init_net.  Created by the
 *                     NETDEV_REGISTER notifier, unlinked by NETDEV_UNREGISTER.
 *                     Refcounted (kref): the device list holds one reference
 *                     and every open file holds one, so a file may outlive
 *                     its network device (it then fails with ENODEV).
 *                     Freed after an RCU grace period because open() finds
 *                     it through an RCU lookup in hpio_minors.
 *   struct hpio_queue one per queue index of a hpio_dev: the receive ring,
 *                     the wait queue of its bound readers and its counters.
 *   struct hpio_file  one per open file: the device and the bound queue.
 *
 * Locking: RTNL guards the device list, hdev->netdev, the names and every
 * change of the reader count and of the rx_handler.  Receive rings are
 * ptr_rings: the rx_handler is the only producer (softirq, or a reader's
 * busy poll with BH disabled), readers (process context) consume under
 * the ring's consumer lock.
 *
 * Only Ethernet devices (ARPHRD_ETHER) of init_net get a hpio_dev: the
 * transmit path takes the first 14 bytes of every frame for an Ethernet
 * header.
 */
#ifndef _HPIO_H
#define _HPIO_H

#include <linux/atomic.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/netdevice.h>
#include <linux/poll.h>
#include <linux/ptr_ring.h>
#include <linux/uio.h>
#include <linux/version.h>
#include <linux/wait.h>

#include "include/uapi/hpio.h"

/*
 * Kernel compatibility.  The module builds warning-free at W=1 against
 * Debian 12's 6.1 and 6.12 kernels (docs/kmod.md, "Tested kernels"); every
 * kernel version check of the module is in this block.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
/* 6.5 moved __skb_gso_segment out of netdevice.h. */
#include <net/gso.h>
#endif

/* 6.2: a class's devnode callback takes a const struct device. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define HPIO_DEVNODE_CONST	const
#else
#define HPIO_DEVNODE_CONST
#endif

/* 6.4: class_create lost its owner argument. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define hpio_class_create(name)	class_create(name)
#else
#define hpio_class_create(name)	class_create(THIS_MODULE, name)
#endif

#define HPIO_NAME		"hpio"
/* Minor numbers: one per network device of init_net. */
#define HPIO_MINORS		(1U << 16)
/* Largest accepted value of the tx_batch parameter: UIO_MAXIOV. */
#define HPIO_TX_BATCH_MAX	1024U
/* Packets checked and allocated at a time (on-stack arrays). */
#define HPIO_TX_BUILD		64U
/* Bounds of the ring_size parameter. */
#define HPIO_RING_MIN		8
#define HPIO_RING_MAX		65536
/* Largest accepted value of the busy_poll parameter (a NAPI poll budget). */
#define HPIO_BUSY_POLL_MAX	64

/* Module parameters (hpio_main.c); read with READ_ONCE on the data path. */
extern unsigned int hpio_ring_size;
extern int hpio_tos_value;
extern unsigned int hpio_tx_batch;
extern bool hpio_legacy_empty;
extern unsigned int hpio_busy_poll;

struct hpio_queue {
	/* Frames (struct sk_buff *) waiting for a reader.  Storage exists
	 * while hdev->readers > 0; produced by hpio_rx_handler only.  Each
	 * holds a whole frame: the ring has no slot size. */
	struct ptr_ring ring;
	/* Readers bound to this queue sleeping in read/poll. */
	wait_queue_head_t wait;
	/* NAPI instance that last delivered a frame to this ring (0: none
	 * yet); readers busy-poll it.  WRITE_ONCE/READ_ONCE. */
	unsigned int napi_id;
	/* rx_packets + rx_drops as the last busy poll left them: frames
	 * beyond came from the NIC's softirq (see hpio_rx_busy_poll).
	 * WRITE_ONCE/READ_ONCE; a hint. */
	s64 polled_to;
	atomic64_t rx_packets;
	atomic64_t rx_drops;
	atomic64_t rx_errors;
	atomic64_t tx_packets;
	atomic64_t tx_errors;
	atomic64_t truncated;
} ____cacheline_aligned_in_smp;

struct hpio_dev {
	struct kref kref;
	struct rcu_head rcu;
	/* On hpio_devs; RTNL. */
	struct list_head list;
	/* The network device, holding a tracked reference; NULL once it was
	 * unregistered.  Written under RTNL, read under RCU or RTNL. */
	struct net_device __rcu *netdev;
	netdevice_tracker tracker;
	/* Current interface name; RTNL. */
	char ifname[IFNAMSIZ];
	/* Minor number, key of hpio_minors while the device is alive. */
	u32 minor;
	/* /dev/hpio/<ifname> and /sys/class/hpio/<ifname>; RTNL. */
	struct device *node;
	/* Open files with FMODE_READ; RTNL (READ_ONCE for sysfs). */
	unsigned int readers;
	/* Slots per ring while readers > 0, else 0; RTNL. */
	unsigned int ring_size;
	/* hpio_rx_handler is installed on netdev; RTNL. */
	bool rx_attached;
	/* The network device is gone: set under RTNL, read with READ_ONCE. */
	bool gone;
	/* Unbound readers sleeping in read/poll: they take frames from any
	 * ring, so every frame queued to any ring wakes them. */
	wait_queue_head_t wait;
	/* Number of queues, fixed for the life of the hpio_dev. */
	unsigned int nqueues;
	struct hpio_queue queues[];
};

struct hpio_file {
	/* Holds a reference. */
	struct hpio_dev *hdev;
	/* Bound queue or HPIO_QUEUE_CPU; WRITE_ONCE/READ_ONCE. */
	u32 queue;
	/* Counted in hdev->readers. */
	bool reader;
};

/*
 * Queue used by the current call on this file: the bound one, or that of
 * the CPU the caller runs on.  Transmit uses it; receive reads that ring
 * (bound), or every ring from that one on (unbound: hpio_rx.c).
 */
static inline struct hpio_queue *hpio_file_queue(const struct hpio_file *hf,
						 u32 *index)
{
	struct hpio_dev *hdev = hf->hdev;
	u32 q = READ_ONCE(hf->queue);

	if (q == HPIO_QUEUE_CPU)
		q = raw_smp_processor_id() % hdev->nqueues;
	if (index)
		*index = q;
	return &hdev->queues[q];
}

/* hpio_main.c */
void hpio_dev_put(struct hpio_dev *hdev);
struct net_device *hpio_netdev_get(struct hpio_dev *hdev,
				   netdevice_tracker *tracker);

/* hpio_rx.c */
int hpio_rx_open(struct hpio_dev *hdev);
void hpio_rx_close(struct hpio_dev *hdev);
void hpio_rx_gone(struct hpio_dev *hdev);
ssize_t hpio_read_iter(struct kiocb *iocb, struct iov_iter *to);
ssize_t hpio_read(struct file *file, char __user *buf, size_t count,
		  loff_t *pos);
__poll_t hpio_rx_poll(struct hpio_file *hf, struct file *file,
		      poll_table *wait);

/* hpio_tx.c */
ssize_t hpio_write_iter(struct kiocb *iocb, struct iov_iter *from);
ssize_t hpio_write(struct file *file, const char __user *buf, size_t count,
		   loff_t *pos);

#endif /* _HPIO_H */
