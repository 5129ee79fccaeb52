// SPDX-License-Identifier: GPL-2.0
/* Loading, device nodes, removal in every order, rx_handler ownership. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

void test_lifecycle_load(void)
{
	struct hpio_info info;
	pid_t ns;
	int fd;

	section("load");
	/* The original module failed to load when another namespace had a
	 * device of the same name: make one. */
	ns = netns_new();
	CHECK(ns > 0, "a second network namespace exists");
	veth_add("dup0", "dup1", 0xd0, 0xd1);
	sh(IP " link set dup1 netns %d", ns);
	ns_sh(ns, IP " link set dup1 name dup0 && " IP " link add nsonly0 type veth peer name nsonly1");

	CHECK(mod_load("ring_size=1") == -EINVAL, "insmod ring_size=1 fails with EINVAL");
	CHECK(mod_load("tos_value=300") == -EINVAL, "insmod tos_value=300 fails with EINVAL");
	CHECK(mod_load("tx_batch=0") == -EINVAL, "insmod tx_batch=0 fails with EINVAL");
	CHECK(!mod_loaded(), "module not loaded after refused parameters");
	CHECK(mod_load(NULL) == 0, "insmod hpio.ko");
	CHECK(path_exists("/dev/hpio/dup0") && !path_exists("/dev/hpio/lo"),
	      "/dev/hpio/dup0 exists, /dev/hpio/lo does not (loopback is not Ethernet)");
	CHECK(!path_exists("/dev/hpio/nsonly0") && !path_exists("/dev/hpio/dup1"),
	      "no nodes for devices of the other namespace");
	fd = hp_open("dup0", O_WRONLY);
	CHECK(fd >= 0 && !hp_info(fd, &info) && info.ifindex == if_nametoindex("dup0") &&
	      !strcmp(info.ifname, "dup0"),
	      "/dev/hpio/dup0 is the init_net dup0 (ifindex %u)", fd >= 0 ? info.ifindex : 0);
	CHECK(info.abi_version == HPIO_ABI_VERSION && info.hdr_version == 2 &&
	      info.hdrlen == 12, "GET_INFO: ABI %u, header version 2, hdrlen 12",
	      info.abi_version);
	CHECK(info.queue == HPIO_QUEUE_CPU && info.nqueues >= (uint32_t)ncpus() &&
	      (info.flags & HPIO_INFO_UP) && !(info.flags & HPIO_INFO_READER) &&
	      !(info.flags & HPIO_INFO_ATTACHED),
	      "GET_INFO: unbound, %u queues, up, not a reader, not attached", info.nqueues);
	if (fd >= 0)
		close(fd);
	netns_kill(ns);
	CHECK(wait_path("/dev/hpio/dup0", false, 10000),
	      "dup0 goes away with its peer when the namespace dies");
}

/* ARPHRD_* of a device, from sysfs. */
static long if_type(const char *ifname)
{
	return read_long("/sys/class/net/%s/type", ifname);
}

/* Every Ethernet device of init_net has a node, no other device has one. */
static void nodes_match_types(void)
{
	int missing = 0, extra = 0, ether = 0, other = 0;
	struct dirent *de;
	DIR *d;

	d = opendir("/sys/class/net");
	while (d && (de = readdir(d))) {
		char path[300];
		bool is_ether;

		if (de->d_name[0] == '.')
			continue;
		is_ether = if_type(de->d_name) == 1;	/* ARPHRD_ETHER */
		snprintf(path, sizeof(path), "/dev/hpio/%s", de->d_name);
		if (is_ether) {
			ether++;
			missing += !path_exists(path);
		} else {
			other++;
			extra += path_exists(path);
		}
	}
	if (d)
		closedir(d);
	CHECK(ether >= 3 && other >= 2 && !missing && !extra,
	      "every Ethernet device has a node (%d), no other device has one (%d): %d missing, %d extra",
	      ether, other, missing, extra);
}

struct publish {
	unsigned int major;
	bool old[256];		/* minors in use before the devices came */
	volatile bool created;
	int opened, bad;
	char why[96];
};

/* Open every new minor as soon as open() succeeds on it: the device must be
 * complete by then (a write reaches the down device: ENETDOWN). */
