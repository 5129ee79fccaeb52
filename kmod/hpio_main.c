// SPDX-License-Identifier: GPL-2.0
/*
 * hpio: packet I/O for user space through /dev/hpio/<ifname>.
 *
 * This file: module parameters, the character devices (one per Ethernet
 * device of the initial namespace, kept in step by a netdevice notifier),
 * open/release/poll/ioctl and the sysfs counters.  Receiving is in
 * hpio_rx.c, transmitting in hpio_tx.c.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cdev.h>
#include <linux/if_arp.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>
#include <net/net_namespace.h>

#include "hpio.h"

/* ---- module parameters ---- */

unsigned int hpio_ring_size = 1024;
int hpio_tos_value = -1;
unsigned int hpio_tx_batch = 256;
bool hpio_legacy_empty;
unsigned int hpio_busy_poll = HPIO_BUSY_POLL_MAX;

static int hpio_param_set_ring_size(const char *val,
				    const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, HPIO_RING_MIN, HPIO_RING_MAX);
}

static const struct kernel_param_ops hpio_ring_size_ops = {
	.set = hpio_param_set_ring_size,
	.get = param_get_uint,
};

static int hpio_param_set_tx_batch(const char *val,
				   const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 1, HPIO_TX_BATCH_MAX);
}

static const struct kernel_param_ops hpio_tx_batch_ops = {
	.set = hpio_param_set_tx_batch,
	.get = param_get_uint,
};

static int hpio_param_set_busy_poll(const char *val,
				    const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 0, HPIO_BUSY_POLL_MAX);
}

static const struct kernel_param_ops hpio_busy_poll_ops = {
	.set = hpio_param_set_busy_poll,
	.get = param_get_uint,
};

static int hpio_param_set_tos(const char *val, const struct kernel_param *kp)
{
	int tos, err;

	err = kstrtoint(val, 0, &tos);
	if (err)
		return err;
	if (tos < -1 || tos > 255)
		return -EINVAL;
	WRITE_ONCE(*(int *)kp->arg, tos);
	return 0;
}

static const struct kernel_param_ops hpio_tos_ops = {
	.set = hpio_param_set_tos,
	.get = param_get_int,
};

module_param_cb(ring_size, &hpio_ring_size_ops, &hpio_ring_size, 0644);
MODULE_PARM_DESC(ring_size,
		 "Slots per receive ring, 8..65536; applies when the first reader of a device opens (default 1024)");
module_param_cb(tos_value, &hpio_tos_ops, &hpio_tos_value, 0644);
MODULE_PARM_DESC(tos_value,
		 "Steal only IPv4/IPv6 frames with this ToS/traffic class byte and leave the rest to the stack; -1 steals every frame (default -1)");
module_param_cb(tx_batch, &hpio_tx_batch_ops, &hpio_tx_batch, 0644);
MODULE_PARM_DESC(tx_batch,
		 "Frames handed to the driver per TX lock with the xmit_more hint, 1..1024 (default 256)");
module_param_named(legacy_empty, hpio_legacy_empty, bool, 0644);
MODULE_PARM_DESC(legacy_empty,
		 "Reads of an empty ring return 0 at once instead of blocking or EAGAIN (default N)");
module_param_cb(busy_poll, &hpio_busy_poll_ops, &hpio_busy_poll, 0644);
MODULE_PARM_DESC(busy_poll,
		 "NAPI budget a read polls the ring's receive queue with before it takes frames, 0..64; 0 turns busy polling off (default 64)");

/* ---- devices ---- */

/* All hpio_devs, one per registered Ethernet device of init_net; RTNL. */
static LIST_HEAD(hpio_devs);
/* minor -> hpio_dev for open(); entries live while the device does.
 * Lookups run under RCU, updates under RTNL (plus the xarray's lock). */
static DEFINE_XARRAY_ALLOC(hpio_minors);

static dev_t hpio_devt;
static struct cdev hpio_cdev;
static struct class *hpio_class;

static void hpio_dev_free(struct kref *kref)
{
	struct hpio_dev *hdev = container_of(kref, struct hpio_dev, kref);

	/* Readers are gone, so are the rings; the netdev was released by
	 * hpio_dev_remove. */
	WARN_ON_ONCE(hdev->readers || rcu_access_pointer(hdev->netdev));
	kvfree_rcu(hdev, rcu);
}

void hpio_dev_put(struct hpio_dev *hdev)
{
	kref_put(&hdev->kref, hpio_dev_free);
}

/*
 * Take a temporary reference on the network device of @hdev, or return
 * NULL once the device is gone.  Release with netdev_put(dev, tracker).
 */
