// SPDX-License-Identifier: GPL-2.0
/*
 * hpio_tx: transmit one UDP frame over and over through /dev/hpio/<ifname>,
 * BURST frames per writev -- the transmit loop of the original hpio README.
 *
 *   cc -O2 -I kmod/include/uapi -o hpio_tx kmod/examples/hpio_tx.c
 *   ./hpio_tx eth0            # forever
 *   ./hpio_tx eth0 1000       # 1000 bursts, then print the count
 *
 * The frame goes from the interface's MAC to the broadcast address,
 * 10.0.0.1:9 -> 10.0.0.2:9 (discard).  The file is opened write-only:
 * opening it for reading as well would also take over the interface's
 * receive path (see docs/kmod.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <hpio.h>

#define BURST	32
#define PKTSIZE	60	/* Ethernet 14 + IPv4 20 + UDP 8 + 18 bytes */

struct slot {
	struct hpio_hdr hdr;
	unsigned char pkt[PKTSIZE];
} __attribute__((packed));

static uint16_t csum(const unsigned char *p, size_t len)
{
	uint32_t sum = 0;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Broadcast Ethernet, IPv4 10.0.0.1 -> 10.0.0.2, UDP 9 -> 9, zero payload. */
static void build_packet(unsigned char *pkt, const unsigned char src[6])
{
	unsigned char *ip = pkt + 14, *udp = ip + 20;
	uint16_t c;

	memset(pkt, 0, PKTSIZE);
	memset(pkt, 0xff, 6);
	memcpy(pkt + 6, src, 6);
	pkt[12] = 0x08;				/* IPv4 */
	ip[0] = 0x45;
	ip[3] = PKTSIZE - 14;			/* total length */
	ip[8] = 64;				/* TTL */
	ip[9] = 17;				/* UDP */
	ip[12] = 10, ip[15] = 1;		/* 10.0.0.1 */
	ip[16] = 10, ip[19] = 2;		/* 10.0.0.2 */
	c = csum(ip, 20);
	ip[10] = c >> 8;
	ip[11] = c & 0xff;
	udp[1] = 9;
	udp[3] = 9;
	udp[5] = PKTSIZE - 14 - 20;		/* UDP length; checksum 0 = none */
}

static int get_mac(const char *ifname, unsigned char mac[6])
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), ret;

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ret = ioctl(fd, SIOCGIFHWADDR, &ifr);
	close(fd);
	if (ret)
		return -1;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

int main(int argc, char **argv)
{
	struct slot slot = { { HPIO_HDR_VERSION, sizeof(struct hpio_hdr), PKTSIZE, 0 }, { 0 } };
	struct iovec iov[BURST];
	unsigned char mac[6];
	long bursts = -1, n, sent = 0;
	char path[64];
	int fd;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s IFNAME [BURSTS]\n", argv[0]);
		return 2;
	}
	if (argc == 3)
		bursts = strtol(argv[2], NULL, 0);
	if (get_mac(argv[1], mac)) {
		perror(argv[1]);
		return 1;
	}
	build_packet(slot.pkt, mac);

	for (n = 0; n < BURST; n++) {
		iov[n].iov_base = &slot;
		iov[n].iov_len = sizeof(slot);
	}

	snprintf(path, sizeof(path), "/dev/hpio/%s", argv[1]);
	fd = open(path, O_WRONLY);
	if (fd < 0) {
		perror(path);
		return 1;
	}

	for (n = 0; bursts < 0 || n < bursts; n++) {
		ssize_t ret = writev(fd, iov, BURST);

		if (ret < 0) {
			if (errno == ENOBUFS) {	/* TX queue full: retry */
				n--;
				continue;
			}
			perror("writev");
			return 1;
		}
		sent += ret;
		/* A short count means the queue filled up: the rest of this
		 * burst was not sent.  This loop simply moves on. */
	}
	printf("sent %ld frames\n", sent);
	close(fd);
	return 0;
}
