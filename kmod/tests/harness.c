// SPDX-License-Identifier: GPL-2.0
/* Helpers for the hpio.ko VM tests. */
#include "harness.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int g_passed, g_failed;
void *volatile bad_ptr = (void *)16;

static void vreport(bool ok, const char *file, int line, const char *extra,
		    const char *fmt, va_list ap)
{
	printf("%s ", ok ? "ok  " : "FAIL");
	vprintf(fmt, ap);
	if (!ok)
		printf("  [%s:%d%s%s]", file, line, extra ? " " : "",
		       extra ? extra : "");
	printf("\n");
	fflush(stdout);
	if (ok)
		g_passed++;
	else
		g_failed++;
}

void check(bool ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(ok, file, line, NULL, fmt, ap);
	va_end(ap);
}

void check_err(long ret, int err, int want, const char *file, int line,
	       const char *fmt, ...)
{
	char extra[96];
	va_list ap;
	bool ok = ret == -1 && err == want;

	if (ret == -1)
		snprintf(extra, sizeof(extra), "got %s, want %s",
			 strerrorname_np(err) ?: "?", strerrorname_np(want) ?: "?");
	else
		snprintf(extra, sizeof(extra), "returned %ld, want %s", ret,
			 strerrorname_np(want) ?: "?");
	va_start(ap, fmt);
	vreport(ok, file, line, extra, fmt, ap);
	va_end(ap);
}

void section(const char *name)
{
	static uint64_t t0;
	uint64_t now = mono_ms();

	/* With the time the previous section took: the suite's budget is
	 * tight under TCG. */
	if (t0)
		printf("     (%llu ms)\n", (unsigned long long)(now - t0));
	t0 = now;
	printf("=== %s\n", name);
	fflush(stdout);
}

static int run_cmd(int secs, const char *cmd)
{
	uint64_t deadline = mono_ms() + (uint64_t)secs * 1000;
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		pid_t r = waitpid(pid, &status, secs ? WNOHANG : 0);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (r < 0)
			return -1;
		if (mono_ms() > deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			printf("     (timed out: %s)\n", cmd);
			return -2;
		}
		sleep_ms(20);
	}
}

int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return run_cmd(0, cmd);
}

int sh_timeout(int secs, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return run_cmd(secs, cmd);
}

pid_t netns_new(void)
{
	int ready[2];
	pid_t pid;
	char c;

	if (pipe(ready))
		return -1;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (unshare(CLONE_NEWNET))
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1) {
		close(ready[0]);
		return -1;
	}
	close(ready[0]);
	return pid;
}

void netns_kill(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

static int enter_ns(pid_t pid)
{
	char path[64];
	int fd, ret;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ret = setns(fd, CLONE_NEWNET);
	close(fd);
	return ret;
}

int ns_run(pid_t pid, int (*fn)(void *), void *arg)
{
	int status;
	pid_t child;

	fflush(stdout);
	child = fork();
	if (child < 0)
		return -1;
	if (child == 0) {
		if (enter_ns(pid))
			_exit(126);
		fflush(stdout);
		_exit(fn(arg));
	}
	if (waitpid(child, &status, 0) != child)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

pid_t ns_spawn(pid_t pid, int (*fn)(void *), void *arg)
{
	pid_t child;

	fflush(stdout);
	child = fork();
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (pid > 0 && enter_ns(pid))
			_exit(126);
		_exit(fn(arg));
	}
	return child;
}

int child_wait(pid_t child)
{
	int status;

	if (child <= 0 || waitpid(child, &status, 0) != child)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int ns_cmd(void *arg)
{
	return run_cmd(0, arg);
}

int ns_sh(pid_t pid, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return ns_run(pid, ns_cmd, cmd);
}

void pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

int ncpus(void)
{
	return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

bool path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

bool wait_path(const char *path, bool exists, int timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;

	while (path_exists(path) != exists) {
		if (mono_ms() > end)
			return false;
		sleep_ms(10);
	}
	return true;
}

long read_long(const char *fmt, ...)
{
	char path[256], buf[64];
	va_list ap;
	ssize_t n;
	int fd;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 0);
}

int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

int mod_load(const char *params)
{
	int fd = open(MODULE_PATH, O_RDONLY | O_CLOEXEC);
	long ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, params ? params : "", 0);
	ret = ret ? -errno : 0;
	close(fd);
	return (int)ret;
}

int mod_unload(void)
{
	return syscall(SYS_delete_module, "hpio", O_NONBLOCK) ? -errno : 0;
}

bool mod_loaded(void)
{
	return path_exists("/sys/module/hpio");
}

void mac_of(int last, uint8_t mac[6])
{
	static const uint8_t prefix[5] = { 0x02, 0x68, 0x70, 0x69, 0x6f };

	memcpy(mac, prefix, 5);
	mac[5] = (uint8_t)last;
}

int veth_add(const char *a, const char *b, int mac_a, int mac_b)
{
	return sh(IP " link add %s address 02:68:70:69:6f:%02x type veth peer name %s address 02:68:70:69:6f:%02x"
		  " && " IP " link set %s up && " IP " link set %s up",
		  a, mac_a, b, mac_b, a, b);
}

int link_del(const char *name)
{
	return sh_timeout(20, IP " link del %s", name);
}

long if_stat(const char *ifname, const char *counter)
{
	return read_long("/sys/class/net/%s/statistics/%s", ifname, counter);
}

int packet_socket(const char *ifname, bool rx, bool vnet)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = rx ? htons(ETH_P_ALL) : 0,
		.sll_ifindex = (int)if_nametoindex(ifname),
	};
	int fd, one = 1;

	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (vnet && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)))
		goto err;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)))
		goto err;
	return fd;