struct net_device *hpio_netdev_get(struct hpio_dev *hdev,
				   netdevice_tracker *tracker)
{
	struct net_device *dev;

	rcu_read_lock();
	dev = rcu_dereference(hdev->netdev);
	netdev_hold(dev, tracker, GFP_ATOMIC);
	rcu_read_unlock();
	return dev;
}

#define HPIO_STAT_FIELDS(X)	\
	X(rx_packets)		\
	X(rx_drops)		\
	X(rx_errors)		\
	X(tx_packets)		\
	X(tx_errors)		\
	X(truncated)

static void hpio_queue_stats(const struct hpio_queue *q, struct hpio_stats *s)
{
#define X(name) s->name += atomic64_read(&q->name);
	HPIO_STAT_FIELDS(X)
#undef X
}

static void hpio_dev_stats(const struct hpio_dev *hdev, struct hpio_stats *s)
{
	unsigned int i;

	for (i = 0; i < hdev->nqueues; i++)
		hpio_queue_stats(&hdev->queues[i], s);
}

/* ---- sysfs: /sys/class/hpio/<ifname>/ ---- */

#define X(name)								\
static ssize_t name##_show(struct device *d,				\
			   struct device_attribute *attr, char *buf)	\
{									\
	struct hpio_stats s = {};					\
									\
	hpio_dev_stats(dev_get_drvdata(d), &s);				\
	return sysfs_emit(buf, "%llu\n", s.name);			\
}									\
static DEVICE_ATTR_RO(name);
HPIO_STAT_FIELDS(X)
#undef X

static ssize_t queues_show(struct device *d, struct device_attribute *attr,
			   char *buf)
{
	struct hpio_dev *hdev = dev_get_drvdata(d);

	return sysfs_emit(buf, "%u\n", hdev->nqueues);
}
static DEVICE_ATTR_RO(queues);

static ssize_t readers_show(struct device *d, struct device_attribute *attr,
			    char *buf)
{
	struct hpio_dev *hdev = dev_get_drvdata(d);

	return sysfs_emit(buf, "%u\n", READ_ONCE(hdev->readers));
}
static DEVICE_ATTR_RO(readers);

static ssize_t ring_size_show(struct device *d, struct device_attribute *attr,
			      char *buf)
{
	struct hpio_dev *hdev = dev_get_drvdata(d);

	return sysfs_emit(buf, "%u\n", READ_ONCE(hdev->ring_size));
}
static DEVICE_ATTR_RO(ring_size);

/* One line per queue with a non-zero counter:
 * "<queue> rx_packets rx_drops rx_errors tx_packets tx_errors truncated". */
static ssize_t queue_stats_show(struct device *d,
				struct device_attribute *attr, char *buf)
{
	struct hpio_dev *hdev = dev_get_drvdata(d);
	unsigned int i;
	int len = 0;

	for (i = 0; i < hdev->nqueues; i++) {
		struct hpio_stats s = {};

		hpio_queue_stats(&hdev->queues[i], &s);
		if (!(s.rx_packets | s.rx_drops | s.rx_errors | s.tx_packets |
		      s.tx_errors | s.truncated))
			continue;
		len += sysfs_emit_at(buf, len, "%u %llu %llu %llu %llu %llu %llu\n",
				     i, s.rx_packets, s.rx_drops, s.rx_errors,
				     s.tx_packets, s.tx_errors, s.truncated);
	}
	return len;
}
static DEVICE_ATTR_RO(queue_stats);

static struct attribute *hpio_attrs[] = {
	&dev_attr_rx_packets.attr,
	&dev_attr_rx_drops.attr,
	&dev_attr_rx_errors.attr,
	&dev_attr_tx_packets.attr,
	&dev_attr_tx_errors.attr,
	&dev_attr_truncated.attr,
	&dev_attr_queues.attr,
	&dev_attr_readers.attr,
	&dev_attr_ring_size.attr,
	&dev_attr_queue_stats.attr,
	NULL,
};
ATTRIBUTE_GROUPS(hpio);

static char *hpio_devnode(HPIO_DEVNODE_CONST struct device *d, umode_t *mode)
{
	return kasprintf(GFP_KERNEL, HPIO_NAME "/%s", dev_name(d));
}

/* Requires RTNL.  Create /dev/hpio/<ifname> and its sysfs directory. */
static void hpio_node_add(struct hpio_dev *hdev)
{
	struct device *node;

	ASSERT_RTNL();
	node = device_create_with_groups(hpio_class, NULL,
					 MKDEV(MAJOR(hpio_devt), hdev->minor),
					 hdev, hpio_groups, "%s", hdev->ifname);
	if (IS_ERR(node)) {
		pr_warn("%s: cannot create device node: %ld\n", hdev->ifname,
			PTR_ERR(node));
		node = NULL;
	}
	hdev->node = node;
}

