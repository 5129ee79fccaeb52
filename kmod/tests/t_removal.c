// SPDX-License-Identifier: GPL-2.0
/* Device removal in every order, renaming, rx_handler owners, leaks,
 * the C example and unloading. */
#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- removal ---- */

static void *blocked_poll(void *arg)
{
	struct waiter *wt = arg;
	struct pollfd p = { .fd = wt->fd, .events = POLLIN };

	wt->ret = poll(&p, 1, 15000);
	wt->revents = p.revents;
	return NULL;
}

static void removal_while_blocked(void)
{
	struct waiter rd = { 0 }, pl = { 0 };
	struct hpio_info info;
	struct hpio_stats st;
	struct slot g;
	pthread_t t1, t2;
	int r, p, w, w1, old;
	uint64_t t0;

	sh(IP " link add d0 numrxqueues 2 numtxqueues 2 address 02:68:70:69:6f:60 type veth peer name d1 address 02:68:70:69:6f:61 && "
	   IP " link set d0 up && " IP " link set d1 up");
	r = hp_open("d0", O_RDONLY);
	p = hp_open("d0", O_RDONLY | O_NONBLOCK);
	w = hp_open("d0", O_WRONLY);
	w1 = hp_open("d1", O_WRONLY);
	hp_bind(r, 1);
	hp_bind(p, 1);
	frame_fill(g_one.data, 60, 0x60, 0x61, 0, 0);
	slot_set(&g_one, 60);
	send_slots(w1, &g_one, 1, 1);
	send_slots(w1, &g_one, 1, 1);
	send_slots(w1, &g_one, 1, 1);		/* queued on ring 0 */
	rd.fd = r;
	pl.fd = p;
	pthread_create(&t1, NULL, blocking_read, &rd);
	pthread_create(&t2, NULL, blocked_poll, &pl);
	sleep_ms(300);
	t0 = mono_ms();
	CHECK(link_del("d0") == 0 && mono_ms() - t0 < 5000,
	      "ip link del with a blocked reader, a poller and queued frames returns (%llu ms)",
	      (unsigned long long)(mono_ms() - t0));
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	CHECK(rd.ret == -1 && rd.err == ENODEV, "the blocked readv returns ENODEV");
	CHECK(pl.ret == 1 && (pl.revents & POLLHUP) && (pl.revents & POLLERR),
	      "the blocked poll returns POLLHUP|POLLERR");
	CHECK_ERR(writev(w, &(struct iovec){ &g_one, sizeof(g_one) }, 1), ENODEV, "writev after removal");
	CHECK_ERR(write(w, &g_one, sizeof(g_one)), ENODEV, "write after removal");
	CHECK_ERR(readv(p, &(struct iovec){ &g, sizeof(g) }, 1), ENODEV, "readv after removal");
	CHECK_ERR(read(r, &g, sizeof(g)), ENODEV, "read after removal");
	CHECK(!hp_info(w, &info) && (info.flags & HPIO_INFO_GONE) && !info.ifindex,
	      "GET_INFO reports the device gone");
	CHECK_ERR(hp_bind(w, 0), ENODEV, "BIND_QUEUE after removal");
	CHECK(!hp_stats(r, HPIO_QUEUE_ALL, &st) && st.rx_packets == 3,
	      "counters stay readable (%llu rx)", (unsigned long long)st.rx_packets);
	CHECK(!path_exists("/dev/hpio/d0") && !path_exists("/dev/hpio/d1") &&
	      !path_exists("/sys/class/hpio/d0"), "nodes and sysfs are gone");

	/* A new device with the old name is a new device. */
	old = p;
	veth_add("d0", "d1", 0x60, 0x61);
	CHECK_ERR(read(old, &g, sizeof(g)), ENODEV, "an old file stays dead when the name comes back");
	p = hp_open("d0", O_RDONLY | O_NONBLOCK);
	w1 = (close(w1), hp_open("d1", O_WRONLY));
	CHECK(send_slots(w1, &g_one, 1, 1) == 1 && recv_slots(p, &g, 1, 1, 1, 2000) == 1,
	      "a new file on the new d0 works");
	close(r);
	close(old);
	close(w);
	close(p);
	close(w1);
	link_del("d0");
}

