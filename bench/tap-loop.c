/*
 * The C baseline of the TAP benchmarks (bench/tap.bench.ts): the physical limit of the TAP path,
 * i.e. the same write()/read() loop the device's TapNetdev does, with nothing else in it. Built with
 * the system compiler at bench time (cc -O2) into a temporary directory. Frames carry the
 * virtio-net header (VIRTIO 1.2 §5.1.6, 10 or 12 bytes) the TAP fd was opened with (IFF_VNET_HDR).
 *
 *   tap-loop tx FD FRAMES LEN HDRLEN   write FRAMES frames of LEN bytes (after a zero header of
 *                                      HDRLEN bytes) to the TAP fd FD (inherited from the bench)
 *   tap-loop rx FD FRAMES              read up to FRAMES frames from FD; stops after 500 ms idle
 *   tap-loop gen IFNAME FRAMES LEN     send FRAMES frames of LEN bytes out of IFNAME through an
 *                                      AF_PACKET socket (run inside the namespace holding IFNAME):
 *                                      the peer that fills the TAP's queue for the rx benchmarks
 *
 * Prints one line: "<frames> <nanoseconds> <cpu nanoseconds>" (for gen: frames sent). The clock
 * runs from the first frame to the last (rx: from the first read that returned a frame); the CPU
 * time is this process's user + system time over the loop (the kernel's work for each write or
 * read runs in it), which stays meaningful when other jobs load the machine.
 * Exit status 2 on bad arguments, 1 on a system call failure (with perror's message on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define FRAME_MAX 65550
/* The device's MAC and the peer's, as in bench/lib/corpus.ts. */
static const uint8_t DEVICE_MAC[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static const uint8_t PEER_MAC[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};

static uint8_t buf[FRAME_MAX];

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_ns(void) {
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 + ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static long arg(const char *s, long lo, long hi) {
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "tap-loop: bad number %s (allowed %ld..%ld)\n", s, lo, hi);
		exit(2);
	}
	return v;
}

static void frame(uint8_t *p, long len, const uint8_t *dst, const uint8_t *src) {
	memset(p, 0, len);
	memcpy(p, dst, 6);
	memcpy(p + 6, src, 6);
	p[12] = 0x08; /* IPv4 */
	p[13] = 0x00;
	for (long i = 14; i < len; i++) p[i] = (uint8_t)i;
}

/* Waits until fd is ready for `events`; 0 on timeout. */
static int wait_fd(int fd, short events, int timeout_ms) {
	struct pollfd p = {.fd = fd, .events = events};
	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r >= 0) return r;
		if (errno != EINTR) {
			perror("tap-loop: poll");
			exit(1);
		}
	}
}

static int do_tx(int fd, long frames, long len, long hdr) {
	frame(buf + hdr, len, PEER_MAC, DEVICE_MAC); /* guest -> peer, like the device's frames */
	const size_t total = (size_t)(hdr + len);
	int64_t c0 = cpu_ns();
	int64_t t0 = now_ns();
	for (long i = 0; i < frames;) {
		ssize_t n = write(fd, buf, total);
		if (n == (ssize_t)total) {
			i++;
		} else if (n < 0 && errno == EAGAIN) {
			wait_fd(fd, POLLOUT, 1000);
		} else if (n < 0 && errno != EINTR) {
			perror("tap-loop: write");
			return 1;
		}
	}
	int64_t t1 = now_ns();
	printf("%ld %lld %lld\n", frames, (long long)(t1 - t0), (long long)(cpu_ns() - c0));
	return 0;
}

static int do_rx(int fd, long frames) {
	long got = 0;
	int64_t t0 = 0, last = 0, c0 = 0;
	while (got < frames) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0) {
			if (got == 0) {
				t0 = now_ns();
				c0 = cpu_ns();
			}
			got++;
			last = now_ns();
		} else if (n < 0 && errno == EAGAIN) {
			if (wait_fd(fd, POLLIN, 500) == 0) break; /* the queue is drained (waiting costs no CPU) */
		} else if (n < 0 && errno != EINTR) {
			perror("tap-loop: read");
			return 1;
		}
	}
	printf("%ld %lld %lld\n", got, (long long)(got > 0 ? last - t0 : 0), (long long)(got > 0 ? cpu_ns() - c0 : 0));
	return 0;
}

static int do_gen(const char *ifname, long frames, long len) {
	int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (s < 0) {
		perror("tap-loop: socket(AF_PACKET)");
		return 1;
	}
	struct sockaddr_ll sll = {0};
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (sll.sll_ifindex == 0 || bind(s, (struct sockaddr *)&sll, sizeof sll) < 0) {
		perror("tap-loop: bind");
		return 1;
	}
	frame(buf, len, DEVICE_MAC, PEER_MAC); /* peer -> guest */
	long sent = 0;
	int64_t c0 = cpu_ns();
	int64_t t0 = now_ns();
	while (sent < frames) {
		ssize_t n = send(s, buf, (size_t)len, 0);
		if (n == len) {
			sent++;
		} else if (n < 0 && (errno == ENOBUFS || errno == EAGAIN)) {
			wait_fd(s, POLLOUT, 10);
		} else if (n < 0 && errno != EINTR) {
			perror("tap-loop: send");
			return 1;
		}
	}
	int64_t t1 = now_ns();
	printf("%ld %lld %lld\n", sent, (long long)(t1 - t0), (long long)(cpu_ns() - c0));
	close(s);
	return 0;
}

int main(int argc, char **argv) {
	if (argc >= 6 && strcmp(argv[1], "tx") == 0)
		return do_tx((int)arg(argv[2], 0, 1 << 20), arg(argv[3], 1, 1L << 40), arg(argv[4], 14, 65535), arg(argv[5], 0, 12));
	if (argc >= 4 && strcmp(argv[1], "rx") == 0)
		return do_rx((int)arg(argv[2], 0, 1 << 20), arg(argv[3], 1, 1L << 40));
	if (argc >= 5 && strcmp(argv[1], "gen") == 0)
		return do_gen(argv[2], arg(argv[3], 1, 1L << 40), arg(argv[4], 14, 65535));
	fprintf(stderr, "usage: tap-loop tx FD FRAMES LEN HDRLEN | rx FD FRAMES | gen IFNAME FRAMES LEN\n");
	return 2;
}