/* Requires RTNL.  Remove the node; open files are not affected. */
static void hpio_node_del(struct hpio_dev *hdev)
{
	ASSERT_RTNL();
	if (hdev->node)
		device_unregister(hdev->node);
	hdev->node = NULL;
}

/*
 * Devices served: Ethernet ones of the initial namespace.  Transmit takes
 * the first 14 bytes of a frame for an Ethernet header; a tun, wireguard,
 * ipip... device (no link header, or another one) gets no node.
 */
static bool hpio_dev_wanted(const struct net_device *dev)
{
	return net_eq(dev_net(dev), &init_net) && dev->type == ARPHRD_ETHER;
}

/* Requires RTNL.  A served device appeared (or became one). */
static void hpio_dev_add(struct net_device *dev)
{
	struct hpio_dev *hdev;
	unsigned int nq, i;
	int err;

	ASSERT_RTNL();
	nq = max3(nr_cpu_ids, dev->num_rx_queues, dev->num_tx_queues);
	hdev = kvzalloc(struct_size(hdev, queues, nq), GFP_KERNEL);
	if (!hdev)
		goto err;
	kref_init(&hdev->kref);
	hdev->nqueues = nq;
	init_waitqueue_head(&hdev->wait);
	for (i = 0; i < nq; i++)
		init_waitqueue_head(&hdev->queues[i].wait);
	strscpy(hdev->ifname, dev->name, sizeof(hdev->ifname));

	/* Reserve a minor: lookups see no entry until it is stored below. */
	err = xa_alloc(&hpio_minors, &hdev->minor, NULL,
		       XA_LIMIT(0, HPIO_MINORS - 1), GFP_KERNEL);
	if (err)
		goto err_free;

	netdev_hold(dev, &hdev->tracker, GFP_KERNEL);
	rcu_assign_pointer(hdev->netdev, dev);

	/* Publish the fully initialised device: from here on, open() of the
	 * minor finds it (xa_store orders the stores above before it). */
	err = xa_err(xa_store(&hpio_minors, hdev->minor, hdev, GFP_KERNEL));
	if (err)
		goto err_unhold;
	list_add_tail(&hdev->list, &hpio_devs);
	hpio_node_add(hdev);
	return;

err_unhold:
	RCU_INIT_POINTER(hdev->netdev, NULL);
	netdev_put(dev, &hdev->tracker);
	xa_erase(&hpio_minors, hdev->minor);
err_free:
	kvfree(hdev);
err:
	/* Never fail the registration of the network device itself. */
	pr_warn("%s: no hpio device (out of memory or minors)\n", dev->name);
}

/* Requires RTNL.  The hpio_dev of @dev, or NULL. */
static struct hpio_dev *hpio_dev_find(const struct net_device *dev)
{
	struct hpio_dev *hdev;

	ASSERT_RTNL();
	list_for_each_entry(hdev, &hpio_devs, list)
		if (rtnl_dereference(hdev->netdev) == dev)
			return hdev;
	return NULL;
}

/*
 * Requires RTNL.  NETDEV_UNREGISTER (device deleted or moved to another
 * namespace) or module unload: unlink the hpio_dev, stop stealing frames,
 * wake readers (they get ENODEV) and drop the device reference so that
 * unregistration does not wait for files that are still open.
 */
static void hpio_dev_remove(struct hpio_dev *hdev)
{
	struct net_device *dev = rtnl_dereference(hdev->netdev);

	ASSERT_RTNL();
	xa_erase(&hpio_minors, hdev->minor);
	hpio_node_del(hdev);
	list_del(&hdev->list);
	hpio_rx_gone(hdev);
	RCU_INIT_POINTER(hdev->netdev, NULL);
	netdev_put(dev, &hdev->tracker);
	hpio_dev_put(hdev);
}

/* Requires RTNL.  NETDEV_CHANGENAME: the node follows the new name. */
static void hpio_dev_rename(struct hpio_dev *hdev, const struct net_device *dev)
{
	ASSERT_RTNL();
	if (!strcmp(hdev->ifname, dev->name))
		return;
	hpio_node_del(hdev);
	strscpy(hdev->ifname, dev->name, sizeof(hdev->ifname));
	hpio_node_add(hdev);
}

