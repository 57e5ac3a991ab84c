// Netlink errors (no VIRTIO section: Linux netlink, RFC 3549 and include/uapi/linux/netlink.h).
// One typed error with a stable code; tests assert on `code` and fields, not on message text.

export type NetlinkErrorCode =
  /** A message or attribute claims more bytes than the buffer holds. */
  | 'netlink.truncated'
  /** A length field is impossible (shorter than its own header) or a fixed header is cut short. */
  | 'netlink.malformed'
  /** An attribute's payload does not match its schema type (e.g. a u32 of 3 bytes). */
  | 'netlink.bad-attribute'
  /** A reply lacks an attribute its family always sends (e.g. an IPVS service without a scheduler). */
  | 'netlink.missing-attribute'
  /** The kernel answered NLMSG_ERROR with a negative errno. */
  | 'netlink.errno'
  /** No reply arrived in time. */
  | 'netlink.timeout'
  /** A generic-netlink family name the kernel does not know. */
  | 'netlink.unknown-family'
  /** A value the caller passed cannot be encoded (programmer error, thrown at once). */
  | 'netlink.bad-value';

export class NetlinkError extends Error {
  constructor(
    readonly code: NetlinkErrorCode,
    message: string,
    readonly details: { readonly errno?: number; readonly offset?: number; readonly type?: number; readonly extack?: string } = {},
  ) {
    super(message);
    this.name = 'NetlinkError';
  }
  /** Positive errno for 'netlink.errno' (e.g. 95 for EOPNOTSUPP). */
  get errno(): number | undefined {
    return this.details.errno;
  }
}