static void *publish_open(void *arg)
{
	struct publish *p = arg;
	bool done[256] = { false };
	uint64_t end = mono_ms() + 20000;
	int m, quiet = 0;

	while (mono_ms() < end && quiet < 20) {
		for (m = 0; m < 256; m++) {
			struct hpio_info info;
			char path[64];
			int fd;

			if (p->old[m] || done[m])
				continue;
			snprintf(path, sizeof(path), "/tmp/hpm/%d", m);
			fd = open(path, O_WRONLY);
			if (fd < 0)
				continue;
			done[m] = true;
			p->opened++;
			if (write(fd, &g_one, sizeof(g_one)) != -1 || errno != ENETDOWN) {
				if (!p->bad++)
					snprintf(p->why, sizeof(p->why), "minor %d: write %s", m,
						 strerrorname_np(errno) ?: "?");
			} else if (hp_info(fd, &info) || !info.ifindex ||
				   (info.flags & HPIO_INFO_GONE)) {
				if (!p->bad++)
					snprintf(p->why, sizeof(p->why), "minor %d: GET_INFO", m);
			}
			close(fd);
		}
		if (p->created)
			quiet++;	/* a few more passes once every device exists */
	}
	return NULL;
}

/* Devices are created while another thread opens their minors (through
 * nodes of its own, so that it need not wait for devtmpfs): an open never
 * finds a device that is not fully set up. */
static void publish_race(void)
{
	struct publish p = { 0 };
	struct dirent *de;
	pthread_t t;
	FILE *f;
	DIR *d;
	int m, i;

	f = fopen("/proc/devices", "r");
	if (f) {
		char line[64], name[32];
		unsigned int major;

		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "%u %31s", &major, name) == 2 && !strcmp(name, "hpio"))
				p.major = major;
		fclose(f);
	}
	d = opendir("/sys/class/hpio");
	while (d && (de = readdir(d))) {
		unsigned int maj, min;
		char path[300], buf[32] = "";
		int fd;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/hpio/%s/dev", de->d_name);
		fd = open(path, O_RDONLY);
		n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = 0;
		if (sscanf(buf, "%u:%u", &maj, &min) == 2 && min < 256)
			p.old[min] = true;
	}
	if (d)
		closedir(d);
	mkdir("/tmp/hpm", 0700);
	for (m = 0; m < 256; m++) {
		char path[64];

		snprintf(path, sizeof(path), "/tmp/hpm/%d", m);
		mknod(path, S_IFCHR | 0600, makedev(p.major, m));
	}
	f = fopen("/tmp/hpm.batch", "w");
	for (i = 0; f && i < 10; i++)
		fprintf(f, "link add pr%d type veth peer name pq%d\n", i, i);
	if (f)
		fclose(f);

	frame_fill(g_one.data, 60, 0x11, 0x10, 0, 0);
	slot_set(&g_one, 60);
	pthread_create(&t, NULL, publish_open, &p);
	sh(IP " -batch /tmp/hpm.batch");
	p.created = true;
	pthread_join(t, NULL);
	CHECK(p.major && p.opened == 20 && !p.bad,
	      "20 devices created while their minors are opened: %d opened, each complete (%d bad%s%s)",
	      p.opened, p.bad, p.bad ? ": " : "", p.why);
	for (i = 0; i < 10; i++)
		sh_timeout(20, IP " link del pr%d", i);
	sh("rm -rf /tmp/hpm /tmp/hpm.batch");
}

void test_nodes(void)
{
	struct stat st;

	section("device nodes");
	veth_add("nd0", "nd1", 0x10, 0x11);
	CHECK(path_exists("/dev/hpio/nd0") && path_exists("/dev/hpio/nd1"),
	      "nodes appear with new devices");
	CHECK(!stat("/dev/hpio/nd0", &st) && S_ISCHR(st.st_mode), "/dev/hpio/nd0 is a char device");
	CHECK(hp_sysfs("nd0", "queues") >= 1, "/sys/class/hpio/nd0/queues");

	/* Only Ethernet devices: a tun device (no link header) gets no node,
	 * a tap device (Ethernet) does. */
	CHECK(sh(IP " tuntap add mode tun name tn0 && " IP " tuntap add mode tap name tp0") == 0,
	      "create a tun and a tap device");
	CHECK(if_type("tn0") != 1 && !path_exists("/dev/hpio/tn0") &&
	      !path_exists("/sys/class/hpio/tn0"),
	      "no node for the tun device (type %ld)", if_type("tn0"));
	CHECK(if_type("tp0") == 1 && path_exists("/dev/hpio/tp0"), "a node for the tap device");
	nodes_match_types();
	sh(IP " link del tn0; " IP " link del tp0");

	link_del("nd0");
	CHECK(!path_exists("/dev/hpio/nd0") && !path_exists("/dev/hpio/nd1") &&
	      !path_exists("/sys/class/hpio/nd0"), "nodes and sysfs go with the devices");
	publish_race();
}

/* ---- blocking, poll ---- */

static void *delayed_send(void *arg)
{
	struct waiter *wt = arg;

	sleep_ms(wt->delay_ms);
	wt->ret = send_slots(wt->fd, &g_one, 1, 1);
	return NULL;
}

static void on_signal(int sig)
{
	(void)sig;
}

