// SPDX-License-Identifier: GPL-2.0
/* Bad input: every refusal has its errno, nothing is sent, nothing leaks. */
#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PARAM(name) "/sys/module/hpio/parameters/" name

static struct slot good;

static ssize_t wv1(int fd, void *base, size_t len)
{
	struct iovec iov = { base, len };

	return writev(fd, &iov, 1);
}

static ssize_t rv1(int fd, void *base, size_t len)
{
	struct iovec iov = { base, len };

	return readv(fd, &iov, 1);
}

static void tx_errors(int w, int r)
{
	struct slot s;
	struct hpio_stats st0, st;
	struct iovec iov[3];
	struct slot *two;
	long expect = 0;
	uint8_t *pages;
	int got;

	hp_stats(w, HPIO_QUEUE_ALL, &st0);

	CHECK_ERR(wv1(w, &good, 11), EINVAL, "writev: iovec shorter than the header");
	expect++;
	s = good;
	s.hdr.version = 1;
	CHECK_ERR(wv1(w, &s, sizeof(s)), EINVAL, "writev: header version 1");
	expect++;
	s = good;
	s.hdr.hdrlen = 11;
	CHECK_ERR(wv1(w, &s, sizeof(s)), EINVAL, "writev: hdrlen 11");
	expect++;
	s.hdr.hdrlen = 16;
	CHECK_ERR(wv1(w, &s, sizeof(s)), EINVAL, "writev: hdrlen 16");
	expect++;
	s = good;
	s.hdr.pktlen = 100;
	CHECK_ERR(wv1(w, &s, 12 + 60), EINVAL, "writev: pktlen 100 > iovec room 60");
	expect++;
	s.hdr.pktlen = 13;
	CHECK_ERR(wv1(w, &s, sizeof(s)), EINVAL, "writev: pktlen 13 < 14");
	expect++;
	s.hdr.pktlen = 0;
	CHECK_ERR(wv1(w, &s, sizeof(s)), EINVAL, "writev: pktlen 0");
	expect++;
	frame_fill(s.data, 1515, 0xe1, 0xe0, 1, 1);
	s.hdr.pktlen = 1515;
	CHECK_ERR(wv1(w, &s, sizeof(s)), EINVAL, "writev: 1515 bytes > MTU 1500 + 14");
	expect++;
	s.hdr.pktlen = 1514;
	CHECK(wv1(w, &s, sizeof(s)) == 1, "writev: 1514 bytes (MTU + 14) is sent");
	s.data[12] = 0x81;
	s.data[13] = 0x00;
	s.hdr.pktlen = 1518;
	CHECK(wv1(w, &s, sizeof(s)) == 1, "writev: 1518 bytes with an 802.1Q tag is sent");
	s.hdr.pktlen = 1519;
	CHECK_ERR(wv1(w, &s, sizeof(s)), EINVAL, "writev: 1519 bytes with a tag");
	expect++;

	CHECK_ERR(write(w, &good, 5), EINVAL, "write: 5 bytes");
	expect++;
	s = good;
	s.hdr.version = 3;
	CHECK_ERR(write(w, &s, sizeof(s)), EINVAL, "write: version 3");
	expect++;

	CHECK_ERR(wv1(w, bad_ptr, 200), EFAULT, "writev: iov_base at a bad address");
	expect++;
	CHECK_ERR(write(w, bad_ptr, 200), EFAULT, "write: buffer at a bad address");
	expect++;
	CHECK_ERR(writev(w, (struct iovec *)bad_ptr, 1), EFAULT, "writev: iovec array at a bad address");
	pages = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(pages + 4096, 4096);
	memcpy(pages + 4096 - 40, &good, 40);	/* header and 28 frame bytes */
	CHECK_ERR(wv1(w, pages + 4096 - 40, 72), EFAULT,
		  "writev: frame runs into an unmapped page");
	expect++;
	munmap(pages, 4096);

	/* A bad packet ends the batch: the good ones before it are sent. */
	two = calloc(3, sizeof(*two));
	two[0] = good;
	two[1] = good;
	two[1].hdr.version = 0;
	two[2] = good;
	iov[0] = (struct iovec){ &two[0], sizeof(struct slot) };
	iov[1] = (struct iovec){ &two[1], sizeof(struct slot) };
	iov[2] = (struct iovec){ &two[2], sizeof(struct slot) };
	while (recv_slots(r, &s, 1, 1, 1, 100) == 1)
		;
	CHECK(writev(w, iov, 3) == 1, "writev [good, bad, good] returns 1");
	expect++;
	got = recv_slots(r, two, 3, 3, 3, 1000);
	CHECK(got == 1, "exactly one frame of that batch went out (%d)", got);
	free(two);

	hp_stats(w, HPIO_QUEUE_ALL, &st);
	CHECK((long)(st.tx_errors - st0.tx_errors) == expect,
	      "tx_errors counts each refused packet: %llu, want %ld",
	      (unsigned long long)(st.tx_errors - st0.tx_errors), expect);
}