static int hpio_netdev_event(struct notifier_block *nb, unsigned long event,
			     void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct hpio_dev *hdev;

	switch (event) {
	case NETDEV_REGISTER:
		if (hpio_dev_wanted(dev))
			hpio_dev_add(dev);
		break;
	case NETDEV_UNREGISTER:
		hdev = hpio_dev_find(dev);
		if (hdev)
			hpio_dev_remove(hdev);
		break;
	case NETDEV_POST_TYPE_CHANGE:
		/* A bond or team takes the type of its first port: an
		 * Ethernet device may stop being one, or become one. */
		hdev = hpio_dev_find(dev);
		if (hdev && !hpio_dev_wanted(dev))
			hpio_dev_remove(hdev);
		else if (!hdev && hpio_dev_wanted(dev))
			hpio_dev_add(dev);
		break;
	case NETDEV_CHANGENAME:
		hdev = hpio_dev_find(dev);
		if (hdev)
			hpio_dev_rename(hdev, dev);
		break;
	}
	return NOTIFY_DONE;
}

static struct notifier_block hpio_notifier = {
	.notifier_call = hpio_netdev_event,
};

/* ---- file operations ---- */

static struct hpio_dev *hpio_dev_lookup(unsigned int minor)
{
	struct hpio_dev *hdev;

	rcu_read_lock();
	hdev = xa_load(&hpio_minors, minor);
	if (hdev && !kref_get_unless_zero(&hdev->kref))
		hdev = NULL;
	rcu_read_unlock();
	return hdev;
}

/*
 * May the caller send and receive raw frames on @hdev's device?  As for an
 * AF_PACKET socket: CAP_NET_RAW over the user namespace that owns the
 * device's network namespace, whatever the node's file mode says.  Root
 * of a user namespace that does not own that network namespace (every
 * device served lives in init_net) has no such capability.
 */
static int hpio_open_allowed(struct hpio_dev *hdev)
{
	netdevice_tracker tracker;
	struct net_device *dev;
	int err = 0;

	dev = hpio_netdev_get(hdev, &tracker);
	if (!dev)
		return -ENODEV;
	if (!ns_capable(dev_net(dev)->user_ns, CAP_NET_RAW))
		err = -EPERM;
	netdev_put(dev, &tracker);
	return err;
}

static int hpio_open(struct inode *inode, struct file *file)
{
	struct hpio_dev *hdev;
	struct hpio_file *hf;
	int err;

	hdev = hpio_dev_lookup(iminor(inode));
	if (!hdev)
		return -ENODEV;

	err = hpio_open_allowed(hdev);
	if (err)
		goto err_put;

	err = -ENOMEM;
	hf = kzalloc(sizeof(*hf), GFP_KERNEL);
	if (!hf)
		goto err_put;
	hf->hdev = hdev;
	hf->queue = HPIO_QUEUE_CPU;

	/* Frames are stolen only while someone reads: writers alone leave
	 * the device's receive path untouched. */
	if (file->f_mode & FMODE_READ) {
		rtnl_lock();
		err = hpio_rx_open(hdev);
		rtnl_unlock();
		if (err)
			goto err_free;
		hf->reader = true;
	}

	file->private_data = hf;
	return stream_open(inode, file);

err_free:
	kfree(hf);
err_put:
	hpio_dev_put(hdev);
	return err;
}

static int hpio_release(struct inode *inode, struct file *file)
{
	struct hpio_file *hf = file->private_data;
	struct hpio_dev *hdev = hf->hdev;

	if (hf->reader) {
		rtnl_lock();
		hpio_rx_close(hdev);
		rtnl_unlock();
	}
	kfree(hf);
	hpio_dev_put(hdev);
	return 0;
}

static __poll_t hpio_poll(struct file *file, poll_table *wait)
{
	struct hpio_file *hf = file->private_data;
	__poll_t mask = 0;

	if (hf->reader)
		mask |= hpio_rx_poll(hf, file, wait);
	if (file->f_mode & FMODE_WRITE)
		mask |= EPOLLOUT | EPOLLWRNORM;
	if (READ_ONCE(hf->hdev->gone))
		mask = EPOLLERR | EPOLLHUP;
	return mask;
}

static long hpio_ioctl_info(struct hpio_file *hf, void __user *argp)
{
	struct hpio_dev *hdev = hf->hdev;
	struct hpio_info info = {
		.abi_version = HPIO_ABI_VERSION,
		.hdr_version = HPIO_HDR_VERSION,
		.hdrlen = sizeof(struct hpio_hdr),
		.nqueues = hdev->nqueues,
		.queue = READ_ONCE(hf->queue),
	};
	struct net_device *dev;

	rtnl_lock();
	dev = rtnl_dereference(hdev->netdev);
	if (dev) {
		info.ifindex = dev->ifindex;
		info.mtu = dev->mtu;
		if (netif_running(dev))
			info.flags |= HPIO_INFO_UP;
	} else {
		info.flags |= HPIO_INFO_GONE;
	}
	if (hdev->rx_attached)
		info.flags |= HPIO_INFO_ATTACHED;
	if (hf->reader)
		info.flags |= HPIO_INFO_READER;
	info.ring_size = hdev->ring_size;
	strscpy(info.ifname, hdev->ifname, sizeof(info.ifname));
	rtnl_unlock();

	return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
}

