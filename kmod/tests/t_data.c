// SPDX-License-Identifier: GPL-2.0
/* Data path: round trips, truncation, VLAN, paged and GSO frames, the stack. */
#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/* Frames @seq 0..n-1 of (@seed), lengths in [lo, hi], from MAC @src to @dst. */
static struct slot *make_slots(int n, uint32_t seed, size_t lo, size_t hi,
			       int dst, int src)
{
	struct slot *s = calloc(n, sizeof(*s));
	int i;

	for (i = 0; i < n; i++) {
		size_t len = frame_len(i, seed, lo, hi);

		frame_fill(s[i].data, len, dst, src, i, seed);
		slot_set(&s[i], len);
	}
	return s;
}

/* Count received slots equal to the sent ones, in order. */
static int count_equal(const struct slot *got, int n, const struct slot *sent,
		       uint64_t t0, uint64_t t1, int *bad_hdr, int *bad_ts)
{
	int i, same = 0;

	*bad_hdr = *bad_ts = 0;
	for (i = 0; i < n; i++) {
		const struct slot *g = &got[i], *s = &sent[i];

		if (g->hdr.version != HPIO_HDR_VERSION ||
		    g->hdr.hdrlen != sizeof(struct hpio_hdr))
			(*bad_hdr)++;
		if (g->hdr.tstamp < t0 || g->hdr.tstamp > t1)
			(*bad_ts)++;
		if (g->hdr.pktlen == s->hdr.pktlen &&
		    !memcmp(g->data, s->data, s->hdr.pktlen))
			same++;
	}
	return same;
}

/* @n frames from hpio @tx to hpio @rx, in chunks that fit the ring. */
static void one_way(const char *tx, const char *rx, int n, uint32_t seed,
		    int mac_tx, int mac_rx)
{
	struct slot *sent = make_slots(n, seed, 14, 1514, mac_rx, mac_tx);
	struct slot *got = calloc(n, sizeof(*got));
	struct hpio_stats st_tx0, st_rx0, st_tx, st_rx;
	int w = hp_open(tx, O_WRONLY), r = hp_open(rx, O_RDONLY);
	int got_n = 0, i, bad_hdr, bad_ts, same;
	uint64_t t0, t1;
	long sent_n = 0;

	CHECK(w >= 0 && r >= 0, "%s -> %s: open writer and reader", tx, rx);
	hp_stats(w, HPIO_QUEUE_ALL, &st_tx0);
	hp_stats(r, HPIO_QUEUE_ALL, &st_rx0);
	t0 = now_ns();
	for (i = 0; i < n; i += 256) {
		int k = n - i < 256 ? n - i : 256;
		long s = send_slots(w, sent + i, k, 32);

		if (s != k)
			break;
		sent_n += s;
		got_n += recv_slots(r, got + got_n, n - got_n, k, 64, 5000);
	}
	t1 = now_ns();
	CHECK(sent_n == n, "%s -> %s: writev sent %ld of %d frames", tx, rx, sent_n, n);
	CHECK(got_n == n, "%s -> %s: readv received %d of %d frames", tx, rx, got_n, n);
	same = count_equal(got, got_n < n ? got_n : n, sent, t0, t1, &bad_hdr, &bad_ts);
	CHECK(same == n, "%s -> %s: %d of %d frames byte-for-byte equal and in order",
	      tx, rx, same, n);
	CHECK(!bad_hdr, "%s -> %s: every header has version 2, hdrlen 12 (%d bad)",
	      tx, rx, bad_hdr);
	CHECK(!bad_ts, "%s -> %s: every tstamp is the receive time (%d bad)",
	      tx, rx, bad_ts);
	hp_stats(w, HPIO_QUEUE_ALL, &st_tx);
	hp_stats(r, HPIO_QUEUE_ALL, &st_rx);
	CHECK(st_tx.tx_packets - st_tx0.tx_packets == (uint64_t)n &&
	      st_tx.tx_errors == st_tx0.tx_errors,
	      "%s: ioctl tx_packets +%d, no tx_errors", tx, n);
	CHECK(st_rx.rx_packets - st_rx0.rx_packets == (uint64_t)n &&
	      st_rx.rx_drops == st_rx0.rx_drops,
	      "%s: ioctl rx_packets +%d, no rx_drops", rx, n);
	CHECK(hp_sysfs(tx, "tx_packets") == (long)st_tx.tx_packets &&
	      hp_sysfs(rx, "rx_packets") == (long)st_rx.rx_packets,
	      "%s, %s: sysfs counters agree with the ioctl", tx, rx);
	close(w);
	close(r);
	free(sent);
	free(got);
}

