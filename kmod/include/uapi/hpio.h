/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * hpio: packet I/O on /dev/hpio/<ifname> with readv/writev.
 *
 * User-space ABI shared by the kernel module, C programs and the Rust
 * driver.  Every packet in a read or write buffer is a struct hpio_hdr
 * followed by the link-layer frame (Ethernet header included).  See
 * docs/kmod.md for the full semantics.
 */
#ifndef _UAPI_HPIO_H
#define _UAPI_HPIO_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* Value of hpio_hdr.version understood by this ABI. */
#define HPIO_HDR_VERSION	2

/* Version of this header (ioctls and structs); bumped on any change. */
#define HPIO_ABI_VERSION	1

/* Smallest frame accepted for transmission: one Ethernet header. */
#define HPIO_MIN_PKTLEN		14

/*
 * Per-packet header, packed, 12 bytes, host byte order.
 *
 * Receive: version = HPIO_HDR_VERSION, hdrlen = 12, pktlen = full length
 * of the frame as received (even when the copy was truncated to fit the
 * buffer), tstamp = receive time in ns since the epoch (CLOCK_REALTIME);
 * the NIC's hardware time stamp when the driver supplies one.
 *
 * Transmit: version must be as above; hdrlen is 12, or 3 (the original
 * hpio's encoding: the header length in 4-byte words).  pktlen is the
 * number of frame bytes that follow the header: 14 to MTU + 14, or
 * MTU + 18 when the frame's EtherType is 802.1Q or 802.1ad (one tag);
 * tstamp is ignored.
 */
struct hpio_hdr {
	__u8	version;	/* HPIO_HDR_VERSION */
	__u8	hdrlen;		/* sizeof(struct hpio_hdr) == 12 */
	__u16	pktlen;		/* frame length in bytes */
	__u64	tstamp;		/* receive time, ns */
} __attribute__((packed));

#define HPIO_HDR_LEN		12
/* hdrlen of the original hpio (12 bytes in 4-byte words), accepted on
 * transmit; received headers always carry HPIO_HDR_LEN. */
#define HPIO_HDR_LEN_WORDS	3

/*
 * Queue selectors.  HPIO_QUEUE_CPU in HPIO_IOC_BIND_QUEUE unbinds the file:
 * each call then uses the queue of the CPU it runs on (classic hpio).
 * HPIO_QUEUE_ALL in HPIO_IOC_GET_STATS asks for the device totals.
 */
#define HPIO_QUEUE_CPU		0xffffffffU
#define HPIO_QUEUE_ALL		0xffffffffU

/* Counters of one queue, or of the whole device (sum over its queues). */
struct hpio_stats {
	__u64	rx_packets;	/* frames queued to a receive ring */
	__u64	rx_drops;	/* frames dropped because the ring was full */
	__u64	rx_errors;	/* frames lost: bad user buffer, no memory,
				 * failed segmentation or longer than 65535 */
	__u64	tx_packets;	/* frames accepted by the driver */
	__u64	tx_errors;	/* frames refused: bad header or length, bad
				 * user buffer, no memory, driver error */
	__u64	truncated;	/* frames cut short to fit a read buffer */
	__u64	reserved[2];	/* zero */
};

/* Argument of HPIO_IOC_GET_STATS. */
struct hpio_stats_req {
	__u32	queue;		/* in: queue index or HPIO_QUEUE_ALL */
	__u32	reserved;	/* in: must be zero */
	struct hpio_stats stats; /* out */
};

/* hpio_info.flags */
#define HPIO_INFO_READER	0x1	/* this file was opened for reading */
#define HPIO_INFO_ATTACHED	0x2	/* frames are being stolen (readers > 0) */
#define HPIO_INFO_GONE		0x4	/* the network device was removed */
#define HPIO_INFO_UP		0x8	/* the network device is up */

/* Argument of HPIO_IOC_GET_INFO. */
struct hpio_info {
	__u32	abi_version;	/* HPIO_ABI_VERSION of the module */
	__u8	hdr_version;	/* HPIO_HDR_VERSION of the module */
	__u8	hdrlen;		/* sizeof(struct hpio_hdr) */
	__u16	reserved0;
	__u32	ifindex;	/* 0 once the device is gone */
	__u32	mtu;		/* device MTU (0 once gone) */
	__u32	nqueues;	/* valid queue indexes: 0 .. nqueues - 1 */
	__u32	queue;		/* bound queue, or HPIO_QUEUE_CPU */
	__u32	ring_size;	/* slots per receive ring while attached */
	__u32	flags;		/* HPIO_INFO_* */
	char	ifname[16];	/* current interface name, NUL-terminated */
	__u64	reserved[4];
};

#define HPIO_IOC_MAGIC		'h'

/* Read module and device information (struct hpio_info). */
#define HPIO_IOC_GET_INFO	_IOR(HPIO_IOC_MAGIC, 0xa0, struct hpio_info)
/* Bind this file to one queue (__u32 index), or HPIO_QUEUE_CPU to unbind.
 * Reads use that queue's ring; writes use TX queue index % TX queues. */
#define HPIO_IOC_BIND_QUEUE	_IOW(HPIO_IOC_MAGIC, 0xa1, __u32)
/* Read the counters of one queue or of the device (struct hpio_stats_req). */
#define HPIO_IOC_GET_STATS	_IOWR(HPIO_IOC_MAGIC, 0xa2, struct hpio_stats_req)

#endif /* _UAPI_HPIO_H */
