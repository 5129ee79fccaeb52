/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test harness for hpio.ko, run as root inside the test VM (see run-vm.sh).
 * Every check prints one line; main prints "N passed, M failed" at the end.
 */
#ifndef HPIO_TEST_HARNESS_H
#define HPIO_TEST_HARNESS_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <hpio.h>

#define MODULE_PATH	"/lib/hpio/hpio.ko"
#define EXAMPLE_PATH	"/bin/hpio_example"
#define IP		"/sbin/ip"

/* Test frames carry this EtherType and a source MAC starting with
 * 02:68:70:69:6f ("\x02hpio"); test interfaces get such MACs too. */
#define TEST_ETHERTYPE	0x88b5
#define SLOT_DATA	2048

struct slot {
	struct hpio_hdr hdr;
	uint8_t data[SLOT_DATA];
} __attribute__((packed));

/* ---- checks ---- */
extern int g_passed, g_failed;
void check(bool ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define CHECK(cond, ...) check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
/* Passes when @ret is -1 with errno @want; reports what happened otherwise. */
#define CHECK_ERR(ret, want, ...) do {					\
		long ret_ = (long)(ret);					\
		int err_ = errno;						\
		check_err(ret_, err_, want, __FILE__, __LINE__, __VA_ARGS__);	\
	} while (0)
/* An address no test maps (hidden from the compiler's bounds checks). */
extern void *volatile bad_ptr;
void check_err(long ret, int err, int want, const char *file, int line,
	       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void section(const char *name);

/* ---- processes and commands ---- */
/* Run a shell command; returns its exit status (or -1). */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, killing it after @secs; returns -2 on timeout. */
int sh_timeout(int secs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A child process in a new network namespace; returns its pid. */
pid_t netns_new(void);
void netns_kill(pid_t pid);
/* Run a command inside the namespace of @pid. */
int ns_sh(pid_t pid, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fork a child that enters the namespace of @pid and runs fn(arg); returns
 * the child's exit status. */
int ns_run(pid_t pid, int (*fn)(void *), void *arg);
/* Same without waiting: returns the child's pid (see child_wait). */
pid_t ns_spawn(pid_t pid, int (*fn)(void *), void *arg);
int child_wait(pid_t child);
void pin_cpu(int cpu);
int ncpus(void);
uint64_t now_ns(void);		/* CLOCK_REALTIME */
uint64_t mono_ms(void);
void sleep_ms(int ms);

/* ---- files ---- */
bool path_exists(const char *path);
bool wait_path(const char *path, bool exists, int timeout_ms);
long read_long(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int write_str(const char *path, const char *val);

/* ---- module ---- */
int mod_load(const char *params);	/* 0 or -errno */
int mod_unload(void);			/* 0 or -errno */
bool mod_loaded(void);

/* ---- interfaces ---- */
/* veth pair a <-> b, both up, MACs 02:68:70:69:6f:<mac_a/mac_b>. */
int veth_add(const char *a, const char *b, int mac_a, int mac_b);
int link_del(const char *name);
long if_stat(const char *ifname, const char *counter);
void mac_of(int last, uint8_t mac[6]);

/* ---- hpio ---- */
int hp_open(const char *ifname, int flags);
int hp_bind(int fd, uint32_t queue);
int hp_stats(int fd, uint32_t queue, struct hpio_stats *s);
int hp_info(int fd, struct hpio_info *info);
long hp_sysfs(const char *ifname, const char *attr);

/* AF_PACKET raw socket bound to @ifname (all protocols if @rx, none if
 * not), with PACKET_VNET_HDR when @vnet. */
int packet_socket(const char *ifname, bool rx, bool vnet);

/* ---- frames ---- */
/* Test frame: dst 02:68:70:69:6f:<dst>, src ...:<src>, TEST_ETHERTYPE,
 * 32-bit sequence number, then bytes derived from (seed, seq). */
void frame_fill(uint8_t *buf, size_t len, int dst, int src, uint32_t seq,
		uint32_t seed);
uint32_t frame_seq(const uint8_t *buf);
/* From a test MAC, and test EtherType, VLAN or IPv4/UDP. */
bool is_test_frame(const uint8_t *buf, size_t len);
/* A deterministic length in [lo, hi] for frame @seq. */
size_t frame_len(uint32_t seq, uint32_t seed, size_t lo, size_t hi);
void slot_set(struct slot *s, size_t len);

/* Transmit @n frames from @slots with writev bursts of @burst; retries
 * ENOBUFS.  Returns frames sent or -errno. */
long send_slots(int fd, struct slot *slots, int n, int burst);
/* Receive test frames into @slots (up to @max) with non-blocking readv of
 * @burst, until @want arrived or @timeout_ms passed.  Other frames are
 * dropped.  Returns the number received. */
int recv_slots(int fd, struct slot *slots, int max, int want, int burst,
	       int timeout_ms);

/* A thread's view of one blocking call. */
struct waiter {
	int fd;
	int delay_ms;		/* sender: wait before sending */
	ssize_t ret;
	int err;
	uint64_t ms;
	short revents;
};
/* Thread body: readv of 4 slots on wt->fd; fills ret, err, ms. */
void *blocking_read(void *arg);
/* One 60-byte frame that tests fill in as they need. */
extern struct slot g_one;

/* IPv4/UDP helpers */
uint16_t ip_csum(const void *data, size_t len);
uint16_t udp4_csum(const uint8_t *ip, const uint8_t *udp, size_t udplen);
/* Ethernet + IPv4 + UDP frame; returns its length. */
size_t udp_frame(uint8_t *buf, const uint8_t dmac[6], const uint8_t smac[6],
		 const char *sip, const char *dip, uint16_t sport,
		 uint16_t dport, uint8_t tos, const void *payload, size_t plen);

/* Test groups */
void test_lifecycle_load(void);
void test_nodes(void);
void test_roundtrip(void);
void test_frames(void);
void test_sizes(void);
void test_stack(void);
void test_errors(void);
void test_blocking(void);
void test_readers(void);
void test_queues(void);
void test_overflow(void);
void test_removal(void);
void test_busy(void);
void test_leaks(void);
void test_unload(void);
void test_example(void);
void test_perm(void);

#endif