void test_blocking(void)
{
	struct waiter rd = { 0 }, sd = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	pthread_t t1, t2;
	struct pollfd p;
	struct slot g;
	uint64_t t0;
	int w, r, rn, ep, n;

	section("blocking, non-blocking, poll");
	veth_add("k0", "k1", 0x20, 0x21);
	frame_fill(g_one.data, 60, 0x21, 0x20, 0, 0);
	slot_set(&g_one, 60);
	w = hp_open("k0", O_WRONLY);
	r = hp_open("k1", O_RDONLY);
	rn = hp_open("k1", O_RDONLY | O_NONBLOCK);

	CHECK_ERR(readv(rn, &(struct iovec){ &g, sizeof(g) }, 1), EAGAIN,
		  "O_NONBLOCK readv of an empty ring");
	CHECK_ERR(read(rn, &g, sizeof(g)), EAGAIN, "O_NONBLOCK read of an empty ring");

	rd.fd = r;
	sd.fd = w;
	sd.delay_ms = 300;
	pthread_create(&t1, NULL, blocking_read, &rd);
	pthread_create(&t2, NULL, delayed_send, &sd);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	CHECK(rd.ret == 1 && rd.ms >= 250 && rd.ms < 5000,
	      "blocking readv sleeps until a frame arrives (%zd after %llu ms)",
	      rd.ret, (unsigned long long)rd.ms);

	sigaction(SIGUSR1, &sa, NULL);	/* no SA_RESTART */
	pthread_create(&t1, NULL, blocking_read, &rd);
	sleep_ms(200);
	pthread_kill(t1, SIGUSR1);
	pthread_join(t1, NULL);
	CHECK(rd.ret == -1 && rd.err == EINTR, "a signal interrupts a blocked readv (EINTR)");

	CHECK(!write_str("/sys/module/hpio/parameters/legacy_empty", "1"),
	      "set legacy_empty=1");
	CHECK(readv(r, &(struct iovec){ &g, sizeof(g) }, 1) == 0 && read(r, &g, sizeof(g)) == 0,
	      "legacy_empty: a blocking reader gets 0 from an empty ring");
	write_str("/sys/module/hpio/parameters/legacy_empty", "0");

	p = (struct pollfd){ .fd = rn, .events = POLLIN | POLLOUT };
	CHECK(poll(&p, 1, 0) == 0, "poll: empty read-only file is not ready");
	p = (struct pollfd){ .fd = w, .events = POLLIN | POLLOUT };
	CHECK(poll(&p, 1, 0) == 1 && p.revents == POLLOUT, "poll: a writer is writable");

	sd.delay_ms = 200;
	pthread_create(&t2, NULL, delayed_send, &sd);
	t0 = mono_ms();
	p = (struct pollfd){ .fd = rn, .events = POLLIN };
	n = poll(&p, 1, 10000);
	pthread_join(t2, NULL);
	CHECK(n == 1 && (p.revents & POLLIN) && mono_ms() - t0 >= 150 && mono_ms() - t0 < 5000,
	      "poll wakes when a frame arrives (%llu ms)", (unsigned long long)(mono_ms() - t0));
	CHECK(read(rn, &g, sizeof(g)) == 72, "and the frame is there");

	ep = epoll_create1(0);
	epoll_ctl(ep, EPOLL_CTL_ADD, rn, &(struct epoll_event){ .events = EPOLLIN });
	CHECK(epoll_wait(ep, &(struct epoll_event){ 0 }, 1, 0) == 0, "epoll: nothing ready");
	pthread_create(&t2, NULL, delayed_send, &sd);
	t0 = mono_ms();
	n = epoll_wait(ep, &(struct epoll_event){ 0 }, 1, 10000);
	pthread_join(t2, NULL);
	CHECK(n == 1 && mono_ms() - t0 >= 150 && mono_ms() - t0 < 5000,
	      "epoll wakes when a frame arrives (%llu ms)", (unsigned long long)(mono_ms() - t0));
	CHECK(read(rn, &g, sizeof(g)) == 72, "and the frame is there");
	close(ep);
	close(w);
	close(r);
	close(rn);
	link_del("k0");
}

/* ---- several readers ---- */

struct reader {
	int fd;
	int target;		/* stop when *total reaches it */
	int *total;
	pthread_mutex_t *lock;
	uint8_t *seen;
	int dups;
	int n;
};

/*
 * Sends @n frames in bursts of 32, never more than 256 ahead of what the
 * readers sharing @rd's counter took: the test is about sharing the ring,
 * and on a busy host the emulated CPUs may run the readers too late to
 * keep up with an unpaced sender (the ring would overflow, counted).
 */
