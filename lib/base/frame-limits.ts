// How large a frame gets, for every holder that sizes a buffer or refuses a frame by it. No spec
// section sets these: they follow what Linux and QEMU pass between a NIC and its backend.

/**
 * Largest Ethernet frame the device sends or delivers: a 64 KiB GSO super-frame (the IP total
 * length field's maximum) plus the Ethernet header and one VLAN tag (14 + 4).
 */
export const FRAME_MAX = 65535 + 18;

/**
 * QEMU's NET_BUFSIZE (include/net/net.h: 4096 + 65536): the largest frame plus header QEMU's net
 * filters and chardev framing carry, so frames QEMU accepts are accepted here too.
 */
export const NET_BUFSIZE = 4096 + 65536;