static long hpio_ioctl_bind(struct hpio_file *hf, u32 __user *argp)
{
	u32 queue;

	if (get_user(queue, argp))
		return -EFAULT;
	if (queue != HPIO_QUEUE_CPU && queue >= hf->hdev->nqueues)
		return -EINVAL;
	if (READ_ONCE(hf->hdev->gone))
		return -ENODEV;
	WRITE_ONCE(hf->queue, queue);
	return 0;
}

static long hpio_ioctl_stats(struct hpio_file *hf, void __user *argp)
{
	struct hpio_dev *hdev = hf->hdev;
	struct hpio_stats_req req;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.reserved)
		return -EINVAL;
	memset(&req.stats, 0, sizeof(req.stats));
	if (req.queue == HPIO_QUEUE_ALL)
		hpio_dev_stats(hdev, &req.stats);
	else if (req.queue < hdev->nqueues)
		hpio_queue_stats(&hdev->queues[req.queue], &req.stats);
	else
		return -EINVAL;
	return copy_to_user(argp, &req, sizeof(req)) ? -EFAULT : 0;
}

static long hpio_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct hpio_file *hf = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case HPIO_IOC_GET_INFO:
		return hpio_ioctl_info(hf, argp);
	case HPIO_IOC_BIND_QUEUE:
		return hpio_ioctl_bind(hf, argp);
	case HPIO_IOC_GET_STATS:
		return hpio_ioctl_stats(hf, argp);
	}
	return -ENOTTY;
}

static const struct file_operations hpio_fops = {
	.owner		= THIS_MODULE,
	.open		= hpio_open,
	.release	= hpio_release,
	.read		= hpio_read,
	.read_iter	= hpio_read_iter,
	.write		= hpio_write,
	.write_iter	= hpio_write_iter,
	.poll		= hpio_poll,
	.unlocked_ioctl	= hpio_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

/* ---- module ---- */

static int __init hpio_init(void)
{
	int err;

	BUILD_BUG_ON(sizeof(struct hpio_hdr) != HPIO_HDR_LEN);
	BUILD_BUG_ON(sizeof(struct hpio_info) != 80);
	BUILD_BUG_ON(sizeof(struct hpio_stats_req) != 72);

	err = alloc_chrdev_region(&hpio_devt, 0, HPIO_MINORS, HPIO_NAME);
	if (err)
		return err;

	hpio_class = hpio_class_create(HPIO_NAME);
	if (IS_ERR(hpio_class)) {
		err = PTR_ERR(hpio_class);
		goto err_region;
	}
	hpio_class->devnode = hpio_devnode;

	cdev_init(&hpio_cdev, &hpio_fops);
	hpio_cdev.owner = THIS_MODULE;
	err = cdev_add(&hpio_cdev, hpio_devt, HPIO_MINORS);
	if (err)
		goto err_class;

	/* Replays NETDEV_REGISTER for the devices that exist already. */
	err = register_netdevice_notifier(&hpio_notifier);
	if (err)
		goto err_cdev;

	pr_info("loaded: ABI %u, header version %u\n", HPIO_ABI_VERSION,
		HPIO_HDR_VERSION);
	return 0;

err_cdev:
	cdev_del(&hpio_cdev);
err_class:
	class_destroy(hpio_class);
err_region:
	unregister_chrdev_region(hpio_devt, HPIO_MINORS);
	return err;
}

static void __exit hpio_exit(void)
{
	/* Replays NETDEV_UNREGISTER: every hpio_dev is removed.  No file is
	 * open (each holds a module reference), so each one is freed. */
	unregister_netdevice_notifier(&hpio_notifier);
	WARN_ON_ONCE(!list_empty(&hpio_devs) || !xa_empty(&hpio_minors));
	cdev_del(&hpio_cdev);
	class_destroy(hpio_class);
	unregister_chrdev_region(hpio_devt, HPIO_MINORS);
}

module_init(hpio_init);
module_exit(hpio_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("hpio: packet I/O with readv/writev on /dev/hpio/<ifname>");
MODULE_VERSION("2.0");