static long send_paced(int w, struct slot *s, int n, struct reader *rd)
{
	uint64_t end = mono_ms() + 20000;
	long sent = 0;

	while (sent < n && mono_ms() < end) {
		long r;
		int taken;

		pthread_mutex_lock(rd->lock);
		taken = *rd->total;
		pthread_mutex_unlock(rd->lock);
		if (sent - taken >= 256) {
			sleep_ms(1);
			continue;
		}
		r = send_slots(w, s + sent, n - sent < 32 ? n - (int)sent : 32, 32);
		if (r < 0)
			return r;
		sent += r;
	}
	return sent;
}

static void *reader_loop(void *arg)
{
	struct reader *rd = arg;
	struct slot s[16];
	struct iovec iov[16];
	uint64_t end = mono_ms() + 20000;
	int i;

	for (i = 0; i < 16; i++)
		iov[i] = (struct iovec){ &s[i], sizeof(s[i]) };
	while (mono_ms() < end) {
		struct pollfd p = { .fd = rd->fd, .events = POLLIN };
		ssize_t n;
		bool done;

		pthread_mutex_lock(rd->lock);
		done = *rd->total >= rd->target;
		pthread_mutex_unlock(rd->lock);
		if (done)
			break;
		n = readv(rd->fd, iov, 16);
		if (n < 0) {
			poll(&p, 1, 20);
			continue;
		}
		pthread_mutex_lock(rd->lock);
		for (i = 0; i < n; i++) {
			uint32_t seq = frame_seq(s[i].data);

			if (!is_test_frame(s[i].data, s[i].hdr.pktlen) || seq >= (uint32_t)rd->target)
				continue;
			if (rd->seen[seq]++)
				rd->dups++;
			(*rd->total)++;
			rd->n++;
		}
		pthread_mutex_unlock(rd->lock);
	}
	return NULL;
}

struct flood {
	int fd;
	int cpu;
	volatile bool stop;
	long n;
};

static void *flood_loop(void *arg)
{
	struct flood *f = arg;
	struct slot s[16];
	struct iovec iov[16];
	int i;

	pin_cpu(f->cpu);
	for (i = 0; i < 16; i++) {
		frame_fill(s[i].data, 60 + i, 0x33, 0x32, i, 12);
		slot_set(&s[i], 60 + i);
		iov[i] = (struct iovec){ &s[i], sizeof(s[i]) };
	}
	while (!f->stop) {
		ssize_t n = writev(f->fd, iov, 16);

		if (n > 0)
			f->n += n;
		else if (errno != ENOBUFS)
			break;
	}
	return NULL;
}

/* Readers come and go while frames pour in on another CPU: the rx_handler
 * is installed and removed, rings allocated and freed under traffic. */
static void attach_churn(void)
{
	struct flood f = { .cpu = ncpus() > 1 ? 1 : 0 };
	int i, ok = 0, opened = 0;
	pthread_t t;
	long rx = 0;

	veth_add("s2", "s3", 0x32, 0x33);
	f.fd = hp_open("s2", O_WRONLY);
	pthread_create(&t, NULL, flood_loop, &f);
	for (i = 0; i < 100; i++) {
		int r = hp_open("s3", O_RDONLY | O_NONBLOCK);
		struct slot g[8];
		struct iovec iov[8];
		int k;

		if (r < 0)
			continue;
		opened++;
		for (k = 0; k < 8; k++)
			iov[k] = (struct iovec){ &g[k], sizeof(g[k]) };
		if (i % 2)
			sleep_ms(2);
		if (readv(r, iov, 8) >= 0 || errno == EAGAIN)
			ok++;
		close(r);
	}
	f.stop = true;
	pthread_join(t, NULL);
	rx = hp_sysfs("s3", "rx_packets");
	CHECK(opened == 100 && ok == 100 && f.n > 0,
	      "100 reader open/close cycles under a flood (%ld sent, %ld stolen)", f.n, rx);
	CHECK(hp_sysfs("s3", "readers") == 0 && hp_sysfs("s3", "ring_size") == 0,
	      "no reader and no ring left after the churn");
	close(f.fd);
	link_del("s2");
}

