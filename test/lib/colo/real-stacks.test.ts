// COLO with real TCP stacks: three throwaway network namespaces on TAP links — a client, a
// "primary" and a "secondary" guest (same IP and MAC, independent kernels' stacks and so
// different ISNs). This process is the COLO proxy between them:
//
//   client ─tapC─▶ primary (tapP)                           [filter-mirror to the secondary]
//          └────▶ secondary chain: [dump host side, filter-rewriter, dump guest side] ─▶ tapS
//   primary ─tapP─▶ colo-compare primary_in ─┐
//   secondary ─tapS─▶ chain (rewriter maps seq) ─▶ secondary_in ─┴▶ match ─▶ tapC ─▶ client
//
// The client downloads 64 KiB from the primary. The secondary's own session must stay alive
// although the client never sees it: it gets the full request, its data is acknowledged (through
// the rewriter's ack mapping) and it sees the client's FIN. colo-compare sees identical streams
// and requests no checkpoint; tshark finds every segment of the secondary's view checksummed and
// acknowledging nothing it never sent. Skipped with the reason without root/TUN/tshark.

import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ColoCompare, type CheckpointRequest } from '../../../lib/colo/colo-compare.js';
import { DumpFilter } from '../../../lib/filters/dump.js';
import { FilterChain } from '../../../lib/filters/filter-chain.js';
import { RewriterFilter } from '../../../lib/filters/rewriter.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import { TapNetdev } from '../../../lib/netdev/tap-netdev.js';
import { Netns, hostCleanups, linkName } from '../../support/netns.js';
import { tapAndNetns } from '../../support/netns-tap.js';
import { needTshark, tsharkFields } from '../filters/tshark.js';

const GUEST_IP = '10.77.0.2';
const CLIENT_IP = '10.77.0.1';
const GUEST_MAC = '52:54:00:77:00:02';
const CLIENT_MAC = '52:54:00:77:00:01';
const RESPONSE_BYTES = 65536;

const SERVER = `
import socket, sys, json
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('${GUEST_IP}', 8080)); s.listen(1); s.settimeout(20)
print('listening', flush=True)
c, _ = s.accept(); c.settimeout(20)
req = b''
while not req.endswith(b'\\n\\n'):
    d = c.recv(4096)
    if not d: break
    req += d
c.sendall(bytes((i * 7) & 0xff for i in range(${RESPONSE_BYTES})))
c.shutdown(socket.SHUT_WR)
rest = c.recv(4096)   # b'' once the client's FIN arrives
print(json.dumps({'request': len(req), 'eof': rest == b''}), flush=True)
`;

const CLIENT = `
import socket, json
c = socket.create_connection(('${GUEST_IP}', 8080), timeout=20)
c.sendall(b'GET /colo HTTP/1.0' + b'.' * 200 + b'\\n\\n')
got = b''
while True:
    d = c.recv(65536)
    if not d: break
    got += d
c.close()
print(json.dumps({'bytes': len(got), 'intact': got == bytes((i * 7) & 0xff for i in range(${RESPONSE_BYTES}))}), flush=True)
`;