/* Frames go out on one end and come back through an echo on the other. */
static void echo(const char *a, const char *b, int n, uint32_t seed)
{
	struct slot *sent = make_slots(n, seed, 60, 1514, 0xb1, 0xb0);
	struct slot *mid = calloc(64, sizeof(*mid));
	struct slot *back = calloc(n, sizeof(*back));
	int fa = hp_open(a, O_RDWR), fb = hp_open(b, O_RDWR);
	int i, back_n = 0, bad_hdr, bad_ts, same, echo_fail = 0;
	uint64_t t0 = now_ns();

	CHECK(fa >= 0 && fb >= 0, "echo: open both ends O_RDWR");
	for (i = 0; i < n; i += 32) {
		int k = n - i < 32 ? n - i : 32, m;

		if (send_slots(fa, sent + i, k, 32) != k)
			break;
		m = recv_slots(fb, mid, 64, k, 32, 5000);
		if (m != k || send_slots(fb, mid, m, 32) != m) {
			echo_fail++;
			break;
		}
		back_n += recv_slots(fa, back + back_n, n - back_n, k, 32, 5000);
	}
	same = count_equal(back, back_n < n ? back_n : n, sent, t0, now_ns(),
			   &bad_hdr, &bad_ts);
	CHECK(!echo_fail && back_n == n, "echo %s <-> %s: %d of %d frames came back",
	      a, b, back_n, n);
	CHECK(same == n, "echo %s <-> %s: %d of %d equal byte for byte", a, b, same, n);
	close(fa);
	close(fb);
	free(sent);
	free(mid);
	free(back);
}

void test_roundtrip(void)
{
	section("round trips");
	veth_add("a0", "a1", 0xa0, 0xa1);
	one_way("a0", "a1", 3000, 1, 0xa0, 0xa1);
	one_way("a1", "a0", 3000, 2, 0xa1, 0xa0);
	echo("a0", "a1", 1000, 3);
	link_del("a0");
}

static void test_truncation(int w, int r)
{
	struct slot s, g;
	struct hpio_stats st0, st;
	struct iovec iov;
	ssize_t n;

	hp_stats(r, HPIO_QUEUE_ALL, &st0);
	frame_fill(s.data, 1000, 0xc1, 0xc0, 7, 7);
	slot_set(&s, 1000);
	send_slots(w, &s, 1, 1);
	memset(&g, 0, sizeof(g));
	iov.iov_base = &g;
	iov.iov_len = sizeof(struct hpio_hdr) + 100;
	n = readv(r, &iov, 1);
	CHECK(n == 1 && g.hdr.pktlen == 1000 && !memcmp(g.data, s.data, 100) &&
	      g.data[100] == 0,
	      "readv into a 112-byte iovec: 1 frame, pktlen 1000, 100 bytes copied");

	send_slots(w, &s, 1, 1);
	memset(&g, 0, sizeof(g));
	n = read(r, &g, sizeof(struct hpio_hdr) + 50);
	CHECK(n == 62 && g.hdr.pktlen == 1000 && !memcmp(g.data, s.data, 50),
	      "read(62 bytes) of a 1000-byte frame returns 62, pktlen 1000 (got %zd)", n);

	send_slots(w, &s, 1, 1);
	n = read(r, &g, sizeof(struct hpio_hdr));
	CHECK(n == 12 && g.hdr.pktlen == 1000,
	      "read(12 bytes) returns the header alone (got %zd)", n);

	hp_stats(r, HPIO_QUEUE_ALL, &st);
	CHECK(st.truncated - st0.truncated == 3, "truncated counts 3 truncations (got %llu)",
	      (unsigned long long)(st.truncated - st0.truncated));
}