void test_readers(void)
{
	enum { N = 2000 };
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct reader a = { 0 }, b = { 0 };
	struct slot *s = calloc(N, sizeof(*s)), g[4];
	uint8_t *seen = calloc(N, 1);
	int w, w2, r1, r2, total = 0, i, missing = 0;
	pthread_t ta, tb;
	long before;

	section("several readers");
	veth_add("s0", "s1", 0x30, 0x31);
	for (i = 0; i < N; i++) {
		frame_fill(s[i].data, 60 + i % 200, 0x31, 0x30, i, 6);
		slot_set(&s[i], 60 + i % 200);
	}
	w = hp_open("s0", O_WRONLY);
	w2 = hp_open("s1", O_WRONLY);
	CHECK(hp_sysfs("s1", "readers") == 0, "a writer on s1 is not a reader");
	before = if_stat("s1", "rx_packets");
	send_slots(w, s, 10, 10);
	sleep_ms(50);
	CHECK(hp_sysfs("s1", "rx_packets") == 0 && if_stat("s1", "rx_packets") - before == 10,
	      "without readers frames go to the stack, not to hpio");

	r1 = hp_open("s1", O_RDONLY | O_NONBLOCK);
	r2 = hp_open("s1", O_RDONLY | O_NONBLOCK);
	CHECK(hp_sysfs("s1", "readers") == 2, "two readers counted");
	a = (struct reader){ .fd = r1, .target = N, .total = &total, .lock = &lock, .seen = seen };
	b = a;
	b.fd = r2;
	pthread_create(&ta, NULL, reader_loop, &a);
	pthread_create(&tb, NULL, reader_loop, &b);
	CHECK(send_paced(w, s, N, &a) == N, "send %d frames", N);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	for (i = 0; i < N; i++)
		missing += !seen[i];
	CHECK(total == N && !missing && !a.dups && !b.dups,
	      "two concurrent readers share the ring: %d + %d frames, %d missing, %d duplicates",
	      a.n, b.n, missing, a.dups + b.dups);

	close(r1);
	CHECK(hp_sysfs("s1", "readers") == 1, "one reader left");
	send_slots(w, s, 5, 5);
	CHECK(recv_slots(r2, g, 4, 5, 4, 2000) == 5, "frames still stolen for the remaining reader");
	close(r2);
	CHECK(hp_sysfs("s1", "readers") == 0 && hp_sysfs("s1", "ring_size") == 0,
	      "last reader gone: rings freed");
	before = hp_sysfs("s1", "rx_packets");
	send_slots(w, s, 5, 5);
	sleep_ms(50);
	CHECK(hp_sysfs("s1", "rx_packets") == before, "and frames are no longer stolen");
	close(w);
	close(w2);
	link_del("s0");
	free(s);
	free(seen);
	attach_churn();
}

/* ---- queues ---- */

struct cpu_job {
	int cpu;
	int fd;
	int n;
	bool recv;
	int got;
};

static void *on_cpu(void *arg)
{
	struct cpu_job *j = arg;
	struct slot g[32];

	pin_cpu(j->cpu);
	if (j->recv) {
		j->got = recv_slots(j->fd, g, 32, j->n, 32, 2000);
	} else {
		struct slot s[32];
		int i;

		for (i = 0; i < j->n && i < 32; i++) {
			frame_fill(s[i].data, 64, 0x41, 0x40, i, 7);
			slot_set(&s[i], 64);
		}
		j->got = (int)send_slots(j->fd, s, j->n, 32);
	}
	return NULL;
}

static void run_on(int cpu, int fd, int n, bool recv, int *got)
{
	struct cpu_job j = { .cpu = cpu, .fd = fd, .n = n, .recv = recv };
	pthread_t t;

	pthread_create(&t, NULL, on_cpu, &j);
	pthread_join(t, NULL);
	*got = j.got;
}

/* A device with several RX queues: frames go to the ring of the RX queue
 * recorded in the skb, whatever CPU received them. */
static void multiqueue(void)
{
	struct hpio_stats st;
	struct slot g[32];
	int w, r[4], q, got[4], hit = -1, rings = 0, all = 0;

	sh(IP " link add mq0 numtxqueues 4 numrxqueues 4 address 02:68:70:69:6f:42 type veth"
	   " peer name mq1 numtxqueues 4 numrxqueues 4 address 02:68:70:69:6f:43 && "
	   IP " link set mq0 up && " IP " link set mq1 up");
	w = hp_open("mq0", O_WRONLY);
	for (q = 0; q < 4; q++) {
		r[q] = hp_open("mq1", O_RDONLY | O_NONBLOCK);
		hp_bind(r[q], q);
	}
	hp_bind(w, 3);
	run_on(ncpus() > 1 ? 1 : 0, w, 20, false, &got[0]);
	for (q = 0; q < 4; q++) {
		got[q] = recv_slots(r[q], g, 32, 20, 32, q ? 100 : 1000);
		if (got[q]) {
			rings++;
			hit = q;
		}
		all += got[q];
	}
	CHECK(all == 20 && rings == 1, "4-queue veth: 20 frames from TX queue 3 land in one ring (%d)",
	      hit);
	CHECK(hit >= 0 && !hp_stats(r[0], hit, &st) && st.rx_packets == 20,
	      "and that queue counts them");
	CHECK(hit != 1 || ncpus() < 2, "the ring follows the RX queue, not the receiving CPU");
	for (q = 0; q < 4; q++)
		close(r[q]);
	close(w);
	link_del("mq0");
}

/* Bind @w to TX queue @txq and send @n frames from the calling thread. */
static void send_on(int w, uint32_t txq, int n)
{
	int i;

	hp_bind(w, txq);
	for (i = 0; i < n; i++)
		send_slots(w, &g_one, 1, 1);
}

