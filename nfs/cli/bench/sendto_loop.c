/*
 * The baseline for `hpio-nf pktgen`: a plain loop that sends one frame per
 * sendto(2) on an AF_PACKET socket, as fast as it can, for a given time.
 *
 *   sendto_loop IFNAME SECONDS [LENGTH] [-q]
 *
 * The frame is what `hpio-nf pktgen -D 02:00:00:00:00:02` sends: UDP/IPv4
 * 10.0.0.1:1024 > 10.0.0.2:9 from the interface's MAC to 02:00:00:00:00:02,
 * LENGTH bytes without FCS (default 60), IPv4 header checksum set, UDP
 * checksum 0 (none: the rate does not depend on it). With -q
 * the socket sets PACKET_QDISC_BYPASS, as pktgen's does; without it the
 * frames go through the device's qdisc (noqueue on a veth).
 *
 * Prints one line: "sendto: SENT sent, FAILED failed in SECS s: PPS pps".
 * Needs root (or CAP_NET_RAW).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const uint8_t dst_mac[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x02 };

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint16_t ip_checksum(const uint8_t *h, size_t len)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)h[i] << 8 | h[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

int main(int argc, char **argv)
{
	struct sockaddr_ll to = { 0 };
	uint8_t frame[2048] = { 0 };
	unsigned long long sent = 0, failed = 0;
	double secs, start, end;
	struct ifreq ifr = { 0 };
	size_t len = 60;
	int fd, bypass = 0, one = 1, i;
	uint16_t csum;

	if (argc < 3) {
		fprintf(stderr, "usage: %s IFNAME SECONDS [LENGTH] [-q]\n", argv[0]);
		return 2;
	}
	secs = atof(argv[2]);
	for (i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "-q"))
			bypass = 1;
		else
			len = strtoul(argv[i], NULL, 10);
	}
	if (len < 42 || len > sizeof(frame)) {
		fprintf(stderr, "length must be 42..=%zu\n", sizeof(frame));
		return 2;
	}

	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) {
		perror("socket(AF_PACKET)");
		return 1;
	}
	if (bypass && setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one))) {
		perror("PACKET_QDISC_BYPASS");
		return 1;
	}
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", argv[1]);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr)) {
		perror(argv[1]);
		return 1;
	}
	to.sll_family = AF_PACKET;
	to.sll_ifindex = if_nametoindex(argv[1]);
	to.sll_halen = ETH_ALEN;
	memcpy(to.sll_addr, dst_mac, ETH_ALEN);

	/* Ethernet */
	memcpy(frame, dst_mac, 6);
	memcpy(frame + 6, ifr.ifr_hwaddr.sa_data, 6);
	frame[12] = 0x08;
	/* IPv4: version/IHL, total length, TTL, protocol, addresses, checksum */
	frame[14] = 0x45;
	frame[16] = (len - 14) >> 8;
	frame[17] = (len - 14) & 0xff;
	frame[22] = 64;
	frame[23] = 17;
	memcpy(frame + 26, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	csum = ip_checksum(frame + 14, 20);
	frame[24] = csum >> 8;
	frame[25] = csum & 0xff;
	/* UDP: ports 1024 > 9, length; checksum 0 */
	frame[34] = 0x04;
	frame[37] = 9;
	frame[38] = (len - 34) >> 8;
	frame[39] = (len - 34) & 0xff;

	start = now();
	end = start + secs;
	for (;;) {
		/* Check the clock every 1024 frames, not every frame. */
		for (i = 0; i < 1024; i++) {
			if (sendto(fd, frame, len, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)len)
				sent++;
			else
				failed++;
		}
		if (now() >= end)
			break;
	}
	secs = now() - start;
	printf("sendto: %llu sent, %llu failed in %.3f s: %.0f pps\n", sent, failed, secs,
	       sent / secs);
	close(fd);
	return 0;
}
