// SPDX-License-Identifier: GPL-2.0
/*
 * hpio_fuzz: a syscall fuzzer for hpio.ko, run in the test VM.
 *
 *   hpio_fuzz [-t SECONDS] [-s SEED] [-j THREADS] [-v]
 *
 * Worker threads run random open/close/read/readv/write/writev/ioctl/
 * poll/epoll calls on the /dev/hpio nodes of a few veth pairs (with -v also
 * eth0 and eth1, virtio-net): random iovec counts (0 to past IOV_MAX),
 * lengths, header versions and lengths, and bad user pointers (NULL,
 * kernel addresses, unmapped and read-only pages, buffers that run into an
 * unmapped page).  Files are shared: several threads work on one file, and
 * on different files of one device.  Meanwhile chaos threads delete and
 * re-create a veth pair, set links down and up, change MTUs, change queue
 * counts with ethtool -L, move a device to another namespace and back, and
 * try to unload the module, which must fail while a file is open.  A
 * signal thread interrupts blocking calls.
 *
 * Each thread draws from its own generator seeded from SEED (printed;
 * -s replays the same per-thread sequences, the interleaving differs).  At
 * the end: every result was one the ABI allows, the module unloads, and the
 * kernel log holds no oops, BUG, warning, lockup, hung task or sanitizer
 * report.  Prints the count of each operation and "N passed, M failed".
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NSLOTS		12
#define MAX_WORKERS	16
#define IOV_CAP		(IOV_MAX + 64)
#define ARENA		(256 * 1024)
#define PAGE		4096

enum { OP_OPEN, OP_CLOSE, OP_READ, OP_READV, OP_WRITE, OP_WRITEV, OP_IOCTL,
       OP_POLL, OP_EPOLL, OP_MISC, OP_NR };
static const char *const op_name[OP_NR] = {
	"open", "close", "read", "readv", "write", "writev", "ioctl", "poll",
	"epoll", "misc",
};

enum { CH_DELADD, CH_DOWNUP, CH_MTU, CH_CHANNELS, CH_NETNS, CH_RMMOD, CH_NR };
static const char *const ch_name[CH_NR] = {
	"del+add", "down+up", "mtu", "ethtool-L", "netns", "rmmod-refused",
};

struct fslot {
	pthread_rwlock_t lock;	/* ops hold it shared, close exclusive */
	int fd;
};

static struct fslot slots[NSLOTS];
static atomic_int stop_flag;
static atomic_ulong op_done[OP_NR], op_ok[OP_NR], ch_done[CH_NR];
static atomic_ulong unexpected;
static atomic_ulong rmmod_succeeded;
static uint64_t g_seed;
static bool g_virtio;
static const char *devs[8];
static int ndevs;

/* Bad user pointers: filled in by bad_init. */
static uint8_t *hole;		/* an unmapped page */
static uint8_t *edge;		/* a mapped page followed by an unmapped one */
static uint8_t *rdonly;		/* a read-only page */
static void *bad_ptrs[8];