static void test_single(int w, int r)
{
	struct slot s, g;
	ssize_t n;

	frame_fill(s.data, 60, 0xc1, 0xc0, 8, 8);
	slot_set(&s, 60);
	n = write(w, &s, sizeof(struct hpio_hdr) + 60);
	CHECK(n == 72, "write() of one 60-byte frame returns 72 (got %zd)", n);
	n = write(w, &s, sizeof(s));
	CHECK(n == 72, "write() of a full slot holding 60 bytes returns 72 (got %zd)", n);
	sleep_ms(10);
	memset(&g, 0, sizeof(g));
	n = read(r, &g, sizeof(g));
	CHECK(n == 72 && g.hdr.pktlen == 60 && !memcmp(g.data, s.data, 60),
	      "read() returns one frame: 72 bytes (got %zd)", n);
	n = read(r, &g, sizeof(g));
	CHECK(n == 72, "read() returns the second frame alone (got %zd)", n);
}

/* Insert a 4-byte tag (@tpid, @tci) after the MACs of a @len-byte frame. */
static size_t add_tag(uint8_t *buf, size_t len, uint16_t tpid, uint16_t tci)
{
	memmove(buf + 16, buf + 12, len - 12);
	buf[12] = tpid >> 8;
	buf[13] = tpid & 0xff;
	buf[14] = tci >> 8;
	buf[15] = tci & 0xff;
	return len + 4;
}

static void test_vlan(int w, int r)
{
	enum { N = 200 };
	struct slot *s = calloc(N, sizeof(*s)), *g = calloc(N, sizeof(*g));
	int i, got, same = 0;

	for (i = 0; i < N; i++) {
		size_t len = frame_len(i, 9, 14, 1514);

		frame_fill(s[i].data, len, 0xc1, 0xc0, i, 9);
		len = add_tag(s[i].data, len, 0x8100, 0x2000 | (i % 4000 + 1));
		if (i % 2)	/* QinQ: 802.1ad outer tag, 802.1Q inner */
			len = add_tag(s[i].data, len, 0x88a8, 0x0064);
		if (len > 1518)
			len = 1518;
		slot_set(&s[i], len);
	}
	CHECK(send_slots(w, s, N, 32) == N,
	      "writev of 802.1Q and QinQ frames up to 1518 bytes");
	got = recv_slots(r, g, N, N, 64, 5000);
	for (i = 0; i < got && i < N; i++)
		if (g[i].hdr.pktlen == s[i].hdr.pktlen &&
		    !memcmp(g[i].data, s[i].data, s[i].hdr.pktlen))
			same++;
	CHECK(got == N && same == N,
	      "VLAN tags the stack stripped are put back: %d of %d equal", same, N);
	free(s);
	free(g);
}

/* Paged skbs: AF_PACKET with a virtio-net header keeps only the Ethernet
 * header linear and puts the rest of the frame in page fragments. */
