// UDP ports on 127.0.0.1 that were free a moment ago: each bound to port 0, read, released.
// Another process may take one before the test binds it; tests use them at once.

import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';

/** `n` distinct UDP ports free on 127.0.0.1 now (all bound at once, so they differ, then released). */
export async function freeUdpPorts(n: number): Promise<number[]> {
  const socks = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createSocket>>((resolve) => {
          const s = createSocket('udp4');
          s.bind(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = socks.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}
