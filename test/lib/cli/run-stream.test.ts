// `virtio-net run --netdev stream,…`: the scripted guest on a stream socket whose other end is a
// StreamNetdev in this test answering as the host 10.0.2.2 would (ARP, ICMP echo), and pinging the
// guest back; the guest's link follows the connection.

import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../lib/cli/run.js';
import { parseNetdev } from '../../../lib/cli/args.js';
import { arpRequest, icmpEcho } from '../../../lib/cli/guest-frames.js';
import { answerArpOrEcho } from '../../../lib/netdev/sim-peer.js';
import { StreamNetdev } from '../../../lib/netdev/stream-netdev.js';
import { macFromText } from '../../../lib/base/mac.js';

describe('lib/cli/run on a stream socket', function () {
  this.timeout(20_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'vnm-run-stream-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('the_scripted_guest_and_a_peer_on_the_socket_ping_each_other', async () => {
    const path = join(dir, 'net.sock');
    const lines: string[] = [];
    const job = run({ durationMs: 1500, scenario: 'traffic', netdev: parseNetdev(`stream,addr.type=unix,addr.path=${path},server=on`), qmpPath: null, json: false }, (l) => lines.push(l));
    // The other end: a host 10.0.2.2 that answers and pings the guest 10.0.2.15.
    const me = { mac: macFromText('52:55:0a:00:02:02')!, ip: [10, 0, 2, 2] as const };
    const other = new StreamNetdev({ id: 'far', path, reconnectMs: 20 });
    let guestMac: Uint8Array | null = null;
    let echoRepliesFromGuest = 0;
    other.attach({
      receive: (f) => {
        const a = answerArpOrEcho(f, me.mac, Uint8Array.from(me.ip));
        if (a !== null) {
          const reply = a.reply;
          setImmediate(() => other.send(reply));
        } else if (f[12] === 0x08 && f[13] === 0x06 && f[21] === 2) guestMac = f.slice(22, 28);
        else if (f[12] === 0x08 && f[13] === 0x00 && f[23] === 1 && f[34] === 0) echoRepliesFromGuest++;
        return true;
      },
      writable: () => undefined,
    });
    await other.open();
    let seq = 0;
    const pinger = setInterval(() => {
      if (!other.connected) return;
      other.send(guestMac === null ? arpRequest(me, [10, 0, 2, 15]) : icmpEcho(me, guestMac, [10, 0, 2, 15], 7, ++seq));
    }, 50);
    let r;
    try {
      r = await job;
    } finally {
      clearInterval(pinger);
      await other.close();
    }
    expect(lines.join('')).to.match(/on stream unix:.*net\.sock \(server\)/);
    // Learned from the peer's ARP request or its reply, whichever came first (as Linux).
    expect(r.neighbour?.mac, 'the guest learned the peer by ARP').to.equal('52:55:0a:00:02:02');
    expect(r.guest['echoReplies'], 'the peer answered the guest').to.be.greaterThan(0);
    expect(r.guest['arpRequestsAnswered'], 'the guest answered the peer by ARP').to.be.greaterThan(0);
    expect(r.guest['echoRequestsAnswered'], 'the guest answered pings').to.be.greaterThan(0);
    expect(echoRepliesFromGuest).to.equal(r.guest['echoRequestsAnswered']);
    expect(r.backend.link).to.deep.include({ ups: 1 });
  });
});