/* Frames received before the readers look at ring @ring of @fd. */
static uint64_t ring_rx(int fd, uint32_t ring)
{
	struct hpio_stats st;

	return hp_stats(fd, ring, &st) ? 0 : st.rx_packets;
}

/*
 * More RX queues (4) than CPUs (2): rings 2 and 3 belong to no CPU.  An
 * unbound reader (classic hpio: one per CPU, or one alone) must still get
 * their frames, and poll/blocking reads on it must wake for them.  veth
 * records the sender's TX queue minus one as the RX queue: TX queues 3 and
 * 4 of ur0 feed rings 2 and 3 of ur1, TX queue 1 ring 0.
 */
static void unbound_rings(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct waiter sd = { 0 }, rd = { 0 };
	struct timespec ts;
	struct pollfd p;
	struct slot g[32];
	pthread_t t, t2;
	uint64_t t0;
	int w, ru, rb, got, n;

	sh(IP " link add ur0 numtxqueues 5 numrxqueues 1 address 02:68:70:69:6f:44 type veth"
	   " peer name ur1 numtxqueues 4 numrxqueues 4 address 02:68:70:69:6f:45 && "
	   IP " link set ur0 up && " IP " link set ur1 up");
	frame_fill(g_one.data, 60, 0x45, 0x44, 0, 0);
	slot_set(&g_one, 60);
	w = hp_open("ur0", O_WRONLY);
	ru = hp_open("ur1", O_RDONLY | O_NONBLOCK);
	rb = hp_open("ur1", O_RDONLY);
	CHECK(w >= 0 && ru >= 0 && rb >= 0, "ur1: 4 RX queues on %d CPUs, unbound readers", ncpus());

	send_on(w, 3, 10);
	send_on(w, 4, 10);
	sleep_ms(50);
	CHECK(ring_rx(ru, 2) == 10 && ring_rx(ru, 3) == 10,
	      "10 frames each on rings 2 and 3 (%llu, %llu)",
	      (unsigned long long)ring_rx(ru, 2), (unsigned long long)ring_rx(ru, 3));
	got = recv_slots(ru, g, 32, 20, 32, 2000);
	CHECK(got == 20, "an unbound reader on CPU 0 gets all 20 (%d)", got);
	if (ncpus() > 1) {
		send_on(w, 4, 10);
		run_on(1, ru, 10, true, &got);
		CHECK(got == 10, "an unbound reader on CPU 1 gets ring 3's frames (%d)", got);
	}

	/* poll waits on the rings the read takes from. */
	sd.fd = w;
	sd.delay_ms = 200;
	hp_bind(w, 4);
	pthread_create(&t, NULL, delayed_send, &sd);
	t0 = mono_ms();
	p = (struct pollfd){ .fd = ru, .events = POLLIN };
	n = poll(&p, 1, 5000);
	pthread_join(t, NULL);
	CHECK(n == 1 && (p.revents & POLLIN) && mono_ms() - t0 < 4000,
	      "unbound poll on CPU 0 wakes for a frame on ring 3 (%llu ms)",
	      (unsigned long long)(mono_ms() - t0));
	CHECK(read(ru, g, sizeof(g[0])) == 72, "and the read that follows gets it");

	hp_bind(w, 1);
	pthread_create(&t, NULL, delayed_send, &sd);
	t0 = mono_ms();
	p = (struct pollfd){ .fd = ru, .events = POLLIN };
	n = poll(&p, 1, 5000);
	pthread_join(t, NULL);
	CHECK(n == 1 && (p.revents & POLLIN) && ring_rx(ru, 0) == 1 && mono_ms() - t0 < 4000,
	      "and for a frame on its own ring 0 (%llu ms)", (unsigned long long)(mono_ms() - t0));
	CHECK(read(ru, g, sizeof(g[0])) == 72, "which the read gets");

	/* A blocking unbound readv sleeps until a frame lands on ring 2 (a
	 * signal ends it if it does not wake). */
	hp_bind(w, 3);
	rd.fd = rb;
	sigaction(SIGUSR1, &sa, NULL);
	pthread_create(&t, NULL, blocking_read, &rd);
	pthread_create(&t2, NULL, delayed_send, &sd);
	pthread_join(t2, NULL);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	if (pthread_timedjoin_np(t, NULL, &ts)) {
		pthread_kill(t, SIGUSR1);
		pthread_join(t, NULL);
	}
	CHECK(rd.ret == 1 && rd.ms >= 150 && rd.ms < 4000,
	      "a blocking unbound readv wakes for a frame on ring 2 (%zd after %llu ms)",
	      rd.ret, (unsigned long long)rd.ms);
	close(w);
	close(ru);
	close(rb);
	link_del("ur0");
}