struct churn {
	int fd;
	bool tx;
	long n;
	int err;
};

static void *churn_loop(void *arg)
{
	struct churn *c = arg;
	struct slot s[8];
	struct iovec iov[8];
	int i;

	for (i = 0; i < 8; i++) {
		frame_fill(s[i].data, 60 + i, 0x81, 0x80, i, 9);
		slot_set(&s[i], 60 + i);
		iov[i] = (struct iovec){ &s[i], sizeof(s[i]) };
	}
	for (;;) {
		ssize_t n = c->tx ? writev(c->fd, iov, 8) : readv(c->fd, iov, 8);

		if (n < 0 && errno != ENOBUFS && errno != EINTR) {
			c->err = errno;
			return NULL;
		}
		if (n > 0)
			c->n += n;
		if (c->tx && (c->n & 63) == 0)
			usleep(100);
	}
}

static void removal_under_traffic(void)
{
	struct churn tx = { .tx = true }, rx = { 0 };
	pthread_t t1, t2;

	veth_add("x0", "x1", 0x80, 0x81);
	tx.fd = hp_open("x0", O_WRONLY);
	rx.fd = hp_open("x1", O_RDONLY);
	pthread_create(&t1, NULL, churn_loop, &tx);
	pthread_create(&t2, NULL, churn_loop, &rx);
	sleep_ms(800);
	CHECK(link_del("x0") == 0, "ip link del while frames flow");
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	/* The device goes down before it goes away: a writer may see either. */
	CHECK((tx.err == ENODEV || tx.err == ENETDOWN) && rx.err == ENODEV &&
	      tx.n > 0 && rx.n > 0,
	      "writer stops with %s, reader with %s (%ld sent, %ld received)",
	      strerrorname_np(tx.err), strerrorname_np(rx.err), tx.n, rx.n);
	close(tx.fd);
	close(rx.fd);
}

static void removal_orders(void)
{
	struct slot g;
	int r, w;

	veth_add("y0", "y1", 0x62, 0x63);
	r = hp_open("y0", O_RDONLY);
	close(r);
	CHECK(link_del("y0") == 0, "close then delete");

	veth_add("y0", "y1", 0x62, 0x63);
	r = hp_open("y0", O_RDONLY);
	w = hp_open("y1", O_WRONLY);
	frame_fill(g_one.data, 60, 0x62, 0x63, 0, 0);
	slot_set(&g_one, 60);
	send_slots(w, &g_one, 1, 1);
	CHECK(link_del("y0") == 0, "delete with frames queued and no call in progress");
	CHECK_ERR(read(r, &g, sizeof(g)), ENODEV, "queued frames are dropped: read gets ENODEV");
	close(r);
	close(w);
}

static void removal_netns(void)
{
	struct slot g;
	pid_t ns = netns_new();
	int r, w, r2;

	veth_add("n0", "n1", 0x64, 0x65);
	r = hp_open("n0", O_RDONLY);
	sh(IP " link set n0 netns %d", ns);
	CHECK(!path_exists("/dev/hpio/n0"), "moving n0 to another namespace removes its node");
	CHECK_ERR(read(r, &g, sizeof(g)), ENODEV, "an open file gets ENODEV after the move");
	ns_sh(ns, IP " link set n0 netns 1");
	CHECK(path_exists("/dev/hpio/n0"), "moving it back creates the node again");
	sh(IP " link set n0 up");
	r2 = hp_open("n0", O_RDONLY | O_NONBLOCK);
	w = hp_open("n1", O_WRONLY);
	frame_fill(g_one.data, 60, 0x64, 0x65, 0, 0);
	slot_set(&g_one, 60);
	CHECK(send_slots(w, &g_one, 1, 1) == 1 && recv_slots(r2, &g, 1, 1, 1, 2000) == 1,
	      "and a new file on it works");
	close(r);
	close(r2);
	close(w);
	netns_kill(ns);
	link_del("n0");
}