/* Wait until the reader's ring holds a frame (softirqs may run late). */
static void wait_readable(int r)
{
	struct pollfd p = { .fd = r, .events = POLLIN };

	poll(&p, 1, 3000);
}

static void rx_errors(int w, int r)
{
	struct hpio_stats st0, st;
	struct slot g;

	hp_stats(r, HPIO_QUEUE_ALL, &st0);
	send_slots(w, &good, 1, 1);
	wait_readable(r);
	CHECK_ERR(rv1(r, &g, 5), EINVAL, "readv: iovec shorter than the header");
	CHECK_ERR(read(r, &g, 11), EINVAL, "read: 11 bytes");
	CHECK(rv1(r, &g, sizeof(g)) == 1 && g.hdr.pktlen == 60,
	      "the frame stayed queued through those refusals");
	send_slots(w, &good, 1, 1);
	wait_readable(r);
	CHECK_ERR(rv1(r, bad_ptr, sizeof(g)), EFAULT, "readv: iov_base at a bad address");
	CHECK_ERR(readv(r, (struct iovec *)bad_ptr, 1), EFAULT, "readv: iovec array at a bad address");
	send_slots(w, &good, 1, 1);
	wait_readable(r);
	CHECK_ERR(read(r, bad_ptr, sizeof(g)), EFAULT, "read: buffer at a bad address");
	hp_stats(r, HPIO_QUEUE_ALL, &st);
	CHECK(st.rx_errors - st0.rx_errors == 2,
	      "rx_errors counts the 2 frames lost to bad buffers (%llu)",
	      (unsigned long long)(st.rx_errors - st0.rx_errors));
	CHECK_ERR(rv1(r, &g, sizeof(g)), EAGAIN, "nothing else was left queued");
}

/*
 * A read takes frames from the ring in batches: those it could not deliver
 * (a short iovec, a fault) go back to the ring, in order.
 */
/* Wait (up to 3 s) until the module has queued @n more frames than @st0. */
static void wait_queued(int r, const struct hpio_stats *st0, unsigned int n)
{
	uint64_t end = mono_ms() + 3000;
	struct hpio_stats st;

	do {
		hp_stats(r, HPIO_QUEUE_ALL, &st);
		if (st.rx_packets - st0->rx_packets >= n)
			return;
		sleep_ms(1);
	} while (mono_ms() < end);
}