struct shrink {
	int fd;
	volatile bool stop;
	long n;
	int err;
};

/* Send bursts of 16 on the file's TX queue until told to stop. */
static void *shrink_send(void *arg)
{
	struct shrink *sk = arg;
	struct slot s[16];
	struct iovec iov[16];
	int i;

	pin_cpu(ncpus() > 1 ? 1 : 0);
	for (i = 0; i < 16; i++) {
		frame_fill(s[i].data, 60 + i, 0x47, 0x46, i, 13);
		slot_set(&s[i], 60 + i);
		iov[i] = (struct iovec){ &s[i], sizeof(s[i]) };
	}
	while (!sk->stop) {
		ssize_t n = writev(sk->fd, iov, 16);

		if (n > 0) {
			sk->n += n;
		} else if (errno != ENOBUFS) {
			sk->err = errno;
			break;
		}
		usleep(1000);
	}
	return NULL;
}

/* Read test frames until told to stop and the ring is empty. */
static void *shrink_recv(void *arg)
{
	struct shrink *sk = arg;
	struct slot *g = calloc(64, sizeof(*g));

	for (;;) {
		int k = recv_slots(sk->fd, g, 64, 1 << 20, 64, 50);

		sk->n += k;
		if (!k && sk->stop)
			break;
	}
	free(g);
	return NULL;
}

/*
 * ethtool -L shrinks the TX queues under a writer bound to queue 3: the
 * module caps the queue inside its BH-off section, as the stack does, so
 * that the driver's synchronize_net covers it.  No warning, no frame lost.
 */
static void channels_shrink(void)
{
	struct shrink tx = { 0 }, rx = { 0 };
	struct hpio_stats st;
	pthread_t t1, t2;
	int i, ok = 0;

	sh(IP " link add lq0 numtxqueues 4 numrxqueues 4 address 02:68:70:69:6f:46 type veth"
	   " peer name lq1 numtxqueues 4 numrxqueues 4 address 02:68:70:69:6f:47 && "
	   IP " link set lq0 up && " IP " link set lq1 up");
	/* Deep rings: the emulated CPUs may run the reader late. */
	write_str("/sys/module/hpio/parameters/ring_size", "8192");
	tx.fd = hp_open("lq0", O_WRONLY);
	rx.fd = hp_open("lq1", O_RDONLY | O_NONBLOCK);
	write_str("/sys/module/hpio/parameters/ring_size", "1024");
	hp_bind(tx.fd, 3);
	pthread_create(&t1, NULL, shrink_send, &tx);
	pthread_create(&t2, NULL, shrink_recv, &rx);
	for (i = 0; i < 6; i++) {
		ok += sh("ethtool -L lq0 tx 1 >/dev/null 2>&1") == 0;
		ok += sh("ethtool -L lq0 tx 4 >/dev/null 2>&1") == 0;
	}
	tx.stop = true;
	pthread_join(t1, NULL);
	rx.stop = true;
	pthread_join(t2, NULL);
	hp_stats(tx.fd, HPIO_QUEUE_ALL, &st);
	CHECK(ok == 12, "ethtool -L lq0 tx 1 / tx 4, 6 times each, under traffic (%d ok)", ok);
	CHECK(!tx.err && tx.n > 0 && st.tx_packets == (uint64_t)tx.n && !st.tx_errors,
	      "the writer on TX queue 3 kept going: %ld frames sent and counted (%s)",
	      tx.n, tx.err ? strerrorname_np(tx.err) : "no error");
	CHECK(rx.n == tx.n, "all of them arrived (%ld of %ld, %ld ring drops)", rx.n, tx.n,
	      hp_sysfs("lq1", "rx_drops"));
	close(tx.fd);
	close(rx.fd);
	link_del("lq0");
}

