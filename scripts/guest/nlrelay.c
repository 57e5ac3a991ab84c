/*
 * nlrelay: one netlink request from the serial console to the guest kernel, and its reply back.
 * Part of the IPVS guest image (lib/cli/guest-image.ts, profile "ipvs"); the host side is
 * test/support/guest-netlink.ts. Built on the host with `cc -static`.
 *
 *   nlrelay PROTOCOL HEX
 *
 * Decodes HEX (one complete netlink message, nlmsghdr included), sends it on a fresh
 * AF_NETLINK socket of PROTOCOL (16 = NETLINK_GENERIC) to the kernel, then prints every datagram
 * the kernel answers as one line "< HEX", until a datagram holds an NLMSG_ERROR or NLMSG_DONE
 * message (the end of a request or of a dump). No interpretation beyond that: the host parses
 * and validates the bytes. Exit status 0 when the reply ended, 1 on a usage or socket error,
 * 2 when the kernel went quiet for 5 s without ending the reply.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int main(int argc, char **argv) {
  static unsigned char req[8192];
  static unsigned char buf[65536];
  if (argc != 3) {
    fprintf(stderr, "usage: nlrelay PROTOCOL HEX\n");
    return 1;
  }
  size_t hexlen = strlen(argv[2]);
  if (hexlen % 2 != 0 || hexlen / 2 > sizeof req || hexlen / 2 < sizeof(struct nlmsghdr)) {
    fprintf(stderr, "nlrelay: HEX must be an even number of digits, %zu..%zu bytes\n", sizeof(struct nlmsghdr), sizeof req);
    return 1;
  }
  size_t len = hexlen / 2;
  for (size_t i = 0; i < len; i++) {
    int hi = hexval(argv[2][2 * i]), lo = hexval(argv[2][2 * i + 1]);
    if (hi < 0 || lo < 0) {
      fprintf(stderr, "nlrelay: not a hex digit at %zu\n", 2 * i);
      return 1;
    }
    req[i] = (unsigned char)(hi << 4 | lo);
  }
  int fd = socket(AF_NETLINK, SOCK_RAW, atoi(argv[1]));
  if (fd < 0) {
    perror("nlrelay: socket");
    return 1;
  }
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
    perror("nlrelay: bind");
    return 1;
  }
  if (sendto(fd, req, len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    perror("nlrelay: send");
    return 1;
  }
  for (;;) {
    struct sockaddr_nl from;
    socklen_t fromlen = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fromlen);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        fprintf(stderr, "nlrelay: no end of reply within 5 s\n");
        return 2;
      }
      perror("nlrelay: recv");
      return 1;
    }
    if (from.nl_pid != 0) continue; /* not the kernel */
    fputs("< ", stdout);
    for (ssize_t i = 0; i < n; i++) printf("%02x", buf[i]);
    fputc('\n', stdout);
    int ended = 0;
    for (ssize_t off = 0; off + (ssize_t)sizeof(struct nlmsghdr) <= n;) {
      struct nlmsghdr *h = (struct nlmsghdr *)(buf + off);
      if (h->nlmsg_len < sizeof(struct nlmsghdr)) break;
      if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) ended = 1;
      off += NLMSG_ALIGN(h->nlmsg_len);
    }
    if (ended) break;
  }
  fflush(stdout);
  return 0;
}