static void rx_partial(int w, int r)
{
	struct hpio_stats st0;
	struct slot s[4], g[4];
	struct iovec iov[4];
	char tiny[5];
	int i, got;

	for (i = 0; i < 4; i++) {
		frame_fill(s[i].data, 64 + i, 0xe1, 0xe0, i, 4);
		slot_set(&s[i], 64 + i);
		iov[i].iov_base = &g[i];
		iov[i].iov_len = sizeof(g[i]);
	}
	hp_stats(r, HPIO_QUEUE_ALL, &st0);
	CHECK(send_slots(w, s, 4, 4) == 4, "4 frames sent");
	wait_queued(r, &st0, 4);
	iov[2].iov_base = tiny;
	iov[2].iov_len = sizeof(tiny);
	CHECK(readv(r, iov, 4) == 2 && g[0].hdr.pktlen == 64 && g[1].hdr.pktlen == 65,
	      "readv stops at a 5-byte third iovec after 2 frames");
	iov[2].iov_base = &g[2];
	iov[2].iov_len = sizeof(g[2]);
	got = readv(r, iov, 4);
	CHECK(got == 2 && g[0].hdr.pktlen == 66 && g[1].hdr.pktlen == 67 &&
	      !memcmp(g[1].data, s[3].data, 67),
	      "the next readv gets the other 2, in order (%d)", got);

	hp_stats(r, HPIO_QUEUE_ALL, &st0);
	CHECK(send_slots(w, s, 3, 3) == 3, "3 frames sent");
	wait_queued(r, &st0, 3);
	iov[1].iov_base = bad_ptr;
	CHECK(readv(r, iov, 3) == 1 && g[0].hdr.pktlen == 64,
	      "readv with a bad second iovec delivers the first frame");
	iov[1].iov_base = &g[1];
	CHECK(rv1(r, &g[0], sizeof(g[0])) == 1 && g[0].hdr.pktlen == 66,
	      "the third frame went back to the ring (the second was lost)");
	CHECK_ERR(rv1(r, &g[0], sizeof(g[0])), EAGAIN, "nothing else was left queued");
}

static void down_errors(int w, int r)
{
	struct slot g;

	sh(IP " link set e0 down");
	CHECK_ERR(wv1(w, &good, sizeof(good)), ENETDOWN, "writev on a down device");
	CHECK_ERR(write(w, &good, sizeof(good)), ENETDOWN, "write on a down device");
	sh(IP " link set e1 down");
	CHECK_ERR(rv1(r, &g, sizeof(g)), EAGAIN,
		  "readv on a down device: empty ring, EAGAIN (not an error)");
	sh(IP " link set e0 up && " IP " link set e1 up");
	CHECK(wv1(w, &good, sizeof(good)) == 1, "writev works once the device is up again");
	CHECK(recv_slots(r, &g, 1, 1, 1, 2000) == 1, "and the frame arrives");
}

static void ioctl_errors(int w)
{
	struct hpio_stats_req req = { 0 };
	struct hpio_info info;
	uint32_t q;

	CHECK(!hp_info(w, &info), "GET_INFO");
	q = info.nqueues;
	CHECK_ERR(ioctl(w, HPIO_IOC_BIND_QUEUE, &q), EINVAL, "BIND_QUEUE nqueues (%u)", q);
	q = info.nqueues - 1;
	CHECK(!ioctl(w, HPIO_IOC_BIND_QUEUE, &q), "BIND_QUEUE nqueues - 1");
	q = HPIO_QUEUE_CPU;
	CHECK(!ioctl(w, HPIO_IOC_BIND_QUEUE, &q), "BIND_QUEUE HPIO_QUEUE_CPU unbinds");
	CHECK_ERR(ioctl(w, HPIO_IOC_BIND_QUEUE, bad_ptr), EFAULT, "BIND_QUEUE bad pointer");
	req.queue = info.nqueues;
	CHECK_ERR(ioctl(w, HPIO_IOC_GET_STATS, &req), EINVAL, "GET_STATS queue nqueues");
	req.queue = 0;
	req.reserved = 1;
	CHECK_ERR(ioctl(w, HPIO_IOC_GET_STATS, &req), EINVAL, "GET_STATS reserved != 0");
	CHECK_ERR(ioctl(w, HPIO_IOC_GET_STATS, bad_ptr), EFAULT, "GET_STATS bad pointer");
	CHECK_ERR(ioctl(w, HPIO_IOC_GET_INFO, bad_ptr), EFAULT, "GET_INFO bad pointer");
	CHECK_ERR(ioctl(w, _IO(HPIO_IOC_MAGIC, 0xff), 0), ENOTTY, "unknown ioctl");
	CHECK_ERR(lseek(w, 0, SEEK_SET), ESPIPE, "lseek");
	CHECK_ERR(pwrite(w, &good, sizeof(good), 0), ESPIPE, "pwrite");
}