void test_queues(void)
{
	struct hpio_stats q0, q1;
	struct slot g[32];
	char line[128];
	int w, r0, r1, ru, got, fd;
	ssize_t n;

	section("queues");
	/* Two TX queues (so queue 1 exists even on one CPU), one RX queue (so
	 * the receiving CPU picks the ring). */
	sh(IP " link add q0 numtxqueues 2 numrxqueues 1 address 02:68:70:69:6f:40 type veth"
	   " peer name q1 numtxqueues 2 numrxqueues 1 address 02:68:70:69:6f:41 && "
	   IP " link set q0 up && " IP " link set q1 up");
	w = hp_open("q0", O_WRONLY);
	r0 = hp_open("q1", O_RDONLY | O_NONBLOCK);
	r1 = hp_open("q1", O_RDONLY | O_NONBLOCK);
	ru = hp_open("q1", O_RDONLY | O_NONBLOCK);
	CHECK(!hp_bind(r0, 0) && !hp_bind(r1, 1), "bind readers to queues 0 and 1");

	/* TX: a bound writer counts on its queue whatever CPU it runs on. */
	CHECK(!hp_bind(w, 1), "bind the writer to queue 1");
	run_on(0, w, 20, false, &got);
	hp_stats(w, 1, &q1);
	hp_stats(w, 0, &q0);
	CHECK(got == 20 && q1.tx_packets == 20 && q0.tx_packets == 0,
	      "writer bound to queue 1 counts 20 frames on queue 1, none on 0");
	fd = open("/sys/class/hpio/q0/queue_stats", O_RDONLY);
	n = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;
	line[n > 0 ? n : 0] = 0;
	CHECK(!strcmp(line, "1 0 0 0 20 0 0\n"), "sysfs queue_stats: \"%.*s\"",
	      (int)strcspn(line, "\n"), line);
	if (fd >= 0)
		close(fd);
	hp_bind(w, HPIO_QUEUE_CPU);
	recv_slots(r0, g, 32, 32, 32, 100);
	recv_slots(r1, g, 32, 32, 32, 100);

	if (ncpus() < 2) {
		printf("     (one CPU: per-CPU ring checks skipped)\n");
	} else {
		/* RX on a single-queue device: the ring of the receiving CPU. */
		run_on(1, w, 20, false, &got);
		CHECK(recv_slots(r1, g, 32, 20, 32, 1000) == 20, "frames received on CPU 1 land in ring 1");
		CHECK(recv_slots(r0, g, 32, 1, 32, 100) == 0, "and not in ring 0");
		hp_stats(r1, 1, &q1);
		CHECK(q1.rx_packets == 20, "queue 1 counts them (%llu)",
		      (unsigned long long)q1.rx_packets);
		run_on(1, w, 10, false, &got);
		run_on(1, ru, 10, true, &got);
		CHECK(got == 10, "an unbound reader on CPU 1 reads ring 1 (%d)", got);
		run_on(1, w, 10, false, &got);
		run_on(0, ru, 10, true, &got);
		CHECK(got == 10, "an unbound reader on CPU 0 reads ring 1 too, after its own (%d)",
		      got);
		recv_slots(r1, g, 32, 32, 32, 100);
	}
	close(w);
	close(r0);
	close(r1);
	close(ru);
	link_del("q0");
	multiqueue();
	unbound_rings();
	channels_shrink();
}

void test_overflow(void)
{
	struct hpio_stats st;
	struct hpio_info info;
	struct slot *s = calloc(200, sizeof(*s)), *g = calloc(200, sizeof(*g));
	int w, r, i, got, inorder = 0;

	section("ring overflow");
	veth_add("o0", "o1", 0x50, 0x51);
	for (i = 0; i < 200; i++) {
		frame_fill(s[i].data, 100, 0x51, 0x50, i, 8);
		slot_set(&s[i], 100);
	}
	CHECK(!write_str("/sys/module/hpio/parameters/ring_size", "64"), "set ring_size=64");
	w = hp_open("o0", O_WRONLY);
	r = hp_open("o1", O_RDONLY | O_NONBLOCK);
	CHECK(!hp_info(r, &info) && info.ring_size == 64 && hp_sysfs("o1", "ring_size") == 64,
	      "a new reader gets 64-slot rings");
	CHECK(send_slots(w, s, 200, 32) == 200, "send 200 frames with nobody reading");
	for (i = 0; i < 100; i++) {	/* softirqs may run late */
		hp_stats(r, HPIO_QUEUE_ALL, &st);
		if (st.rx_packets + st.rx_drops >= 200)
			break;
		sleep_ms(20);
	}
	CHECK(st.rx_packets == 64 && st.rx_drops == 136,
	      "64 queued, 136 counted as rx_drops (%llu, %llu)",
	      (unsigned long long)st.rx_packets, (unsigned long long)st.rx_drops);
	CHECK(hp_sysfs("o1", "rx_drops") == 136, "sysfs rx_drops 136");
	got = recv_slots(r, g, 200, 200, 64, 300);
	for (i = 0; i < got && i < 200; i++)
		inorder += frame_seq(g[i].data) == (uint32_t)i;
	CHECK(got == 64 && inorder == 64, "the first 64 frames are read back in order (%d)", got);
	CHECK(send_slots(w, s, 10, 10) == 10 && recv_slots(r, g, 200, 10, 64, 2000) == 10,
	      "the ring works again after overflowing");
	write_str("/sys/module/hpio/parameters/ring_size", "1024");
	close(r);
	r = hp_open("o1", O_RDONLY);
	CHECK(!hp_info(r, &info) && info.ring_size == 1024, "ring_size=1024 applies to the next reader");
	close(r);
	close(w);
	link_del("o0");
	free(s);
	free(g);
}
