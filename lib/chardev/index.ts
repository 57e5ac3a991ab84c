// lib/chardev: QEMU's `-chardev socket` for frames — the public surface of this folder.
export { encodeFrame, FrameReader, MAX_FRAMED_LENGTH, VNET_HEADER_LENGTHS, type FramingError, type FrameCallback } from './framing.js';
export { ChardevSocket, type ChardevSocketOptions, type SocketEndpoint, type ChardevDiagnostic, type ChardevStats } from './chardev-socket.js';