static void param_errors(void)
{
	CHECK(write_str(PARAM("ring_size"), "4") < 0, "ring_size=4 refused (min 8)");
	CHECK(write_str(PARAM("ring_size"), "70000") < 0, "ring_size=70000 refused (max 65536)");
	CHECK(write_str(PARAM("tos_value"), "256") < 0, "tos_value=256 refused");
	CHECK(write_str(PARAM("tos_value"), "-2") < 0, "tos_value=-2 refused");
	CHECK(write_str(PARAM("tx_batch"), "0") < 0, "tx_batch=0 refused");
	CHECK(write_str(PARAM("tx_batch"), "1025") < 0, "tx_batch=1025 refused (max 1024)");
	CHECK(write_str(PARAM("busy_poll"), "65") < 0, "busy_poll=65 refused (max 64)");
	CHECK(write_str(PARAM("legacy_empty"), "maybe") < 0, "legacy_empty=maybe refused");
	CHECK(read_long(PARAM("ring_size")) == 1024 && read_long(PARAM("tx_batch")) == 256 &&
	      read_long(PARAM("tos_value")) == -1 && read_long(PARAM("busy_poll")) == 64,
	      "parameters kept their values");
}

/* Receive @n frames on @r; true if they are s[0..n) in order. */
static bool recv_same(int r, const struct slot *s, struct slot *g, int n)
{
	int i, got, same = 0;

	got = recv_slots(r, g, n, n, n, 3000);
	for (i = 0; i < got && i < n; i++)
		if (g[i].hdr.pktlen == s[i].hdr.pktlen &&
		    !memcmp(g[i].data, s[i].data, s[i].hdr.pktlen))
			same++;
	CHECK(got == n && same == n, "all %d arrive in order (%d, %d equal)", n, got, same);
	return got == n && same == n;
}

static void tx_batch_sizes(int w, int r)
{
	static const char *const batches[] = { "3", "256" };
	struct slot *s = calloc(100, sizeof(*s)), *g = calloc(100, sizeof(*g));
	struct iovec iov[100];
	unsigned int b;
	ssize_t sent;
	int i;

	for (i = 0; i < 100; i++) {
		frame_fill(s[i].data, 64 + i, 0xe1, 0xe0, i, 4);
		slot_set(&s[i], 64 + i);
	}
	/* 3: many batches per call; 256: one batch built in two chunks. */
	for (b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		write_str(PARAM("tx_batch"), batches[b]);
		CHECK(send_slots(w, s, 100, 100) == 100,
		      "tx_batch=%s: one writev of 100 sends 100", batches[b]);
		recv_same(r, s, g, 100);
	}
	/* A bad packet in the second chunk: the 80 before it are sent. */
	s[80].hdr.version = 99;
	for (i = 0; i < 100; i++) {
		iov[i].iov_base = &s[i];
		iov[i].iov_len = sizeof(s[i]);
	}
	sent = writev(w, iov, 100);
	CHECK(sent == 80, "a bad 81st packet: a writev of 100 sends the 80 before it (%zd)", sent);
	recv_same(r, s, g, 80);
	free(s);
	free(g);
}

void test_errors(void)
{
	int w, r, ro;

	section("bad input");
	veth_add("e0", "e1", 0xe0, 0xe1);
	frame_fill(good.data, 60, 0xe1, 0xe0, 0, 0);
	slot_set(&good, 60);
	w = hp_open("e0", O_WRONLY);
	r = hp_open("e1", O_RDONLY | O_NONBLOCK);
	CHECK(w >= 0 && r >= 0, "open e0 writer, e1 reader");
	tx_errors(w, r);
	rx_errors(w, r);
	rx_partial(w, r);
	down_errors(w, r);
	ioctl_errors(w);
	param_errors();
	tx_batch_sizes(w, r);
	ro = hp_open("e0", O_RDONLY);
	CHECK_ERR(write(ro, &good, sizeof(good)), EBADF, "write on a read-only file");
	CHECK_ERR(read(w, &good, sizeof(good)), EBADF, "read on a write-only file");
	close(ro);
	close(w);
	close(r);
	link_del("e0");
}
