// SPDX-License-Identifier: GPL-2.0
/* Frame sizes: full-size VLAN frames, jumbo frames, both header lengths. */
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JUMBO_DATA	9100

/* A slot for frames up to 9100 bytes. */
struct jslot {
	struct hpio_hdr hdr;
	uint8_t data[JUMBO_DATA];
} __attribute__((packed));

static ssize_t send1(int fd, void *slot, size_t len)
{
	struct iovec iov = { slot, len };

	return writev(fd, &iov, 1);
}

/* Insert an 802.1Q tag after the MACs of a @len-byte frame. */
static size_t tag8021q(uint8_t *buf, size_t len, uint16_t tci)
{
	memmove(buf + 16, buf + 12, len - 12);
	buf[12] = 0x81;
	buf[13] = 0x00;
	buf[14] = tci >> 8;
	buf[15] = tci & 0xff;
	return len + 4;
}

/* Receive one jumbo slot (non-blocking file), waiting up to @ms. */
static ssize_t recv1(int fd, struct jslot *g, size_t len, int ms)
{
	uint64_t end = mono_ms() + ms;
	struct iovec iov = { g, len };
	ssize_t n;

	for (;;) {
		n = readv(fd, &iov, 1);
		if (n >= 0 || errno != EAGAIN || mono_ms() > end)
			return n;
		sleep_ms(5);
	}
}

static bool same(const struct jslot *g, const struct jslot *s)
{
	return g->hdr.pktlen == s->hdr.pktlen &&
	       !memcmp(g->data, s->data, s->hdr.pktlen);
}

/* On a 1500-MTU link: 1514 bytes, and 1518 with one 802.1Q tag, as the
 * kernel's own paths send them (a full-size frame of a VLAN trunk). */
static void full_vlan(void)
{
	static struct jslot s, g;
	ssize_t n;
	int w, r;

	veth_add("vl0", "vl1", 0xb4, 0xb5);
	w = hp_open("vl0", O_WRONLY);
	r = hp_open("vl1", O_RDONLY | O_NONBLOCK);
	frame_fill(s.data, 1514, 0xb5, 0xb4, 1, 31);
	slot_set((struct slot *)&s, tag8021q(s.data, 1514, 0x0123));
	CHECK(s.hdr.pktlen == 1518 && send1(w, &s, sizeof(s)) == 1,
	      "MTU 1500: a 1518-byte 802.1Q frame is sent");
	memset(&g, 0, sizeof(g));
	n = recv1(r, &g, sizeof(g), 2000);
	CHECK(n == 1 && same(&g, &s), "and arrives whole, tag included (pktlen %u)", g.hdr.pktlen);
	s.hdr.pktlen = 1519;
	CHECK_ERR(send1(w, &s, sizeof(s)), EINVAL, "1519 bytes with one tag: EINVAL");
	close(w);
	close(r);
	link_del("vl0");
}

/* MTU 9000: frames up to 9014 (9018 tagged) both ways, whole; a read
 * buffer too short for one is counted as a truncation. */