/** Runs python3 in a namespace; resolves with its stdout lines when it exits. */
function python(ns: Netns, script: string): { child: ChildProcess; lines: string[]; done: Promise<number>; line: (re: RegExp) => Promise<string> } {
  const child = spawn('ip', ['netns', 'exec', ns.name, 'python3', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let err = '';
  const waiters: (() => void)[] = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (t: string) => {
    lines.push(...t.split('\n').filter((l) => l !== ''));
    waiters.splice(0).forEach((w) => w());
  });
  child.stderr!.on('data', (t: Buffer) => (err += t.toString()));
  const done = new Promise<number>((resolve) =>
    child.on('exit', (code) => {
      waiters.splice(0).forEach((w) => w());
      if (code !== 0) console.log(`      python in ${ns.name} exited ${code}: ${err}`);
      resolve(code ?? -1);
    }),
  );
  const line = async (re: RegExp): Promise<string> => {
    for (;;) {
      const l = lines.find((x) => re.test(x));
      if (l !== undefined) return l;
      if (child.exitCode !== null) throw new Error(`python exited ${child.exitCode} before printing ${re}: ${err}`);
      await new Promise<void>((w) => waiters.push(w));
    }
  };
  return { child, lines, done, line };
}

describe('lib/colo COLO proxy between real TCP stacks (netns + TAP)', function () {
  this.timeout(60_000);
  const cleanups = hostCleanups();

  before(async function () {
    needTshark(this);
  });

  function host(tag: string, addr: string, mac: string, peerIp: string, peerMac: string): { ns: Netns; tap: TapNetdev } {
    const { ns, tap } = tapAndNetns(cleanups, { id: `tap-${tag}`, ifname: linkName(tag), vnetHdr: false });
    ns.disableIpv6();
    ns.adopt(tap.ifname);
    ns.ip(['link', 'set', tap.ifname, 'address', mac]);
    ns.ip(['addr', 'add', `${addr}/24`, 'dev', tap.ifname]);
    ns.ip(['link', 'set', tap.ifname, 'up']);
    // Static neighbours: the secondary's own ARP requests never leave the proxy (as in COLO).
    ns.ip(['neigh', 'replace', peerIp, 'lladdr', peerMac, 'dev', tap.ifname, 'nud', 'permanent']);
    return { ns, tap };
  }

  it('secondary_session_stays_alive_through_the_rewriter_and_compare_sees_no_divergence', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'colo-real-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const client = host('c', CLIENT_IP, CLIENT_MAC, GUEST_IP, GUEST_MAC);
    const primary = host('p', GUEST_IP, GUEST_MAC, CLIENT_IP, CLIENT_MAC);
    const secondary = host('s', GUEST_IP, GUEST_MAC, CLIENT_IP, CLIENT_MAC);

    // colo-compare: output goes to the client.
    const requests: CheckpointRequest[] = [];
    const cc = new ColoCompare({ id: 'comp0', output: (f) => void client.tap.send(f) });
    cc.on('checkpoint-request', (r) => requests.push(r));
    cc.start();
    cleanups.push(() => cc.close());

    // The secondary's netdev side: a memory netdev whose "host" is the proxy.
    const memS = new MemoryNetdev({ id: 'hn0-secondary' });
    memS.on('transmit', (f: Uint8Array) => cc.secondaryInput(f));
    const chainS = new FilterChain(memS);
    const hostView = join(dir, 'secondary-host-side.pcap');
    const guestView = join(dir, 'secondary-guest-side.pcap');
    chainS.add(new DumpFilter({ id: 'dump-host', file: hostView }));
    const rewriter = new RewriterFilter({ id: 'f3', queue: 'all' });
    chainS.add(rewriter);
    chainS.add(new DumpFilter({ id: 'dump-guest', file: guestView }));
    chainS.attach({ receive: (f) => (secondary.tap.send(f), true), writable: () => undefined });
    cleanups.push(() => chainS.close());
    secondary.tap.attach({ receive: (f) => (chainS.send(f), true), writable: () => undefined });

    primary.tap.attach({ receive: (f) => (cc.primaryInput(f), true), writable: () => undefined });
    // The client's frames reach both guests (filter-mirror + filter-redirector in QEMU).
    client.tap.attach({
      receive: (f) => {
        primary.tap.send(f);
        memS.inject(f);
        return true;
      },
      writable: () => undefined,
    });

    const sSrv = python(secondary.ns, SERVER);
    const pSrv = python(primary.ns, SERVER);
    await Promise.all([sSrv.line(/listening/), pSrv.line(/listening/)]);
    const cli = python(client.ns, CLIENT);
    const [cCode, pCode, sCode] = await Promise.all([cli.done, pSrv.done, sSrv.done]);
    expect([cCode, pCode, sCode]).to.deep.equal([0, 0, 0]);
    expect(JSON.parse(await cli.line(/bytes/))).to.deep.equal({ bytes: RESPONSE_BYTES, intact: true });
    expect(JSON.parse(await pSrv.line(/request/))).to.deep.equal({ request: 220, eof: true });
    // The secondary got the whole request, had all its data acknowledged, and saw the FIN.
    expect(JSON.parse(await sSrv.line(/request/))).to.deep.equal({ request: 220, eof: true });

    expect(requests).to.deep.equal([]);
    expect(cc.stats()).to.deep.include({ checkpointRequests: 0, flushed: 0 });
    const rw = rewriter.stats();
    expect(rw.rewritten).to.be.greaterThan(40);
    expect(rw).to.deep.include({ connections: 0, closed: 1 }); // FIN, FIN, last ACK: forgotten
    // The secondary's kernel rejected nothing and reset nothing, and lost nothing: it may
    // retransmit only on a timer, never because of duplicate ACKs. (The secondary waits for the
    // client's ACKs of data colo-compare holds until the secondary's matching bytes arrive; a
    // primary lagging past the secondary's RTO or tail-loss-probe timer — possible on the loaded
    // 2-core machine — fires a timer retransmission of data that was not lost. A retransmission
    // driven by duplicate ACKs, or one of a segment already retransmitted, means a segment really
    // went missing or out of order in the rewriter's path: that is a failure, however loaded.)
    const counters = secondary.ns.exec('nstat', ['-az']);
    const counter = (name: string): number => Number(new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(counters)?.[1] ?? 0);
    for (const name of ['TcpExtTSEcrRejected', 'TcpOutRsts', 'TcpExtPAWSEstab', 'TcpExtTCPACKSkippedSynRecv', 'TcpExtTCPChallengeACK', 'TcpExtTCPFastRetrans', 'TcpExtTCPLostRetransmit', 'TcpExtTCPSackRecovery', 'TcpExtTCPRenoRecovery']) {
      expect(counter(name), name).to.equal(0);
    }
    const timers = counter('TcpExtTCPTimeouts') + counter('TcpExtTCPLossProbes');
    expect(counter('TcpRetransSegs'), `retransmitted segments (timer-driven retransmissions: ${timers})`).to.be.at.most(timers);
    await chainS.close();

    // In the secondary's view: every checksum good, no reset, no ACK of a segment it never sent,
    // no gap in what it was sent, no fast retransmission (see the timer bound above).
    const rows = await tsharkFields(
      guestView,
      ['tcp.checksum.status', 'tcp.flags.reset', 'tcp.analysis.ack_lost_segment', 'tcp.analysis.lost_segment', 'tcp.analysis.fast_retransmission'],
      'tcp',
    );
    expect(rows.length).to.be.greaterThan(40);
    rows.forEach((r, k) => expect(r, `secondary view, tcp frame ${k + 1}`).to.deep.equal(['1', '0', '', '', '']));
    const hostRows = await tsharkFields(hostView, ['tcp.checksum.status'], 'tcp');
    hostRows.forEach((r, k) => expect(r[0], `host side, tcp frame ${k + 1}`).to.equal('1'));
  });
});
