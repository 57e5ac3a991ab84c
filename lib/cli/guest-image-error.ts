// Why the guest image could not be built (guest-image.ts and the parts it uses: guest-apt.ts,
// guest-initramfs.ts), as one error class with a stable code; guest-image.ts re-exports it.

/** Why the image could not be built: a stable code and a sentence for the user. */
export class GuestImageError extends Error {
  constructor(
    readonly code: 'guest-image.no-apt' | 'guest-image.index' | 'guest-image.download' | 'guest-image.checksum' | 'guest-image.content' | 'guest-image.compile',
    message: string,
  ) {
    super(message);
    this.name = 'GuestImageError';
  }
}
