// lib/base/schedule.ts: which host facility `defer` uses, and that each runs the callback later.

import { expect } from 'chai';
import { defer, pickDefer } from '../../../lib/base/schedule.js';

describe('lib/base/schedule', () => {
  it('in_node_defer_runs_after_the_current_turn_like_set_immediate', async () => {
    const order: string[] = [];
    await new Promise<void>((resolve) => {
      defer(() => {
        order.push('deferred');
        resolve();
      });
      void Promise.resolve().then(() => order.push('microtask'));
      order.push('sync');
    });
    expect(order).to.deep.equal(['sync', 'microtask', 'deferred']);
  });

  it('prefers_set_immediate_when_present', () => {
    const calls: string[] = [];
    const d = pickDefer({
      setImmediate: (fn) => {
        calls.push('immediate');
        fn();
      },
      MessageChannel: undefined,
      queueMicrotask: () => calls.push('micro'),
    });
    let ran = false;
    d(() => void (ran = true));
    expect([calls, ran]).to.deep.equal([['immediate'], true]);
  });

  it('without_set_immediate_uses_a_message_channel_in_order', async () => {
    // Node's MessageChannel types lack `onmessage`, which Node (like browsers) supports.
    const d = pickDefer({ MessageChannel: MessageChannel as never, queueMicrotask });
    const order: number[] = [];
    await new Promise<void>((resolve) => {
      d(() => order.push(1));
      d(() => {
        order.push(2);
        resolve();
      });
      expect(order).to.deep.equal([]);
    });
    expect(order).to.deep.equal([1, 2]);
  });

  it('with_neither_falls_back_to_a_microtask', async () => {
    const d = pickDefer({ queueMicrotask });
    let ran = false;
    d(() => void (ran = true));
    expect(ran).to.equal(false);
    await Promise.resolve();
    expect(ran).to.equal(true);
  });
});