err:
	close(fd);
	return -1;
}

int hp_open(const char *ifname, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/hpio/%s", ifname);
	return open(path, flags | O_CLOEXEC);
}

int hp_bind(int fd, uint32_t queue)
{
	return ioctl(fd, HPIO_IOC_BIND_QUEUE, &queue);
}

int hp_stats(int fd, uint32_t queue, struct hpio_stats *s)
{
	struct hpio_stats_req req = { .queue = queue };
	int ret = ioctl(fd, HPIO_IOC_GET_STATS, &req);

	if (!ret)
		*s = req.stats;
	return ret;
}

int hp_info(int fd, struct hpio_info *info)
{
	return ioctl(fd, HPIO_IOC_GET_INFO, info);
}

long hp_sysfs(const char *ifname, const char *attr)
{
	return read_long("/sys/class/hpio/%s/%s", ifname, attr);
}

static uint32_t mix(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352d;
	x ^= x >> 15;
	x *= 0x846ca68b;
	x ^= x >> 16;
	return x;
}

void frame_fill(uint8_t *buf, size_t len, int dst, int src, uint32_t seq,
		uint32_t seed)
{
	uint8_t head[18];
	uint32_t r = mix(seed ^ mix(seq));
	size_t i;

	mac_of(dst, head);
	mac_of(src, head + 6);
	head[12] = TEST_ETHERTYPE >> 8;
	head[13] = TEST_ETHERTYPE & 0xff;
	head[14] = seq >> 24;
	head[15] = seq >> 16;
	head[16] = seq >> 8;
	head[17] = seq;
	memcpy(buf, head, len < sizeof(head) ? len : sizeof(head));
	for (i = sizeof(head); i < len; i++) {
		r = r * 1103515245u + 12345u;
		buf[i] = r >> 16;
	}
}

uint32_t frame_seq(const uint8_t *buf)
{
	return (uint32_t)buf[14] << 24 | buf[15] << 16 | buf[16] << 8 | buf[17];
}

bool is_test_frame(const uint8_t *buf, size_t len)
{
	static const uint8_t prefix[5] = { 0x02, 0x68, 0x70, 0x69, 0x6f };
	unsigned int type;

	if (len < 14 || memcmp(buf + 6, prefix, 5))
		return false;
	type = (unsigned int)buf[12] << 8 | buf[13];
	if (type == TEST_ETHERTYPE || type == 0x8100 || type == 0x88a8)
		return true;
	/* IPv4 UDP: the GSO and ToS tests; not ARP, not ICMP. */
	return type == 0x0800 && len >= 34 && buf[23] == 17;
}

size_t frame_len(uint32_t seq, uint32_t seed, size_t lo, size_t hi)
{
	return lo + mix(seq * 2654435761u ^ seed) % (hi - lo + 1);
}

void slot_set(struct slot *s, size_t len)
{
	s->hdr.version = HPIO_HDR_VERSION;
	s->hdr.hdrlen = sizeof(struct hpio_hdr);
	s->hdr.pktlen = (uint16_t)len;
	s->hdr.tstamp = 0;
}