static void jumbo(void)
{
	enum { N = 40 };
	struct jslot *s = calloc(N, sizeof(*s)), *g = calloc(N, sizeof(*g));
	struct hpio_stats st0, st;
	struct iovec iov[N];
	int w, r, i, got = 0, equal = 0;
	long drops0, drops;
	ssize_t n;

	veth_add("jb0", "jb1", 0xb6, 0xb7);
	CHECK(sh(IP " link set jb0 mtu 9000 && " IP " link set jb1 mtu 9000") == 0,
	      "veth pair with MTU 9000");
	w = hp_open("jb0", O_WRONLY);
	r = hp_open("jb1", O_RDONLY | O_NONBLOCK);
	hp_stats(r, HPIO_QUEUE_ALL, &st0);
	for (i = 0; i < N; i++) {
		size_t len = i == 0 ? 9014 : i == 1 ? 1515 : frame_len(i, 32, 14, 9014);

		frame_fill(s[i].data, len, 0xb7, 0xb6, i, 32);
		if (i == 2)
			len = tag8021q(s[i].data, 9014, 0x0042);
		slot_set((struct slot *)&s[i], len);
		iov[i] = (struct iovec){ &s[i], sizeof(s[i]) };
	}
	n = writev(w, iov, N);
	CHECK(n == N, "writev of %d frames of 14..9014 bytes, one 9018 tagged (%zd)", N, n);
	for (i = 0; i < 100 && got < N; i++) {
		struct iovec riov[N];
		int k;

		for (k = 0; k < N - got; k++)
			riov[k] = (struct iovec){ &g[got + k], sizeof(g[0]) };
		n = readv(r, riov, N - got);
		if (n > 0)
			got += n;
		else
			sleep_ms(20);
	}
	for (i = 0; i < got; i++)
		equal += same(&g[i], &s[i]);
	CHECK(got == N && equal == N, "readv receives them whole: %d of %d equal", equal, got);
	hp_stats(r, HPIO_QUEUE_ALL, &st);
	CHECK(st.truncated == st0.truncated, "no truncation");

	s[0].hdr.pktlen = 9015;
	CHECK_ERR(send1(w, &s[0], sizeof(s[0])), EINVAL, "9015 bytes untagged: EINVAL");
	s[2].hdr.pktlen = 9019;
	CHECK_ERR(send1(w, &s[2], sizeof(s[2])), EINVAL, "9019 bytes tagged: EINVAL");

	/* A read buffer shorter than the frame: cut, counted, full pktlen. */
	s[0].hdr.pktlen = 9014;
	send1(w, &s[0], sizeof(s[0]));
	memset(&g[0], 0, sizeof(g[0]));
	n = recv1(r, &g[0], sizeof(struct slot), 2000);
	hp_stats(r, HPIO_QUEUE_ALL, &st);
	CHECK(n == 1 && g[0].hdr.pktlen == 9014 && !memcmp(g[0].data, s[0].data, SLOT_DATA) &&
	      st.truncated == st0.truncated + 1,
	      "a 9014-byte frame into a 2048-byte slot: cut, pktlen 9014, truncated +1");

	/* The limit follows the MTU. */
	sh(IP " link set jb0 mtu 1500");
	CHECK_ERR(send1(w, &s[0], sizeof(s[0])), EINVAL, "MTU back to 1500: 9014 bytes refused");
	s[1].hdr.pktlen = 1514;
	CHECK(send1(w, &s[1], sizeof(s[1])) == 1 && recv1(r, &g[0], sizeof(g[0]), 2000) == 1 &&
	      same(&g[0], &s[1]), "and 1514 bytes sent and received");
	drops0 = if_stat("jb0", "tx_dropped") + if_stat("jb1", "rx_dropped");
	sh(IP " link set jb0 mtu 9000 && " IP " link set jb1 mtu 1500");
	CHECK(send1(w, &s[0], sizeof(s[0])) == 1 && send1(w, &s[1], sizeof(s[1])) == 1,
	      "sender MTU 9000, receiver MTU 1500: 9014 and 1514 bytes leave the sender");
	sleep_ms(50);
	drops = if_stat("jb0", "tx_dropped") + if_stat("jb1", "rx_dropped") - drops0;
	memset(&g[0], 0, sizeof(g[0]));
	n = recv1(r, &g[0], sizeof(g[0]), 300);
	CHECK(n == 1 && same(&g[0], &s[1]) && recv1(r, &g[1], sizeof(g[1]), 100) == -1 && drops > 0,
	      "the receiver gets the 1514-byte frame whole and nothing else: veth dropped the "
	      "9014-byte one and counted it (%ld)", drops);
	close(w);
	close(r);
	link_del("jb0");
	free(s);
	free(g);
}

/* hdrlen 12 (bytes) or 3 (the original hpio: 4-byte words); nothing else. */
static void hdrlens(void)
{
	static const uint8_t bad[] = { 0, 1, 4, 6, 11, 13, 24, 255 };
	struct hpio_stats st0, st;
	struct slot s, g;
	int w, r, refused = 0;
	size_t i;

	veth_add("hl0", "hl1", 0xb8, 0xb9);
	w = hp_open("hl0", O_WRONLY);
	r = hp_open("hl1", O_RDONLY | O_NONBLOCK);
	hp_stats(w, HPIO_QUEUE_ALL, &st0);
	frame_fill(s.data, 100, 0xb9, 0xb8, 3, 33);
	slot_set(&s, 100);
	s.hdr.hdrlen = HPIO_HDR_LEN_WORDS;
	CHECK(send1(w, &s, sizeof(s)) == 1 && write(w, &s, sizeof(s)) == 112,
	      "hdrlen 3 (4-byte words, the original hpio): writev and write send");
	s.hdr.hdrlen = HPIO_HDR_LEN;
	CHECK(send1(w, &s, sizeof(s)) == 1, "hdrlen 12 sends");
	CHECK(recv_slots(r, &g, 1, 3, 4, 2000) == 3 && g.hdr.hdrlen == 12 &&
	      g.hdr.pktlen == 100 && !memcmp(g.data, s.data, 100),
	      "the 3 frames arrive; received headers say hdrlen 12");
	for (i = 0; i < sizeof(bad); i++) {
		s.hdr.hdrlen = bad[i];
		refused += send1(w, &s, sizeof(s)) == -1 && errno == EINVAL;
	}
	hp_stats(w, HPIO_QUEUE_ALL, &st);
	CHECK(refused == (int)sizeof(bad) && st.tx_errors - st0.tx_errors == sizeof(bad),
	      "hdrlen 0, 1, 4, 6, 11, 13, 24, 255: EINVAL, counted (%d refused)", refused);
	CHECK(recv_slots(r, &g, 1, 1, 4, 100) == 0, "and nothing of them went out");
	close(w);
	close(r);
	link_del("hl0");
}

void test_sizes(void)
{
	section("frame sizes and header lengths");
	full_vlan();
	jumbo();
	hdrlens();
}