static void test_paged(const char *tx, int r)
{
	enum { N = 500 };
	struct slot *s = calloc(N, sizeof(*s)), *g = calloc(N, sizeof(*g));
	uint8_t vnet[10] = { 0 };
	int fd = packet_socket(tx, false, true), i, got, same = 0, sent = 0;

	CHECK(fd >= 0, "AF_PACKET socket with PACKET_VNET_HDR on %s", tx);
	for (i = 0; i < N; i++) {
		size_t len = frame_len(i, 10, 200, 1514);
		struct iovec iov[2] = { { vnet, sizeof(vnet) }, { s[i].data, len } };

		frame_fill(s[i].data, len, 0xc1, 0xc0, i, 10);
		slot_set(&s[i], len);
		if (writev(fd, iov, 2) == (ssize_t)(len + sizeof(vnet)))
			sent++;
	}
	got = recv_slots(r, g, N, N, 64, 5000);
	for (i = 0; i < got && i < N; i++)
		if (g[i].hdr.pktlen == s[i].hdr.pktlen &&
		    !memcmp(g[i].data, s[i].data, s[i].hdr.pktlen))
			same++;
	CHECK(sent == N && got == N && same == N,
	      "paged frames copied whole: sent %d, received %d, %d equal", sent, got, same);
	close(fd);
	free(s);
	free(g);
}

static bool udp_valid(const uint8_t *f, size_t len, size_t plen)
{
	const uint8_t *ip = f + 14, *udp = ip + 20;
	uint8_t copy[2048];
	uint16_t c;

	if (len != 14 + 20 + 8 + plen || f[12] != 0x08 || f[13] != 0)
		return false;
	if (((size_t)ip[2] << 8 | ip[3]) != 20 + 8 + plen || ip_csum(ip, 20))
		return false;
	memcpy(copy, udp, 8 + plen);
	copy[6] = copy[7] = 0;
	c = udp4_csum(ip, copy, 8 + plen);
	return udp[6] == c >> 8 && udp[7] == (c & 0xff);
}

/* A UDP_SEGMENT send crosses the veth as one GSO skb; readers must get the
 * wire frames with final checksums.  A plain send arrives with its UDP
 * checksum left to the "NIC" (CHECKSUM_PARTIAL). */
static void test_gso(const char *tx, int rxmac, int r)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9000) };
	static uint8_t payload[8000];
	struct slot *g = calloc(16, sizeof(*g));
	int fd, gso = 1000, i, got, good = 0;
	ssize_t n;

	sh(IP " addr add 10.9.0.1/24 dev %s && " IP " neigh replace 10.9.0.2 lladdr 02:68:70:69:6f:%02x dev %s nud permanent",
	   tx, rxmac, tx);
	inet_pton(AF_INET, "10.9.0.2", &to.sin_addr);
	for (i = 0; i < (int)sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 3);
	fd = socket(AF_INET, SOCK_DGRAM, 0);

	n = sendto(fd, payload, 300, 0, (struct sockaddr *)&to, sizeof(to));
	got = recv_slots(r, g, 16, 1, 16, 3000);
	CHECK(n == 300 && got == 1 && udp_valid(g[0].data, g[0].hdr.pktlen, 300) &&
	      !memcmp(g[0].data + 42, payload, 300),
	      "UDP frame sent by the stack arrives with a valid checksum");

	setsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &gso, sizeof(gso));
	n = sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&to, sizeof(to));
	got = recv_slots(r, g, 16, 8, 16, 3000);
	for (i = 0; i < got && i < 16; i++)
		if (udp_valid(g[i].data, g[i].hdr.pktlen, 1000) &&
		    !memcmp(g[i].data + 42, payload + i * 1000, 1000))
			good++;
	CHECK(n == (ssize_t)sizeof(payload) && got == 8 && good == 8,
	      "UDP GSO super-frame (8 x 1000) arrives as 8 valid wire frames (got %d, %d good)",
	      got, good);
	close(fd);
	sh(IP " addr flush dev %s", tx);
	free(g);
}

void test_frames(void)
{
	int w, r;

	section("frame handling");
	veth_add("c0", "c1", 0xc0, 0xc1);
	w = hp_open("c0", O_WRONLY);
	r = hp_open("c1", O_RDONLY);
	CHECK(w >= 0 && r >= 0, "open c0 writer, c1 reader");
	test_truncation(w, r);
	test_single(w, r);
	test_vlan(w, r);
	test_paged("c0", r);
	test_gso("c0", 0xc1, r);
	close(w);
	close(r);
	link_del("c0");
}