static void rename_open(void)
{
	struct hpio_info info;
	struct slot g[4];
	int r, w;

	veth_add("rn0", "rn1", 0x66, 0x67);
	r = hp_open("rn0", O_RDONLY | O_NONBLOCK);
	w = hp_open("rn1", O_WRONLY);
	sh(IP " link set rn0 down && " IP " link set rn0 name rn9 && " IP " link set rn9 up");
	CHECK(path_exists("/dev/hpio/rn9") && !path_exists("/dev/hpio/rn0") &&
	      hp_sysfs("rn9", "readers") == 1, "renaming moves the node and sysfs to rn9");
	CHECK(!hp_info(r, &info) && !strcmp(info.ifname, "rn9"), "GET_INFO shows the new name");
	frame_fill(g_one.data, 60, 0x66, 0x67, 0, 0);
	slot_set(&g_one, 60);
	CHECK(send_slots(w, &g_one, 1, 1) == 1 && recv_slots(r, g, 4, 1, 4, 2000) == 1,
	      "a file opened before the rename keeps receiving");
	close(r);
	r = hp_open("rn9", O_RDONLY);
	CHECK(r >= 0, "/dev/hpio/rn9 opens");
	close(r);
	close(w);
	link_del("rn9");
}

void test_removal(void)
{
	section("device removal and renaming");
	removal_while_blocked();
	removal_under_traffic();
	removal_orders();
	removal_netns();
	rename_open();
}

/* ---- rx_handler owned by someone else ---- */

void test_busy(void)
{
	int r, w, rb;

	section("devices owned by a bridge or macvlan");
	veth_add("b0", "b1", 0x70, 0x71);
	CHECK(sh(IP " link add mv0 link b0 type macvlan") == 0, "macvlan on b0");
	r = hp_open("b0", O_RDONLY);
	CHECK(r < 0 && errno == EBUSY, "reader open fails with EBUSY under macvlan");
	w = hp_open("b0", O_WRONLY);
	rb = hp_open("b1", O_RDONLY | O_NONBLOCK);
	frame_fill(g_one.data, 60, 0x71, 0x70, 0, 0);
	slot_set(&g_one, 60);
	CHECK(w >= 0 && send_slots(w, &g_one, 1, 1) == 1 &&
	      recv_slots(rb, &(struct slot){ 0 }, 1, 1, 1, 2000) == 1,
	      "a writer still works under macvlan");
	sh(IP " link del mv0");
	r = hp_open("b0", O_RDONLY);
	CHECK(r >= 0, "reader opens once macvlan is gone");
	CHECK(sh(IP " link add mv1 link b0 type macvlan 2>/dev/null") != 0,
	      "macvlan cannot take b0 while hpio reads it");
	CHECK(sh(IP " link add br0 type bridge && " IP " link set br0 up") == 0, "bridge br0");
	CHECK(sh(IP " link set b0 master br0 2>/dev/null") != 0,
	      "the bridge cannot take b0 while hpio reads it");
	close(r);
	CHECK(sh(IP " link set b0 master br0") == 0, "the bridge takes b0 after the reader closes");
	r = hp_open("b0", O_RDONLY);
	CHECK(r < 0 && errno == EBUSY, "reader open fails with EBUSY on a bridge port");
	sh(IP " link set b0 nomaster");
	r = hp_open("b0", O_RDONLY);
	CHECK(r >= 0, "reader opens after leaving the bridge");
	close(r);
	close(w);
	close(rb);
	link_del("br0");
	link_del("b0");
}

/* ---- the C example ---- */

void test_example(void)
{
	struct slot *g = calloc(700, sizeof(*g));
	int r, got, rc, good = 0, i;

	section("C example");
	veth_add("ex0", "ex1", 0x72, 0x73);
	r = hp_open("ex1", O_RDONLY | O_NONBLOCK);
	rc = sh(EXAMPLE_PATH " ex0 20");
	CHECK(rc == 0, "hpio_example ex0 20 exits 0");
	got = recv_slots(r, g, 700, 640, 64, 3000);
	for (i = 0; i < got && i < 700; i++)
		good += g[i].hdr.pktlen == 60 && !memcmp(g[i].data, g[0].data, 60);
	CHECK(got == 640 && good == 640, "its 20 bursts of 32 identical frames arrive (%d)", got);
	close(r);
	link_del("ex0");
	free(g);
}

