// The check the passt guest tests share (guest/passt.test.ts, guest/guest-websocket.test.ts): the
// real Linux guest leases an address by DHCP (busybox udhcpc) and wgets a page through the
// gateway address from an HTTP server on this host's loopback, which the backend (passt) reaches
// for the gateway. Here: the server, the guest's script, and the checks on the script's JSON steps
// (`virtio-net guest --script … --json` prints one line per step).

import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

/** One step of `virtio-net guest --script --json`. */
export interface GuestStep {
  step: string;
  exitCode: number;
  output: string;
  linkUp?: boolean;
}

export interface TokenServer {
  port: number;
  /** What every request is answered with (plus a newline): random, so only this server gives it. */
  token: string;
  /** The remote address of every request. */
  peers: string[];
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 (a free port) answering `${tag}-<random>\n` to every request. */
export async function startTokenServer(tag: string): Promise<TokenServer> {
  const token = `${tag}-${randomBytes(6).toString('hex')}`;
  const peers: string[] = [];
  const http = createServer((req, res) => {
    peers.push(req.socket.remoteAddress ?? '');
    res.end(`${token}\n`);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as { port: number }).port;
  return { port, token, peers, close: () => new Promise<void>((r) => http.close(() => r())) };
}

/** Writes the guest's five steps to `dir`/steps.sh (link up, lease, `ip route`, wget port `port` on the gateway); returns its path. */
export function writeDhcpWgetScript(dir: string, port: number): string {
  const script = join(dir, 'steps.sh');
  writeFileSync(
    script,
    [
      'ip link set eth0 up',
      // busybox udhcpc configures nothing itself: a two-line script applies the lease.
      `printf '#!/bin/sh\\n[ "$1" = bound ] || exit 0\\nip addr add $ip/$mask dev $interface\\nip route add default via $router\\n' > /tmp/dhcp.sh && chmod +x /tmp/dhcp.sh`,
      'udhcpc -i eth0 -n -q -t 5 -s /tmp/dhcp.sh',
      'ip route',
      `wget -q -O - http://$(ip route | awk '/default/ {print $3}'):${port}/`,
    ].join('\n'),
  );
  return script;
}

/**
 * Checks the steps the script of `writeDhcpWgetScript` printed on `stdout`: every one exited 0,
 * the guest got a lease, its default route goes via the lease's server, and it fetched the token
 * from `server`, which only loopback peers reached. `context` goes with the failures. Returns the
 * steps, the leased address and the server that leased it (the gateway).
 */
export function expectDhcpWget(stdout: string, context: string, server: TokenServer): { steps: GuestStep[]; address: string; gateway: string } {
  const steps = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as GuestStep);
  expect(steps.map((s) => s.exitCode), context).to.deep.equal([0, 0, 0, 0, 0]);
  const lease = /lease of (\d+\.\d+\.\d+\.\d+) obtained from (\d+\.\d+\.\d+\.\d+)/.exec(steps[2]!.output);
  expect(lease, steps[2]!.output).to.not.equal(null);
  expect(steps[3]!.output).to.match(new RegExp(`default via ${lease![2]!.replace(/\./g, '\\.')} dev eth0`));
  expect(steps[4]!.output).to.equal(`${server.token}\n`);
  expect(server.peers.length, 'the HTTP server was reached').to.be.greaterThan(0);
  expect(server.peers.every((p) => p === '127.0.0.1' || p === '::ffff:127.0.0.1'), `peers ${server.peers.join(', ')}`).to.equal(true);
  return { steps, address: lease![1]!, gateway: lease![2]! };
}