/* ---- interplay with the stack ---- */

static int ping(const char *ip)
{
	return sh("ping -c 1 -W 2 %s >/dev/null 2>&1", ip);
}

struct ns_io {
	int ready[2];
	int n;
	uint32_t seed;
};

/* In the namespace: receive test frames on p1 with AF_PACKET, compare. */
static int ns_packet_rx(void *arg)
{
	struct ns_io *io = arg;
	struct slot *want = calloc(io->n, sizeof(*want));
	uint8_t buf[2048];
	int fd = packet_socket("p1", true, false), got = 0, i;
	int rcvbuf = 32 << 20;
	uint64_t end = mono_ms() + 10000;

	for (i = 0; i < io->n; i++) {
		size_t len = frame_len(i, io->seed, 14, 1514);

		frame_fill(want[i].data, len, 0x91, 0x90, i, io->seed);
		want[i].hdr.pktlen = len;
	}
	/* Room for all frames: the sender runs on the same CPU. */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) ||
	    write(io->ready[1], "r", 1) != 1)
		return 2;
	while (got < io->n && mono_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n <= 0 || from.sll_pkttype == PACKET_OUTGOING || !is_test_frame(buf, n))
			continue;
		if ((size_t)n != want[got].hdr.pktlen ||
		    memcmp(buf, want[got].data, n))
			return 3;
		got++;
	}
	return got == io->n ? 0 : 4;
}

/* In the namespace: send test frames from p1 with AF_PACKET. */
static int ns_packet_tx(void *arg)
{
	struct ns_io *io = arg;
	uint8_t buf[2048];
	int fd = packet_socket("p1", false, false), i;

	if (fd < 0)
		return 2;
	for (i = 0; i < io->n; i++) {
		size_t len = frame_len(i, io->seed, 14, 1514);

		frame_fill(buf, len, 0x90, 0x91, i, io->seed);
		while (send(fd, buf, len, 0) != (ssize_t)len) {
			if (errno != ENOBUFS)
				return 3;
			sleep_ms(1);
		}
		if (i % 64 == 63)
			sleep_ms(2);	/* let the reader keep up */
	}
	return 0;
}

static void test_netns_io(pid_t ns)
{
	struct ns_io io = { .n = 1000, .seed = 21 };
	struct slot *s, *g;
	int w, r, rc, got, same = 0, i;
	pid_t child;
	char c;

	/* hpio writev in init_net -> AF_PACKET in the namespace */
	s = make_slots(io.n, io.seed, 14, 1514, 0x91, 0x90);
	if (pipe(io.ready))
		return;
	child = ns_spawn(ns, ns_packet_rx, &io);
	rc = read(io.ready[0], &c, 1);
	w = hp_open("p0", O_WRONLY);
	CHECK(rc == 1 && send_slots(w, s, io.n, 32) == io.n,
	      "hpio writev of %d frames on p0", io.n);
	rc = child_wait(child);
	CHECK(rc == 0, "AF_PACKET in the namespace got them byte for byte (status %d)", rc);
	close(w);
	close(io.ready[0]);
	close(io.ready[1]);
	free(s);

	/* AF_PACKET in the namespace -> hpio readv in init_net */
	io.seed = 22;
	r = hp_open("p0", O_RDONLY);
	g = calloc(io.n, sizeof(*g));
	child = ns_spawn(ns, ns_packet_tx, &io);
	got = recv_slots(r, g, io.n, io.n, 64, 10000);
	rc = child_wait(child);
	s = make_slots(io.n, io.seed, 14, 1514, 0x90, 0x91);
	for (i = 0; i < got && i < io.n; i++)
		if (g[i].hdr.pktlen == s[i].hdr.pktlen &&
		    !memcmp(g[i].data, s[i].data, s[i].hdr.pktlen))
			same++;
	CHECK(rc == 0 && got == io.n && same == io.n,
	      "AF_PACKET sends from the namespace arrive on hpio: %d of %d equal", same, io.n);
	close(r);
	free(s);
	free(g);
}

