// The socket netdevs of `virtio-net run` and `virtio-net guest` (`--netdev stream,…` and
// `--netdev passt,…`, parsed by stream-args.ts): opened as `hostnet0`, QEMU's name for the first
// netdev, with a label for the command's output; and `--netdev websocket,url=…` (a v86 relay). A stream server listens and the guest's link
// stays down until its peer connects; passt is started and connected (PasstNetdev).

import { PasstNetdev } from '../netdev/passt-netdev.js';
import { StreamNetdev } from '../netdev/stream-netdev.js';
import { WebSocketNetdev } from '../netdev/websocket-netdev.js';
import type { WebSocketConstructor } from '../netdev/websocket-netdev.js';
import type { PasstNetdevSpec, StreamNetdevSpec } from './stream-args.js';

export async function openSocketNetdev(spec: StreamNetdevSpec | PasstNetdevSpec): Promise<{ netdev: StreamNetdev; label: string }> {
  if (spec.kind === 'passt') {
    const netdev = await PasstNetdev.start({ id: 'hostnet0', tcp: spec.tcp, udp: spec.udp });
    const fwd = [...spec.tcp.map((t) => `tcp ${t}`), ...spec.udp.map((u) => `udp ${u}`)];
    return { netdev, label: `passt (pid ${netdev.pid}, socket ${netdev.path}${fwd.length > 0 ? `, forwarding ${fwd.join(', ')}` : ''})` };
  }
  const o = spec.options;
  const netdev = new StreamNetdev({ id: 'hostnet0', ...o });
  await netdev.open();
  const where = o.path !== undefined ? `unix:${o.path}` : `inet:${o.host}:${o.server ? netdev.port : o.port}`;
  const role = o.server === true ? 'server' : `client${(o.reconnectMs ?? 0) > 0 ? `, reconnect ${o.reconnectMs} ms` : ''}`;
  return { netdev, label: `stream ${where} (${role})` };
}

/**
 * `--netdev websocket,url=…`: a WebSocketNetdev with the `ws` package's class (Node 20 has no
 * global WebSocket). It connects in the background; the guest's link is down until it has.
 */
export async function openWebSocketNetdev(url: string): Promise<{ netdev: WebSocketNetdev; label: string }> {
  const { WebSocket } = await import('ws');
  const netdev = new WebSocketNetdev({ id: 'hostnet0', url, WebSocket: WebSocket as unknown as WebSocketConstructor });
  return { netdev, label: `websocket ${url}` };
}