long send_slots(int fd, struct slot *slots, int n, int burst)
{
	struct iovec iov[256];
	uint64_t end = mono_ms() + 10000;
	long sent = 0;

	while (sent < n) {
		int k = n - sent < burst ? n - (int)sent : burst, i;
		ssize_t r;

		for (i = 0; i < k; i++) {
			iov[i].iov_base = &slots[sent + i];
			iov[i].iov_len = sizeof(struct slot);
		}
		r = writev(fd, iov, k);
		if (r < 0) {
			if (errno == ENOBUFS && mono_ms() < end) {
				sleep_ms(1);
				continue;
			}
			return -errno;
		}
		sent += r;
	}
	return sent;
}

int recv_slots(int fd, struct slot *slots, int max, int want, int burst,
	       int timeout_ms)
{
	static struct slot tmp[256];
	struct iovec iov[256];
	uint64_t end = mono_ms() + timeout_ms;
	int got = 0, i, flags = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	while (got < want) {
		ssize_t r;

		for (i = 0; i < burst; i++) {
			iov[i].iov_base = &tmp[i];
			iov[i].iov_len = sizeof(struct slot);
		}
		r = readv(fd, iov, burst);
		if (r < 0) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int left = (int)(end - mono_ms());

			if (errno != EAGAIN || left <= 0)
				break;
			poll(&p, 1, left < 50 ? left : 50);
			continue;
		}
		for (i = 0; i < r; i++) {
			size_t len = tmp[i].hdr.pktlen;

			if (!is_test_frame(tmp[i].data, len))
				continue;
			if (got < max)
				slots[got] = tmp[i];
			got++;
		}
	}
	fcntl(fd, F_SETFL, flags);
	return got;
}

struct slot g_one;

void *blocking_read(void *arg)
{
	struct waiter *wt = arg;
	struct slot s[4];
	struct iovec iov[4];
	uint64_t t0 = mono_ms();
	int i;

	for (i = 0; i < 4; i++)
		iov[i] = (struct iovec){ &s[i], sizeof(s[i]) };
	wt->ret = readv(wt->fd, iov, 4);
	wt->err = errno;
	wt->ms = mono_ms() - t0;
	return NULL;
}

static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 1) {
		sum += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t ip_csum(const void *data, size_t len)
{
	return csum_fold(csum_add(0, data, len));
}

uint16_t udp4_csum(const uint8_t *ip, const uint8_t *udp, size_t udplen)
{
	uint8_t pseudo[12];
	uint16_t c;

	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 17;
	pseudo[10] = udplen >> 8;
	pseudo[11] = udplen & 0xff;
	c = csum_fold(csum_add(csum_add(0, pseudo, 12), udp, udplen));
	return c ? c : 0xffff;
}

size_t udp_frame(uint8_t *buf, const uint8_t dmac[6], const uint8_t smac[6],
		 const char *sip, const char *dip, uint16_t sport,
		 uint16_t dport, uint8_t tos, const void *payload, size_t plen)
{
	uint8_t *ip = buf + 14, *udp = ip + 20;
	size_t iplen = 20 + 8 + plen;
	uint16_t c;

	memcpy(buf, dmac, 6);
	memcpy(buf + 6, smac, 6);
	buf[12] = 0x08;
	buf[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[1] = tos;
	ip[2] = iplen >> 8;
	ip[3] = iplen & 0xff;
	ip[6] = 0x40;		/* DF */
	ip[8] = 64;
	ip[9] = 17;
	inet_pton(AF_INET, sip, ip + 12);
	inet_pton(AF_INET, dip, ip + 16);
	c = ip_csum(ip, 20);
	ip[10] = c >> 8;
	ip[11] = c & 0xff;
	udp[0] = sport >> 8;
	udp[1] = sport & 0xff;
	udp[2] = dport >> 8;
	udp[3] = dport & 0xff;
	udp[4] = (8 + plen) >> 8;
	udp[5] = (8 + plen) & 0xff;
	udp[6] = udp[7] = 0;
	memcpy(udp + 8, payload, plen);
	c = udp4_csum(ip, udp, 8 + plen);
	udp[6] = c >> 8;
	udp[7] = c & 0xff;
	return 14 + iplen;
}