static void test_tos(void)
{
	uint8_t dmac[6], smac[6];
	struct slot s[8], g[8];
	char buf[64];
	int r, w, u, i, got, tos_ok = 0, udp_n = 0;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(7000) };

	veth_add("t0", "t1", 0x70, 0x71);
	sh(IP " addr add 10.7.0.2/24 dev t1");
	mac_of(0x71, dmac);
	mac_of(0x70, smac);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	inet_pton(AF_INET, "10.7.0.2", &addr.sin_addr);
	bind(u, (struct sockaddr *)&addr, sizeof(addr));

	CHECK(!write_str("/sys/module/hpio/parameters/tos_value", "16"),
	      "set tos_value=16 at run time");
	w = hp_open("t0", O_WRONLY);
	r = hp_open("t1", O_RDONLY);
	for (i = 0; i < 8; i++) {
		char p[8];
		size_t len;

		snprintf(p, sizeof(p), "%c%d", i < 3 ? 'A' : 'B', i);
		if (i < 6) {
			len = udp_frame(s[i].data, dmac, smac, "10.7.0.1", "10.7.0.2",
					5000, 7000, i < 3 ? 16 : 0, p, 3);
		} else {
			len = 60;
			frame_fill(s[i].data, len, 0x71, 0x70, i, 5);
		}
		slot_set(&s[i], len);
	}
	CHECK(send_slots(w, s, 8, 8) == 8, "send 3 UDP ToS 16, 3 UDP ToS 0, 2 non-IP frames");
	got = recv_slots(r, g, 8, 8, 8, 500);
	for (i = 0; i < got && i < 8; i++)
		if (g[i].data[15] == 16)
			tos_ok++;
	CHECK(got == 3 && tos_ok == 3, "reader gets only the 3 ToS-16 frames (got %d)", got);
	for (i = 0; i < 10; i++) {
		struct pollfd p = { .fd = u, .events = POLLIN };

		if (poll(&p, 1, 100) > 0 && recv(u, buf, sizeof(buf), 0) == 3 &&
		    buf[0] == 'B')
			udp_n++;
		if (udp_n == 3)
			break;
	}
	CHECK(udp_n == 3, "the 3 ToS-0 datagrams reach a UDP socket through the stack (%d)",
	      udp_n);
	CHECK(!write_str("/sys/module/hpio/parameters/tos_value", "-1"),
	      "reset tos_value=-1");
	close(u);
	close(r);
	close(w);
	link_del("t0");
}

void test_stack(void)
{
	pid_t ns;
	int w, r;

	section("stack and namespaces");
	ns = netns_new();
	veth_add("p0", "p1", 0x90, 0x91);
	sh(IP " addr add 10.8.0.1/24 dev p0 && " IP " link set p1 netns %d", ns);
	ns_sh(ns, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1; " IP " link set lo up && "
	      IP " addr add 10.8.0.2/24 dev p1 && " IP " link set p1 up");
	CHECK(ping("10.8.0.2") == 0, "ping across p0 works without hpio files");

	w = hp_open("p0", O_WRONLY);
	CHECK(hp_sysfs("p0", "readers") == 0 && ping("10.8.0.2") == 0,
	      "a writer alone leaves p0's receive path alone (ping works)");
	r = hp_open("p0", O_RDONLY);
	CHECK(hp_sysfs("p0", "readers") == 1 && ping("10.8.0.2") != 0,
	      "with a reader open, replies are stolen (ping fails)");
	CHECK(hp_sysfs("p0", "rx_packets") > 0, "the stolen replies were counted");
	close(r);
	CHECK(hp_sysfs("p0", "readers") == 0 && ping("10.8.0.2") == 0,
	      "after the last reader closes, ping works again");
	close(w);

	test_netns_io(ns);
	link_del("p0");
	netns_kill(ns);
	test_tos();
}