/* ---- per-thread generator (xorshift64*) ---- */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static uint64_t below(uint64_t *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

static bool chance(uint64_t *s, unsigned int percent)
{
	return below(s, 100) < percent;
}

static void bad_init(void)
{
	uint8_t *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	edge = p;
	munmap(p + PAGE, PAGE);
	memset(edge, 0, PAGE);
	hole = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(hole, PAGE);
	rdonly = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bad_ptrs[0] = NULL;
	bad_ptrs[1] = (void *)16;
	bad_ptrs[2] = hole;
	bad_ptrs[3] = rdonly;
	bad_ptrs[4] = (void *)0xffff888000000000ull;	/* direct map */
	bad_ptrs[5] = (void *)0xffffffff81000000ull;	/* kernel text */
	bad_ptrs[6] = (void *)0x0000800000000000ull;	/* non-canonical */
	bad_ptrs[7] = edge + PAGE - 1;			/* 1 byte mapped */
}

/* A pointer that is bad in one of several ways, or runs off @edge. */
static void *bad_ptr_pick(uint64_t *s)
{
	if (chance(s, 30))
		return edge + PAGE - 1 - below(s, 200);
	return bad_ptrs[below(s, 8)];
}

/* ---- what the ABI allows ---- */

static bool errno_allowed(int op, int e)
{
	switch (e) {
	case EINVAL: case EFAULT: case EAGAIN: case EINTR: case ENOBUFS:
	case ENETDOWN: case ENODEV: case EBADF: case ENOMEM:
		return true;
	case ENOENT: case EBUSY: case EPERM: case ENXIO:
		return op == OP_OPEN;
	case ENOTTY:
		return op == OP_IOCTL;
	}
	return false;
}

static void result(int op, long ret, long max)
{
	int e = errno;

	atomic_fetch_add(&op_done[op], 1);
	if (ret >= 0 && ret <= max) {
		atomic_fetch_add(&op_ok[op], 1);
		return;
	}
	if (ret == -1 && errno_allowed(op, e))
		return;
	if (atomic_fetch_add(&unexpected, 1) < 10)
		printf("fuzz: unexpected %s result %ld (%s), at most %ld allowed\n",
		       op_name[op], ret, ret == -1 ? strerrorname_np(e) ?: "?" : "-",
		       max);
}

/* ---- building buffers ---- */

struct worker {
	pthread_t thread;
	atomic_int tid;		/* for the stall report */
	atomic_ulong steps;	/* operations begun: the stall check's progress */
	uint64_t rng;
	int epfd;
	uint8_t *arena;
	struct iovec *iov;
};

/* Fill a packet (header + frame) of room @len at @p, mostly valid. */
static void packet_fill(uint64_t *s, uint8_t *p, size_t len)
{
	struct hpio_hdr h = { .version = HPIO_HDR_VERSION, .hdrlen = HPIO_HDR_LEN };
	static const uint16_t types[] = { TEST_ETHERTYPE, 0x8100, 0x88a8, 0x0800 };
	size_t room = len >= sizeof(h) ? len - sizeof(h) : 0;
	uint16_t et;

	if (len < sizeof(h)) {
		memset(p, 0xa5, len);
		return;
	}
	if (chance(s, 10))
		h.version = (uint8_t)rnd(s);
	if (chance(s, 20))
		h.hdrlen = chance(s, 50) ? HPIO_HDR_LEN_WORDS : (uint8_t)rnd(s);
	switch (below(s, 8)) {
	case 0: h.pktlen = (uint16_t)rnd(s); break;
	case 1: h.pktlen = (uint16_t)below(s, 15); break;
	case 2: h.pktlen = room > 0xffff ? 0xffff : (uint16_t)room; break;
	case 3: h.pktlen = (uint16_t)(room + 1); break;
	default: h.pktlen = (uint16_t)(14 + below(s, room > 14 ? room - 13 : 1));
	}
	memcpy(p, &h, sizeof(h));
	if (room >= 14) {
		memset(p + sizeof(h), 0xff, 6);		/* broadcast */
		mac_of(0xf0, p + sizeof(h) + 6);
		et = htons(types[below(s, 4)]);
		memcpy(p + sizeof(h) + 12, &et, 2);
	}
}

/* A segment length: tiny, header-sized, slot-sized or large. */
static size_t seg_len(uint64_t *s)
{
	switch (below(s, 10)) {
	case 0: return 0;
	case 1: return below(s, 13);
	case 2: return 12 + below(s, 20);
	case 3: return 12 + 1514 + below(s, 8);
	case 4: return 12 + 9018;
	case 5: return below(s, 70000);
	default: return 12 + 60 + below(s, 2000);
	}
}

/* A buffer of @len bytes: mostly in the arena, sometimes bad. */
static void *buf_pick(struct worker *w, size_t len, bool fill)
{
	uint64_t *s = &w->rng;
	uint8_t *p;

	if (chance(s, 8))
		return bad_ptr_pick(s);
	if (len > ARENA)
		len = ARENA;
	p = w->arena + below(s, ARENA - len + 1);
	if (fill)
		packet_fill(s, p, len);
	return p;
}

/* An iovec array: count from 0 to past IOV_MAX, or a bad array. */
static struct iovec *iov_pick(struct worker *w, int *count, bool fill)
{
	uint64_t *s = &w->rng;
	int n, i;

	switch (below(s, 12)) {
	case 0: n = 0; break;
	case 1: n = IOV_MAX; break;
	case 2: n = IOV_MAX + 1 + (int)below(s, 63); break;
	case 3: n = (int)below(s, IOV_MAX); break;
	default: n = 1 + (int)below(s, 64);
	}
	*count = n;
	if (chance(s, 4))
		return bad_ptr_pick(s);
	for (i = 0; i < n; i++) {
		w->iov[i].iov_len = seg_len(s);
		if (w->iov[i].iov_len > 4096 && n > 64)
			w->iov[i].iov_len = 12 + 1514;
		w->iov[i].iov_base = buf_pick(w, w->iov[i].iov_len, fill);
	}
	/* An array that runs into the unmapped page. */
	if (n > 0 && chance(s, 3)) {
		size_t fit = (PAGE - 8) / sizeof(struct iovec);
		struct iovec *t = (struct iovec *)(edge + PAGE) - (n < (int)fit ? n : (int)fit);

		memcpy(t, w->iov, (n < (int)fit ? n : (int)fit) * sizeof(*t));
		*count = n + 1 + (int)below(s, 4);
		if (*count > IOV_MAX)
			*count = IOV_MAX;
		return t;
	}
	return w->iov;
}

/* ---- the workers ---- */

static int slot_get(uint64_t *s, int *fd)
{
	int i = (int)below(s, NSLOTS);

	pthread_rwlock_rdlock(&slots[i].lock);
	*fd = slots[i].fd;
	return i;
}

static void op_open(struct worker *w)
{
	static const int modes[] = { O_RDONLY, O_WRONLY, O_RDWR, O_RDWR };
	uint64_t *s = &w->rng;
	int i = (int)below(s, NSLOTS), flags, fd;

	flags = modes[below(s, 4)] | (chance(s, 70) ? O_NONBLOCK : 0);
	fd = hp_open(devs[below(s, ndevs)], flags);
	result(OP_OPEN, fd >= 0 ? 0 : -1, 0);
	if (fd < 0)
		return;
	if (chance(s, 30))
		hp_bind(fd, chance(s, 80) ? (uint32_t)below(s, 6) : HPIO_QUEUE_CPU);
	pthread_rwlock_wrlock(&slots[i].lock);
	if (slots[i].fd >= 0)
		close(slots[i].fd);
	slots[i].fd = fd;
	pthread_rwlock_unlock(&slots[i].lock);
}

static void op_close(struct worker *w)
{
	int i = (int)below(&w->rng, NSLOTS), fd;

	pthread_rwlock_wrlock(&slots[i].lock);
	fd = slots[i].fd;
	slots[i].fd = -1;
	if (fd >= 0)
		result(OP_CLOSE, close(fd), 0);
	pthread_rwlock_unlock(&slots[i].lock);
}

static void op_ioctl(struct worker *w, int fd)
{
	static const unsigned long cmds[] = {
		HPIO_IOC_GET_INFO, HPIO_IOC_BIND_QUEUE, HPIO_IOC_GET_STATS,
		HPIO_IOC_GET_STATS, _IOR('h', 0xa3, int), _IO('h', 0xa0),
	};
	union {
		struct hpio_info info;
		struct hpio_stats_req req;
		uint32_t q;
	} arg = {};
	uint64_t *s = &w->rng;
	unsigned long cmd = cmds[below(s, 6)];
	bool any = chance(s, 5);
	void *p = &arg;
	long r;

	/* A random number may name one of the VFS's own ioctls (FIONBIO...),
	 * with errnos of their own: only the module's are checked. */
	if (any)
		cmd = (unsigned long)rnd(s) & 0xffffffff;
	arg.req.queue = chance(s, 70) ? (uint32_t)below(s, 8) :
			chance(s, 50) ? HPIO_QUEUE_ALL : (uint32_t)rnd(s);
	arg.req.reserved = chance(s, 10) ? 1 : 0;
	if (chance(s, 15))
		p = bad_ptr_pick(s);
	else if (chance(s, 5))
		p = edge + PAGE - below(s, sizeof(arg));
	r = ioctl(fd, cmd, p);
	if (!any) {
		result(OP_IOCTL, r, 0);
		return;
	}
	atomic_fetch_add(&op_done[OP_IOCTL], 1);
	if (r == 0)
		atomic_fetch_add(&op_ok[OP_IOCTL], 1);
}

static void op_poll(struct worker *w, int fd)
{
	uint64_t *s = &w->rng;
	struct pollfd p[2] = {
		{ fd, POLLIN | POLLOUT, 0 },
		{ slots[below(s, NSLOTS)].fd, POLLIN, 0 },
	};

	result(OP_POLL, poll(p, 1 + (int)below(s, 2), (int)below(s, 20)), 2);
}

static void op_epoll(struct worker *w, int fd)
{
	struct epoll_event ev = { EPOLLIN | EPOLLOUT, { .fd = fd } }, out[4];
	uint64_t *s = &w->rng;
	int r;

	if (chance(s, 10)) {
		/* A set of its own, with the file in it, closed at once. */
		int ep = epoll_create1(EPOLL_CLOEXEC);

		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		r = epoll_wait(ep, out, 4, (int)below(s, 5));
		close(ep);
	} else {
		if (chance(s, 50))
			ev.events |= EPOLLET;
		epoll_ctl(w->epfd, chance(s, 70) ? EPOLL_CTL_ADD :
			  chance(s, 50) ? EPOLL_CTL_MOD : EPOLL_CTL_DEL, fd, &ev);
		r = epoll_wait(w->epfd, out, 4, (int)below(s, 10));
	}
	result(OP_EPOLL, r, 4);
}

static void op_misc(struct worker *w, int fd)
{
	uint64_t *s = &w->rng;
	uint8_t b[64];
	long r;

	switch (below(s, 5)) {
	case 0: r = lseek(fd, 0, SEEK_SET); break;
	case 1: r = pread(fd, b, sizeof(b), 0); break;
	case 2: r = fcntl(fd, F_SETFL, chance(s, 50) ? O_NONBLOCK : 0); break;
	case 3: r = (long)mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
		if (r != -1)
			munmap((void *)r, PAGE);
		r = r == -1 ? -1 : 0;
		break;
	default: r = fsync(fd);
	}
	atomic_fetch_add(&op_done[OP_MISC], 1);
	if (r >= 0)
		atomic_fetch_add(&op_ok[OP_MISC], 1);
}

static void op_io(struct worker *w, int op, int fd)
{
	uint64_t *s = &w->rng;
	struct iovec *iov;
	size_t len;
	long r;
	int n;

	switch (op) {
	case OP_READ:
		len = seg_len(s);
		r = read(fd, buf_pick(w, len, false), len);
		result(op, r, (long)len);
		break;
	case OP_WRITE:
		len = seg_len(s);
		r = write(fd, buf_pick(w, len, true), len);
		result(op, r, (long)len);
		break;
	case OP_READV:
		iov = iov_pick(w, &n, false);
		result(op, readv(fd, iov, n), n);
		break;
	default:
		iov = iov_pick(w, &n, true);
		result(op, writev(fd, iov, n), n);
	}
}

static void *worker_main(void *arg)
{
	/* Weights of OP_OPEN..OP_MISC. */
	static const unsigned int weight[OP_NR] = { 8, 6, 10, 20, 10, 20, 10, 5, 5, 3 };
	struct worker *w = arg;
	unsigned int total = 0, i, pick;
	int fd, slot;

	atomic_store(&w->tid, gettid());
	for (i = 0; i < OP_NR; i++)
		total += weight[i];
	while (!atomic_load(&stop_flag)) {
		atomic_fetch_add(&w->steps, 1);
		pick = (unsigned int)below(&w->rng, total);
		for (i = 0; pick >= weight[i]; i++)
			pick -= weight[i];
		if (i == OP_OPEN) {
			op_open(w);
			continue;
		}
		if (i == OP_CLOSE) {
			op_close(w);
			continue;
		}
		slot = slot_get(&w->rng, &fd);
		if (fd >= 0) {
			switch (i) {
			case OP_IOCTL: op_ioctl(w, fd); break;
			case OP_POLL: op_poll(w, fd); break;
			case OP_EPOLL: op_epoll(w, fd); break;
			case OP_MISC: op_misc(w, fd); break;
			default: op_io(w, (int)i, fd);
			}
		}
		pthread_rwlock_unlock(&slots[slot].lock);
	}
	return NULL;
}

/* ---- chaos ---- */

static pid_t g_netns;

static void veth_pair(const char *a, const char *b, int mac)
{
	sh(IP " link add %s numtxqueues 4 numrxqueues 4 address 02:68:70:69:6f:%02x"
	   " type veth peer name %s numtxqueues 4 numrxqueues 4"
	   " address 02:68:70:69:6f:%02x 2>/dev/null; " IP " link set %s up 2>/dev/null; "
	   IP " link set %s up 2>/dev/null", a, mac, b, mac + 1, a, b);
}

/* Devices the chaos threads change (the nodes the workers open). */
static const char *chaos_dev(uint64_t *s)
{
	static const char *const veths[] = { "fz0a", "fz0b", "fz1a", "fz2a" };

	if (g_virtio && chance(s, 40))
		return chance(s, 50) ? "eth0" : "eth1";
	return veths[below(s, 4)];
}

static void chaos_one(uint64_t *s)
{
	const char *d = chaos_dev(s);
	int c = (int)below(s, CH_NR), r = 0;

	switch (c) {
	case CH_DELADD:
		sh_timeout(30, IP " link del fz1a 2>/dev/null");
		veth_pair("fz1a", "fz1b", 0xf2);
		break;
	case CH_DOWNUP:
		r = sh_timeout(30, IP " link set %s down 2>/dev/null && " IP " link set %s up",
			       d, d);
		break;
	case CH_MTU:
		r = sh_timeout(30, IP " link set %s mtu %d 2>/dev/null", d,
			       chance(s, 50) ? 1500 : 68 + (int)below(s, 9000));
		break;
	case CH_CHANNELS:
		if (!strncmp(d, "eth", 3))
			r = sh_timeout(30, "ethtool -L %s combined %d 2>/dev/null", d, 1 + (int)below(s, 2));
		else
			r = sh_timeout(30, "ethtool -L %s rx %d tx %d 2>/dev/null", d,
				       1 + (int)below(s, 4), 1 + (int)below(s, 4));
		break;
	case CH_NETNS:
		r = sh_timeout(30, IP " link set fz2a netns %d 2>/dev/null", g_netns);
		sleep_ms((int)below(s, 50));
		r |= ns_sh(g_netns, IP " link set fz2a netns 1 2>/dev/null");
		sh(IP " link set fz2a up 2>/dev/null");
		break;
	case CH_RMMOD:
		r = (int)syscall(SYS_delete_module, "hpio", O_NONBLOCK);
		if (r == 0) {
			atomic_fetch_add(&rmmod_succeeded, 1);
			mod_load(NULL);
		}
		r = !r;	/* a refusal is what is counted */
		break;
	}
	if (r == 0)
		atomic_fetch_add(&ch_done[c], 1);
}

struct chaos {
	pthread_t thread;
	atomic_int tid;		/* for the stall report */
	atomic_ulong steps;	/* actions begun */
	uint64_t seed;
};

static void *chaos_main(void *arg)
{
	struct chaos *c = arg;
	uint64_t s = c->seed;

	atomic_store(&c->tid, gettid());
	while (!atomic_load(&stop_flag)) {
		atomic_fetch_add(&c->steps, 1);
		chaos_one(&s);
	}
	return NULL;
}

static void on_signal(int sig)
{
	(void)sig;
}

/* ---- the run ---- */

struct run {
	int secs, workers;
	struct worker w[MAX_WORKERS];
	struct chaos chaos[2];
};

static void setup_devices(void)
{
	int i;

	veth_pair("fz0a", "fz0b", 0xf0);
	veth_pair("fz1a", "fz1b", 0xf2);
	veth_pair("fz2a", "fz2b", 0xf4);
	ndevs = 0;
	devs[ndevs++] = "fz0a";
	devs[ndevs++] = "fz0b";
	devs[ndevs++] = "fz1a";
	devs[ndevs++] = "fz1b";
	devs[ndevs++] = "fz2a";
	if (g_virtio) {
		devs[ndevs++] = "eth0";
		devs[ndevs++] = "eth1";
	}
	for (i = 0; i < NSLOTS; i++) {
		pthread_rwlock_init(&slots[i].lock, NULL);
		slots[i].fd = -1;
	}
}

static void start(struct run *r)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int i;

	sigaction(SIGUSR1, &sa, NULL);	/* no SA_RESTART: EINTR */
	for (i = 0; i < r->workers; i++) {
		struct worker *w = &r->w[i];

		w->rng = g_seed ^ (0x9e3779b97f4a7c15ull * (i + 1));
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->arena = malloc(ARENA);
		w->iov = calloc(IOV_CAP, sizeof(*w->iov));
		memset(w->arena, 0x5a, ARENA);
		pthread_create(&w->thread, NULL, worker_main, w);
	}
	for (i = 0; i < 2; i++) {
		r->chaos[i].seed = g_seed ^ (0xc2b2ae3d27d4eb4full * (i + 1));
		pthread_create(&r->chaos[i].thread, NULL, chaos_main, &r->chaos[i]);
	}
}

