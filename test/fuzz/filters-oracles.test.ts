// The filter fuzzer's oracles catch what they claim to: each code is shown firing on a planted
// bug — colo-compare, filter-rewriter, filter-mirror / filter-redirector (and their sockets)
// patched to do exactly the wrong thing the code names — on a small case that passes clean.
// Without these, a green filter-fuzz run would prove nothing.

import { expect } from 'chai';
import type { ColoCompare } from '../../lib/colo/colo-compare.js';
import { CONSUME, type Verdict } from '../../lib/filters/filter.js';
import type { RewriterFilter } from '../../lib/filters/rewriter.js';
import { runColo, type ColoPlant } from './filters/colo-world.js';
import type { FilterCase, FilterOp } from './filters/common.js';
import { coloFlowFrames, hexOf, mk, rewriterSessionFrames, synFlood, CLIENT, GUEST, TCP } from './filters/packets.js';
import { runRewriter, type RewriterPlant } from './filters/rewriter-world.js';
import { runSockets, type SocketsWorld } from './filters/sockets-world.js';

/** Private members the plants reach into (the bugs are planted inside the objects). */
type Inside = Record<string, unknown> & { table: { limit: number; get(k: Uint8Array): unknown }; key: Uint8Array; counters: Record<string, number> };
const inside = (o: object): Inside => o as unknown as Inside;

const ARP = (() => {
  const f = new Uint8Array(42).fill(0xff, 0, 6);
  f[12] = 0x08;
  f[13] = 0x06;
  return f;
})();

/** A clean colo conversation (SYN/ACK, 300 bytes cut differently, FIN), secondary lagging, plus an ARP and a UDP exchange. */
function coloCase(extra: FilterOp[] = [], setup: Record<string, number> = {}): FilterCase {
  const { p, s } = coloFlowFrames({ v6: false, proto: 6, cport: 40000, gport: 80, isn: 1000, len: 300, pcuts: [100, 200], scuts: [150], diff: -1, retrans: -1, syn: true, end: 'fin' });
  const udp = mk({ src: GUEST, dst: CLIENT, proto: 17, sport: 5000, dport: 6000, payload: [1, 2, 3] });
  const ops: FilterOp[] = [{ t: 'p', f: hexOf(ARP) }, { t: 'p', f: hexOf(udp) }, { t: 's', f: hexOf(udp) }];
  p.forEach((f, i) => {
    ops.push({ t: 'p', f: hexOf(f) });
    if (s[i] !== undefined) ops.push({ t: 's', f: hexOf(s[i]!) });
  });
  for (const f of s.slice(p.length)) ops.push({ t: 's', f: hexOf(f) });
  return { target: 'colo', setup: { maxConnections: 4, ...setup }, passthrough: [0], ops: [...ops, ...extra] };
}

const floodOps = (n: number): FilterOp[] => synFlood(n, 30000, { synAck: true, v6: false, from: GUEST, to: CLIENT }).map((f): FilterOp => ({ t: 'p', f: hexOf(f) }));

function colo(plant: ColoPlant, c = coloCase()): string | undefined {
  return runColo(c, undefined, plant)?.code;
}

/** Wraps an instance method (the plant). */
function patch<T extends object>(o: T, name: string, wrap: (orig: (...a: unknown[]) => unknown) => (...a: unknown[]) => unknown): void {
  const r = o as unknown as Record<string, (...a: unknown[]) => unknown>;
  const orig = r[name]!.bind(o);
  r[name] = wrap(orig);
}

const isArp = (f: unknown): boolean => f instanceof Uint8Array && f[12] === 0x08 && f[13] === 0x06;
const hasTcpPayload = (f: unknown): boolean => f instanceof Uint8Array && f[23] === 6 && f.length > 54;

