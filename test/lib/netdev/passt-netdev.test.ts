// PasstNetdev with Debian's real passt: started, connected as a stream peer, answering the guest
// side's ARP for its gateway address; stopped and its directory removed on close(), on a failed
// start, and when passt dies the link goes down.

import { expect } from 'chai';
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { PasstNetdev } from '../../../lib/netdev/passt-netdev.js';
import { requireProgram } from '../../support/skip.js';

/** An ARP who-has from `mac`/`ip` for `target` (RFC 826). */
function arpWhoHas(mac: number[], ip: number[], target: number[]): Uint8Array {
  return Uint8Array.from([...new Array(6).fill(0xff), ...mac, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1, ...mac, ...ip, 0, 0, 0, 0, 0, 0, ...target, ...new Array(18).fill(0)]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('lib/netdev/passt-netdev (real passt)', function () {
  this.timeout(30_000);
  let n: PasstNetdev | undefined;
  afterEach(async () => {
    await n?.close();
    n = undefined;
  });

  it('bad_forward_specs_are_refused_before_anything_starts', async () => {
    let err: unknown;
    await PasstNetdev.start({ id: 'p', tcp: ['80;reboot'] }).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(TypeError);
    expect((err as Error).message).to.match(/tcp spec "80;reboot" is not a passt port spec/);
  });

  it('starts_connects_answers_arp_for_its_gateway_and_close_stops_passt_and_removes_its_directory', async function () {
    requireProgram(this, 'passt');
    n = await PasstNetdev.start({ id: 'hostnet0' });
    const pid = n.pid!;
    const dir = dirname(n.path!);
    expect(n.connected).to.equal(true);
    expect(n.linkUp).to.equal(true);
    expect(alive(pid)).to.equal(true);
    if (process.getuid?.() === 0) {
      // passt drops to nobody before it creates its socket: the directory is nobody's, still private.
      const st = statSync(dir);
      expect(st.mode & 0o777).to.equal(0o700);
      expect(st.uid).to.not.equal(0);
    }
    const got: Uint8Array[] = [];
    n.attach({ receive: (f) => (got.push(f.slice()), true), writable: () => undefined });
    // passt's guest side: it answers ARP for any address but the guest's own (its gateway, 192.0.2.1 here or the host's).
    const mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    expect(n.send(arpWhoHas(mac, [10, 9, 9, 9], [10, 9, 9, 1]))).to.equal('sent');
    const end = Date.now() + 5000;
    while (!got.some((f) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const reply = got.find((f) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2);
    expect(reply, 'an ARP reply from passt').to.not.equal(undefined);
    expect([...reply!.subarray(0, 6)]).to.deep.equal(mac);
    await n.close();
    expect(alive(pid), 'passt stopped').to.equal(false);
    expect(existsSync(dir), 'directory removed').to.equal(false);
  });

  it('passt_dying_takes_the_link_down', async function () {
    requireProgram(this, 'passt');
    n = await PasstNetdev.start({ id: 'hostnet0' });
    const down = once(n, 'disconnected');
    process.kill(n.pid!, 'SIGKILL');
    await down;
    expect(n.linkUp).to.equal(false);
    await n.close();
    expect(existsSync(dirname(n.path!))).to.equal(false);
  });
});