/*
 * A thread that made no progress for STALL_SECS (or did not stop that long
 * after the end) is reported with its kernel stack, its children's, and
 * the kernel's list of blocked tasks, so that a hang in CI says where it is
 * instead of ending in the host's VM timeout.
 */
#define STALL_SECS	60

/* The kernel log, NUL-terminated (empty if unreadable; *@read says which). Free it. */
static char *read_klog(bool *read)
{
	int n = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf = malloc(n > 0 ? n + 1 : 1);
	int len = n > 0 ? klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, n) : -1;

	buf[len > 0 ? len : 0] = 0;
	if (read)
		*read = len >= 0;
	return buf;
}

/* Print @path's lines, each after @prefix. */
static void show_lines(const char *prefix, const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		printf("%s%s", prefix, line);
	fclose(f);
}

/* The first line of @path into @buf (empty when unreadable); false if unreadable. */
static bool first_line(const char *path, char *buf, int size)
{
	FILE *f = fopen(path, "r");
	bool ok = f && fgets(buf, size, f);

	if (!ok)
		buf[0] = 0;
	if (f)
		fclose(f);
	return ok;
}

/* One task: state, wait channel and kernel stack. */
static void show_task(const char *who, int pid, int tid)
{
	char path[96], stat[512], wchan[128];
	const char *state;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	first_line(path, stat, sizeof(stat));
	snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", pid, tid);
	first_line(path, wchan, sizeof(wchan));
	state = strrchr(stat, ')');
	printf("fuzz: stall: %s (pid %d tid %d): state %.1s, wchan %s\n", who, pid,
	       tid, state ? state + 2 : "?", wchan[0] ? wchan : "-");
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stack", pid, tid);
	show_lines("fuzz:     ", path);
}