describe('fuzz: filter oracles fire on planted bugs', function () {
  this.timeout(60_000);

  describe('colo-compare', () => {
    it('the_clean_cases_pass', () => {
      expect(runColo(coloCase())).to.equal(null);
      expect(runColo(coloCase(floodOps(40)))).to.equal(null);
    });

    it('colo.threw_an_exception_escaping_a_call', () => {
      expect(colo((cc) => patch(cc, 'secondaryInput', () => () => { throw new Error('planted'); }))).to.equal('colo.threw');
    });

    it('colo.verdict_a_not_ip_frame_held_back', () => {
      let held: Uint8Array | undefined;
      expect(colo((cc) => patch(cc, 'primaryInput', (orig) => (f, h) => {
        if (held !== undefined) orig(held);
        held = undefined;
        if (isArp(f)) held = (f as Uint8Array).slice();
        else orig(f, h);
      }))).to.equal('colo.verdict');
    });

    it('colo.order_a_frame_changed_on_its_way_out', () => {
      expect(colo((cc) => patch(cc, 'primaryInput', (orig) => (f, h) => {
        const g = (f as Uint8Array).slice();
        if (isArp(g)) g[41] = g[41]! ^ 1;
        orig(g, h);
      }))).to.equal('colo.order');
    });

    it('colo.lost_a_compared_frame_swallowed', () => {
      expect(colo((cc) => patch(cc, 'primaryInput', (orig) => (f, h) => {
        if (hasTcpPayload(f)) return;
        orig(f, h);
      }))).to.equal('colo.lost');
    });

    it('colo.held_too_long_no_timeout_release', () => {
      const lone = mk({ src: GUEST, dst: CLIENT, proto: 17, sport: 7000, dport: 7001, payload: [9, 9] });
      const c = coloCase([{ t: 'p', f: hexOf(lone) }, { t: 'tick', ms: 6000 }]);
      expect(runColo(c), 'the clean case releases it by a timeout checkpoint').to.equal(null);
      expect(colo((cc) => patch(cc, 'scan', () => () => undefined), c)).to.equal('colo.held-too-long');
    });

    it('colo.stats_a_counter_off_by_one', () => {
      expect(colo((cc) => patch(cc, 'stats', (orig) => () => {
        const s = orig() as { secondaryDropped: number };
        s.secondaryDropped++;
        return s;
      }))).to.equal('colo.stats');
    });

    it('colo.cap_a_connection_table_larger_than_its_limit', () => {
      const c = coloCase(floodOps(40));
      expect(colo((cc) => void (inside(cc).table.limit = 1000), c)).to.equal('colo.cap');
    });

    it('colo.checkpoint_storm_a_request_emitted_twice', () => {
      const c = coloCase(floodOps(40));
      expect(colo((cc) => patch(cc, 'emit', (orig) => (...a) => {
        orig(...a);
        return orig(...a);
      }), c)).to.equal('colo.checkpoint-storm');
    });

    it('colo.released_unmatched_primary_data_released_without_comparing', () => {
      expect(colo((cc) => patch(cc, 'settle', (orig) => (conn, overfull) => {
        const c = conn as { primary: unknown[] };
        const release = inside(cc).releaseFn as (p: unknown) => void;
        while (c.primary.length > 0) release(c.primary.shift());
        return orig(conn, overfull);
      }))).to.equal('colo.released-unmatched');
    });

    it('colo.false_mismatch_agreeing_streams_reported_different', () => {
      expect(colo((cc) => patch(cc, 'settle', (orig) => (conn, overfull) => {
        const c = conn as { primary: unknown[]; secondary: unknown[]; flow: string };
        if (c.primary.length > 0 && c.secondary.length > 0) return (inside(cc).inconsistent as (f: string, r: string) => void).call(cc, c.flow, 'mismatch');
        return orig(conn, overfull);
      }))).to.equal('colo.false-mismatch');
    });

    it('work.unbounded_a_call_doing_table_lookups_in_a_loop', () => {
      expect(colo((cc: ColoCompare) => patch(cc, 'primaryInput', (orig) => (f, h) => {
        for (let i = 0; i < 20; i++) inside(cc).table.get(inside(cc).key);
        orig(f, h);
      }))).to.equal('work.unbounded');
    });
  });

  describe('filter-rewriter', () => {
    const session = rewriterSessionFrames({ v6: false, guestServer: true, cport: 40000, gport: 80, clientIsn: 5000, primaryIsn: 0xfffffff0, secondaryIsn: 77777, pts: 123456, sts: 999, data: [100, 200, 50], end: 'fin', lastAck: true });
    const base: FilterCase = {
      target: 'rewriter',
      setup: { maxConnections: 4 },
      passthrough: [],
      ops: [
        ...session.map(({ t, f }): FilterOp => ({ t, f: hexOf(f) })),
        ...synFlood(10, 20000, { synAck: false, v6: false, from: CLIENT, to: GUEST }).map((f): FilterOp => ({ t: 'c', f: hexOf(f) })),
        { t: 'tick', ms: 200_000 },
        { t: 'checkpoint' },
      ],
    };
    const rw = (plant: RewriterPlant): string | undefined => runRewriter(base, undefined, plant)?.code;
    const onProcess = (wrap: (orig: (...a: unknown[]) => unknown, r: RewriterFilter) => (...a: unknown[]) => unknown): RewriterPlant => (r) => patch(r, 'process', (orig) => wrap(orig, r));

    it('the_clean_case_passes_and_rewrites', () => {
      const counts: Record<string, number> = {};
      expect(runRewriter(base, counts)).to.equal(null);
      expect(counts['frames rewritten']).to.be.greaterThan(5);
    });

    it('rewriter.threw_an_exception_escaping_process', () => {
      expect(rw(onProcess(() => () => { throw new Error('planted'); }))).to.equal('rewriter.threw');
    });

    it('rewriter.lost_a_frame_consumed', () => {
      expect(rw(onProcess((orig) => (d, f, h): Verdict => (hasTcpPayload(f) ? CONSUME : (orig(d, f, h) as Verdict))))).to.equal('rewriter.lost');
    });

    it('rewriter.verdict_a_rewritten_frame_with_a_wrong_byte', () => {
      expect(rw(onProcess((orig) => (d, f, h) => {
        const v = orig(d, f, h) as Verdict;
        if (v.kind === 'replace') v.frame[v.frame.length - 1] = v.frame[v.frame.length - 1]! ^ 1;
        return v;
      }))).to.equal('rewriter.verdict');
    });

    it('rewriter.stats_a_connection_closed_twice', () => {
      expect(rw(onProcess((orig, r) => (d, f, h) => {
        const before = r.stats().closed;
        const v = orig(d, f, h);
        if (r.stats().closed > before) inside(r).counters.closed!++;
        return v;
      }))).to.equal('rewriter.stats');
    });

    it('rewriter.cap_a_syn_flood_past_the_table_limit', () => {
      expect(rw((r) => void (inside(r).table.limit = 1000))).to.equal('rewriter.cap');
    });

    it('work.unbounded_a_frame_doing_table_lookups_in_a_loop', () => {
      expect(rw(onProcess((orig, r) => (d, f, h) => {
        for (let i = 0; i < 5; i++) inside(r).table.get(inside(r).key);
        return orig(d, f, h);
      }))).to.equal('work.unbounded');
    });
  });

  describe('filter-mirror and filter-redirector over sockets', () => {
    const tcp = (k: number, sport = 40000): string => hexOf(mk({ src: CLIENT, dst: GUEST, proto: 6, sport, dport: 80, seq: k, flags: TCP.ACK, payload: new Array<number>(k).fill(k) }));
    const dns = hexOf(mk({ src: CLIENT, dst: GUEST, proto: 17, sport: 3333, dport: 53, payload: [1, 2, 3] }));
    const base = (vnet: boolean): FilterCase => ({
      target: 'sockets',
      setup: { vnet },
      passthrough: [0],
      ops: [
        { t: 'c', f: tcp(10), h: '01000000000000000000000a' },
        { t: 'c', f: dns },
        { t: 'g', f: tcp(20) },
        { t: 'i', fs: [tcp(5), tcp(6), dns], cut: 7 },
        { t: 'junk', bytes: 'ffffffff00' },
        { t: 'i', fs: [tcp(7)], cut: 1000 },
        { t: 'g', f: dns },
        { t: 'c', f: tcp(30) },
      ],
    });
    const sk = async (plant: (w: SocketsWorld) => void, vnet = true): Promise<string | undefined> => (await runSockets(base(vnet), undefined, plant))?.code;

    it('the_clean_cases_pass', async () => {
      expect(await runSockets(base(true))).to.equal(null);
      expect(await runSockets(base(false))).to.equal(null);
    });

    it('sockets.threw_an_exception_escaping_the_chain', async () => {
      expect(await sk((w) => patch(w.mirror, 'process', () => () => { throw new Error('planted'); }))).to.equal('sockets.threw');
    });

    it('mirror.stream_a_copy_changed_on_the_socket', async () => {
      expect(await sk((w) => patch(w.a, 'write', (orig) => (f, h) => {
        const g = (f as Uint8Array).slice();
        g[0] = g[0]! ^ 1;
        return orig(g, h);
      }))).to.equal('mirror.stream');
    });

    it('redirector.stream_a_frame_not_written_but_reported_written', async () => {
      let n = 0;
      expect(await sk((w) => {
        w.waitMs = 300;
        patch(w.b, 'write', (orig) => (f, h) => (n++ === 1 ? true : orig(f, h)));
      })).to.equal('redirector.stream');
    });

    it('redirector.inject_input_frames_that_never_arrive', async () => {
      expect(await sk((w) => {
        w.waitMs = 300;
        w.cdev.removeAllListeners('frame');
      })).to.equal('redirector.inject');
    });

    it('chain.delivery_a_redirected_frame_also_passed_on', async () => {
      expect(await sk((w) => patch(w.redirector, 'process', (orig) => (d, f, h) => {
        orig(d, f, h);
        return { kind: 'pass' };
      }))).to.equal('chain.delivery');
    });

    it('redirector.junk_kept_garbage_without_a_diagnostic', async () => {
      expect(await sk((w) => {
        w.waitMs = 300;
        patch(w.cdev, 'emit', (orig) => (name, ...rest) => (name === 'diagnostic' ? false : orig(name, ...rest)));
      })).to.equal('redirector.junk-kept');
    });

    it('sockets.stats_a_copy_counted_twice', async () => {
      expect(await sk((w) => patch(w.mirror, 'process', (orig) => (d, f, h) => {
        const v = orig(d, f, h);
        inside(w.mirror).counters.passedThrough!++;
        return v;
      }))).to.equal('sockets.stats');
    });
  });
});