/* ---- unloading ---- */

void test_unload(void)
{
	int fd, i, ok = 0, ret;

	section("unload");
	veth_add("u0", "u1", 0x74, 0x75);
	fd = hp_open("u1", O_WRONLY);
	ret = mod_unload();
	CHECK(ret == -EWOULDBLOCK && mod_loaded() && read_long("/sys/module/hpio/refcnt") > 0,
	      "rmmod with a file open fails (%s) and the module stays", strerrorname_np(-ret));
	close(fd);
	fd = hp_open("u0", O_RDONLY);
	CHECK(mod_unload() == -EWOULDBLOCK, "rmmod with a reader attached fails");
	close(fd);
	CHECK(mod_unload() == 0 && !mod_loaded() && !path_exists("/dev/hpio/u1"),
	      "rmmod after the last close succeeds and removes the nodes");
	for (i = 0; i < 50; i++) {
		if (mod_load(i % 2 ? "ring_size=128 tx_batch=8" : NULL))
			break;
		fd = hp_open("u0", O_RDWR);
		frame_fill(g_one.data, 60, 0x75, 0x74, i, 0);
		slot_set(&g_one, 60);
		if (fd < 0 || write(fd, &g_one, sizeof(g_one)) != 72)
			break;
		close(fd);
		if (mod_unload())
			break;
		ok++;
	}
	CHECK(ok == 50, "load, open, write, close, unload: %d of 50 rounds", ok);
	CHECK(!mod_loaded(), "module unloaded at the end");
	link_del("u0");
}

/* ---- leaks ---- */

/* Active objects of a slab cache, from /proc/slabinfo. */
static long slab_active(const char *cache)
{
	char line[512], name[64];
	long active = -1, n;
	FILE *f = fopen("/proc/slabinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %ld", name, &n) == 2 && !strcmp(name, cache))
			active = n;
	if (f)
		fclose(f);
	return active;
}

/* Queue @n frames to a reader of l1, then let @how free them ("read":
 * the reader reads them all first, then closes). */
static long queued_then(int n, const char *how)
{
	struct slot *s = calloc(n, sizeof(*s));
	long before, after;
	int w, r, i, got;

	veth_add("l0", "l1", 0x76, 0x77);
	for (i = 0; i < n; i++) {
		frame_fill(s[i].data, 200, 0x77, 0x76, i, 11);
		slot_set(&s[i], 200);
	}
	sleep_ms(100);
	before = slab_active("skbuff_head_cache");
	w = hp_open("l0", O_WRONLY);
	r = hp_open("l1", O_RDONLY);
	send_slots(w, s, n, 32);
	close(w);
	if (!strcmp(how, "read")) {
		/* 7 per readv, so the last read is short: every frame a
		 * read takes must be freed, whatever the read's size. */
		got = recv_slots(r, s, n, n, 7, 5000);
		CHECK(got == n, "the reader reads all %d queued frames (%d)", n, got);
	}
	if (!strcmp(how, "delete")) {
		link_del("l0");
		close(r);
	} else {
		close(r);
		link_del("l0");
	}
	sleep_ms(100);
	after = slab_active("skbuff_head_cache");
	free(s);
	printf("     skbuff_head_cache: %ld before, %ld after (%s)\n", before, after, how);
	return after - before;
}

void test_leaks(void)
{
	long d;

	section("leaks");
	if (slab_active("skbuff_head_cache") < 0) {
		printf("     (no skbuff_head_cache in /proc/slabinfo: skipped)\n");
		return;
	}
	d = queued_then(1000, "close");
	CHECK(d < 300, "1000 queued frames are freed when the last reader closes (%+ld skbs)", d);
	d = queued_then(1000, "delete");
	CHECK(d < 300, "1000 queued frames are freed when the device is deleted (%+ld skbs)", d);
	d = queued_then(1000, "read");
	CHECK(d < 300, "1000 frames read 7 at a time are freed as they are read (%+ld skbs)", d);
}