/* Processes whose parent is @ppid (the chaos threads' sh and ip), and theirs. */
static void show_children(int ppid, int depth)
{
	char path[64], stat[512], comm[64];
	struct dirent *e;
	DIR *d = opendir("/proc");
	int pid, parent;

	if (!d)
		return;
	while ((e = readdir(d))) {
		pid = atoi(e->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (!first_line(path, stat, sizeof(stat)))
			continue;
		/* pid (comm) state ppid: comm may hold spaces, so from the ')' */
		if (!strrchr(stat, ')') || sscanf(strrchr(stat, ')') + 2, "%*c %d", &parent) != 1 ||
		    parent != ppid)
			continue;
		snprintf(comm, sizeof(comm), "child %.*s", (int)(strrchr(stat, ')') - strchr(stat, '(') - 1),
			 strchr(stat, '(') + 1);
		show_task(comm, pid, pid);
		if (depth < 3)
			show_children(pid, depth + 1);
	}
	closedir(d);
}

static void report_stall(struct run *r, const char *why)
{
	char who[32];
	char *buf, *from;
	int i;

	printf("fuzz: stall: %s; every thread and child process:\n", why);
	for (i = 0; i < r->workers; i++) {
		snprintf(who, sizeof(who), "worker %d", i);
		show_task(who, getpid(), atomic_load(&r->w[i].tid));
	}
	for (i = 0; i < 2; i++) {
		snprintf(who, sizeof(who), "chaos %d", i);
		show_task(who, getpid(), atomic_load(&r->chaos[i].tid));
	}
	show_children(getpid(), 1);
	/* Blocked tasks, from the kernel log (sysrq prints below the
	 * console's level). */
	write_str("/proc/sysrq-trigger", "w");
	buf = read_klog(NULL);
	/* From the last "sysrq:" line on. */
	from = NULL;
	for (char *at = strstr(buf, "sysrq:"); at; at = strstr(at + 1, "sysrq:"))
		from = at;
	for (char *line = from ? strtok(from, "\n") : NULL; line; line = strtok(NULL, "\n"))
		printf("fuzz:   klog: %s\n", line);
	if (!from)
		printf("fuzz:   (the kernel printed no blocked-task list)\n");
	free(buf);
	fflush(stdout);
}

/* The threads' progress, one number per thread. */
static void progress(struct run *r, unsigned long *now)
{
	int i;

	for (i = 0; i < r->workers; i++)
		now[i] = atomic_load(&r->w[i].steps);
	for (i = 0; i < 2; i++)
		now[r->workers + i] = atomic_load(&r->chaos[i].steps);
}

/*
 * Runs until the deadline, interrupting blocking calls every 50 ms.
 * Returns false when a thread stalled (reported; the run cannot end).
 */
static bool run_until(struct run *r, uint64_t end)
{
	unsigned long seen[MAX_WORKERS + 2], now[MAX_WORKERS + 2];
	uint64_t moved = mono_ms(), stop_at;
	bool joined[MAX_WORKERS] = { false };
	bool reported = false;
	int i, left;

	progress(r, seen);
	while (mono_ms() < end) {
		sleep_ms(50);
		for (i = 0; i < r->workers; i++)
			pthread_kill(r->w[i].thread, SIGUSR1);
		/* Every thread moved since the last check: progress. */
		progress(r, now);
		for (i = 0; i < r->workers + 2 && now[i] != seen[i]; i++)
			;
		if (i == r->workers + 2) {
			memcpy(seen, now, sizeof(now));
			moved = mono_ms();
		} else if (!reported && mono_ms() - moved > STALL_SECS * 1000) {
			report_stall(r, "a thread made no progress for 60 s");
			reported = true;
		}
	}
	atomic_store(&stop_flag, 1);
	stop_at = mono_ms();
	/*
	 * Keep interrupting every worker still running, not only the one
	 * being joined: a worker may wait for a file's lock (close) that
	 * another holds while it sleeps in a blocking read.
	 */
	for (left = r->workers; left;) {
		for (i = 0; i < r->workers; i++) {
			if (joined[i])
				continue;
			if (!pthread_tryjoin_np(r->w[i].thread, NULL)) {
				joined[i] = true;
				left--;
				continue;
			}
			pthread_kill(r->w[i].thread, SIGUSR1);
		}
		if (!left)
			break;
		sleep_ms(20);
		if (mono_ms() - stop_at > STALL_SECS * 1000) {
			report_stall(r, "a worker did not stop within 60 s of the end");
			return false;
		}
	}
	for (i = 0; i < r->workers; i++) {
		close(r->w[i].epfd);
		free(r->w[i].arena);
		free(r->w[i].iov);
	}
	for (i = 0; i < 2; i++) {
		while (pthread_tryjoin_np(r->chaos[i].thread, NULL)) {
			sleep_ms(20);
			if (mono_ms() - stop_at > STALL_SECS * 1000) {
				report_stall(r, "a chaos thread did not stop within 60 s of the end");
				return false;
			}
		}
	}
	for (i = 0; i < NSLOTS; i++)
		if (slots[i].fd >= 0)
			close(slots[i].fd);
	return !reported;
}

/* The kernel log must hold none of these (named in lower case in the
 * check lines: the host scans the console for the patterns themselves). */
static void check_klog(void)
{
	static const char *const bad[][2] = {
		{ "Oops", "oops" }, { "BUG:", "bug" }, { "WARNING:", "warning" },
		{ "soft lockup", "soft lockup" }, { "hard LOCKUP", "hard lockup" },
		{ "blocked for more than", "hung task" }, { "KASAN", "kasan" },
		{ "UBSAN", "ubsan" }, { "Call Trace", "call trace" },
		{ "general protection", "general protection fault" },
		{ "refcount_t", "refcount error" },
	};
	bool read;
	char *buf = read_klog(&read);
	unsigned int i;

	CHECK(read, "fuzz: read the kernel log");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!strstr(buf, bad[i][0]), "fuzz: kernel log: no %s", bad[i][1]);
	free(buf);
}

