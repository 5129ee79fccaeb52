// SPDX-License-Identifier: GPL-2.0
/*
 * hpio_txwait IF: poll on a writer while IF's TX queue is stopped, run by
 * tests/nf-virtio.sh on a virtio-net NIC (check-virtio), whose queue fills
 * when one writer sends faster than qemu drains it.
 *
 * With tx_poll_us > 0 (the default): fill TX queue 0 with writev until it
 * fails with ENOBUFS (the queue is stopped), then
 *   - poll(POLLOUT, 0) at once reports nothing (tried up to ATTEMPTS times:
 *     the queue may drain between the two calls),
 *   - poll(POLLOUT, 5 s) sleeps until the queue has room and reports
 *     POLLOUT well before the timeout,
 *   - writev takes frames again.
 * With tx_poll_us = 0: poll reports POLLOUT at once even right after
 * ENOBUFS, as before ABI 2.  The flag HPIO_INFO_TX_POLL follows the
 * parameter.
 *
 * The last poll(0) that found the queue stopped left the queue's timer
 * armed; the file is closed right away, so the caller's rmmod that follows
 * frees the device with the timer pending (or just run).
 *
 * Prints "ok   txwait: ..." / "FAIL txwait: ..." lines; exits 0 when every
 * check passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <hpio.h>

#define PARAM		"/sys/module/hpio/parameters/tx_poll_us"
#define BURST		256
#define FRAME		1514
#define ATTEMPTS	200

struct slot {
	struct hpio_hdr hdr;
	uint8_t data[FRAME];
} __attribute__((packed));

static struct slot slots[BURST];
static struct iovec iov[BURST];
static int failed;

static void check(bool ok, const char *what)
{
	printf("%s txwait: %s\n", ok ? "ok  " : "FAIL", what);
	if (!ok)
		failed++;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int set_param(const char *val)
{
	int fd = open(PARAM, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static int open_bound(const char *ifname)
{
	char path[64];
	uint32_t q = 0;
	int fd;

	snprintf(path, sizeof(path), "/dev/hpio/%s", ifname);
	fd = open(path, O_WRONLY | O_NONBLOCK);
	if (fd >= 0 && ioctl(fd, HPIO_IOC_BIND_QUEUE, &q)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* writev until ENOBUFS (true), or another error or too many calls. */
static bool fill(int fd)
{
	int i;

	for (i = 0; i < 100000; i++) {
		if (writev(fd, iov, BURST) < 0)
			return errno == ENOBUFS;
	}
	return false;
}

static bool tx_poll_flag(int fd)
{
	struct hpio_info info;

	return !ioctl(fd, HPIO_IOC_GET_INFO, &info) && (info.flags & HPIO_INFO_TX_POLL);
}

int main(int argc, char **argv)
{
	struct pollfd p;
	int fd, i, n, seen = 0, filled = 0;
	uint64_t t0, ms = 0;
	char msg[160];

	if (argc != 2) {
		fprintf(stderr, "usage: hpio_txwait IFNAME\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; i < BURST; i++) {
		slots[i].hdr = (struct hpio_hdr){ .version = HPIO_HDR_VERSION,
						  .hdrlen = HPIO_HDR_LEN, .pktlen = FRAME };
		/* To a unicast address nobody owns, EtherType 0x88b5. */
		memcpy(slots[i].data, "\x02\x00\x00\x00\x0e\x02\x02\x68\x70\x69\x6f\x01\x88\xb5", 14);
		iov[i] = (struct iovec){ &slots[i], sizeof(slots[i]) };
	}

	fd = open_bound(argv[1]);
	check(fd >= 0, "open the node, bind queue 0");
	if (fd < 0)
		return 1;
	check(tx_poll_flag(fd), "GET_INFO: HPIO_INFO_TX_POLL with the default tx_poll_us");

	for (i = 0; i < ATTEMPTS && !seen; i++) {
		if (!fill(fd))
			continue;
		filled++;
		p = (struct pollfd){ .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, 0) == 0)
			seen = 1;
		else
			continue;
		t0 = mono_ms();
		p = (struct pollfd){ .fd = fd, .events = POLLOUT };
		n = poll(&p, 1, 5000);
		ms = mono_ms() - t0;
		snprintf(msg, sizeof(msg),
			 "poll(POLLOUT) sleeps while the queue is stopped and wakes when it drains (%d, revents %#x, %llu ms)",
			 n, p.revents, (unsigned long long)ms);
		check(n == 1 && p.revents == POLLOUT && ms < 4000, msg);
		check(writev(fd, iov, BURST) > 0, "writev takes frames after POLLOUT");
	}
	snprintf(msg, sizeof(msg),
		 "a stopped queue was seen without POLLOUT (%d ENOBUFS fills, %d attempts)", filled, i);
	check(seen, msg);
	/* Leave the queue's timer armed and close: the caller unloads next. */
	if (fill(fd)) {
		p = (struct pollfd){ .fd = fd, .events = POLLOUT };
		poll(&p, 1, 0);
	}
	close(fd);

	/* tx_poll_us = 0: POLLOUT at all times. */
	check(!set_param("0"), "set tx_poll_us=0");
	fd = open_bound(argv[1]);
	check(fd >= 0 && !tx_poll_flag(fd), "tx_poll_us=0: no HPIO_INFO_TX_POLL");
	n = fd >= 0 && fill(fd);
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	check(n && poll(&p, 1, 0) == 1 && p.revents == POLLOUT,
	      "tx_poll_us=0: POLLOUT right after ENOBUFS");
	if (fd >= 0)
		close(fd);
	check(!set_param("20"), "set tx_poll_us=20 again");
	return failed ? 1 : 0;
}