static void report(void)
{
	char line[512];
	int i, n = 0;

	n += snprintf(line + n, sizeof(line) - n, "fuzz: ops");
	for (i = 0; i < OP_NR; i++)
		n += snprintf(line + n, sizeof(line) - n, " %s=%lu/%lu", op_name[i],
			      atomic_load(&op_ok[i]), atomic_load(&op_done[i]));
	printf("%s (succeeded/done)\n", line);
	n = snprintf(line, sizeof(line), "fuzz: chaos");
	for (i = 0; i < CH_NR; i++)
		n += snprintf(line + n, sizeof(line) - n, " %s=%lu", ch_name[i],
			      atomic_load(&ch_done[i]));
	printf("%s\n", line);
}

int main(int argc, char **argv)
{
	struct run *r = calloc(1, sizeof(*r));
	uint64_t t0;
	int opt, holder, err;
	bool ended;

	setvbuf(stdout, NULL, _IOLBF, 0);
	r->secs = 60;
	r->workers = 4;
	g_seed = now_ns() ^ ((uint64_t)getpid() << 32);
	while ((opt = getopt(argc, argv, "t:s:j:v")) != -1) {
		switch (opt) {
		case 't': r->secs = atoi(optarg); break;
		case 's': g_seed = strtoull(optarg, NULL, 0); break;
		case 'j': r->workers = atoi(optarg); break;
		case 'v': g_virtio = true; break;
		default:
			fprintf(stderr, "usage: hpio_fuzz [-t SECONDS] [-s SEED] [-j THREADS] [-v]\n");
			return 2;
		}
	}
	if (r->workers < 1 || r->workers > MAX_WORKERS)
		r->workers = 4;
	if (!g_seed)
		g_seed = 1;
	printf("fuzz: seed %llu, %d s, %d worker threads, 2 chaos threads (replay: hpio_fuzz -s %llu)\n",
	       (unsigned long long)g_seed, r->secs, r->workers,
	       (unsigned long long)g_seed);
	/* Report hung tasks after 30 s, not 120 (the run may be shorter). */
	write_str("/proc/sys/kernel/hung_task_timeout_secs", "30");
	write_str("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	if (!mod_loaded())
		mod_load(NULL);
	CHECK(mod_loaded(), "fuzz: hpio.ko loaded");
	bad_init();
	setup_devices();
	g_netns = netns_new();
	CHECK(g_netns > 0, "fuzz: a second network namespace");
	/* Holds the module for the whole run: every rmmod must fail. */
	holder = hp_open("fz0a", O_WRONLY);
	CHECK(holder >= 0, "fuzz: a file held open for the whole run");

	t0 = mono_ms();
	start(r);
	ended = run_until(r, t0 + (uint64_t)r->secs * 1000);
	report();
	CHECK(ended, "fuzz: every thread kept making progress and stopped at the end");
	if (!ended) {
		/* Stuck threads keep the devices and the module busy. */
		printf("%d passed, %d failed\n", g_passed, g_failed);
		_exit(1);
	}
	CHECK(atomic_load(&unexpected) == 0,
	      "fuzz: every result was one the ABI allows (%lu were not)",
	      atomic_load(&unexpected));
	CHECK(atomic_load(&rmmod_succeeded) == 0 && atomic_load(&ch_done[CH_RMMOD]) > 0,
	      "fuzz: rmmod refused while a file was open (%lu times), never succeeded",
	      atomic_load(&ch_done[CH_RMMOD]));
	CHECK(atomic_load(&op_ok[OP_READV]) > 0 && atomic_load(&op_ok[OP_WRITEV]) > 0,
	      "fuzz: some readv and writev calls moved frames");

	close(holder);
	/* Put the devices back where they were, then unload. */
	ns_sh(g_netns, IP " link set fz2a netns 1 2>/dev/null");
	netns_kill(g_netns);
	sh(IP " link del fz0a; " IP " link del fz1a; " IP " link del fz2a 2>/dev/null");
	err = mod_unload();
	CHECK(err == 0, "fuzz: the module unloads cleanly at the end (%s)",
	      err ? strerrorname_np(-err) ?: "?" : "ok");
	check_klog();
	printf("fuzz: took %llu ms\n", (unsigned long long)(mono_ms() - t0));
	printf("%d passed, %d failed\n", g_passed, g_failed);
	return g_failed ? 1 : 0;
}
