// lib/base/events.ts: the typed emitter's Node-compatible ordering and its listener-error rule.

import { expect } from 'chai';
import { TypedEmitter } from '../../../lib/base/events.js';

interface Events {
  tick: number;
  name: string;
}

function collecting(): { e: TypedEmitter<Events>; errors: [unknown, string][] } {
  const errors: [unknown, string][] = [];
  return { e: new TypedEmitter<Events>({ onListenerError: (err, ev) => errors.push([err, ev]) }), errors };
}

describe('lib/base/events', () => {
  it('listeners_run_in_the_order_added_with_the_payload', () => {
    const { e } = collecting();
    const seen: string[] = [];
    e.on('tick', (n) => seen.push(`a${n}`));
    e.on('tick', (n) => seen.push(`b${n}`));
    e.on('name', (s) => seen.push(s));
    expect(e.emit('tick', 1)).to.equal(true);
    expect(e.emit('name', 'x')).to.equal(true);
    expect(seen).to.deep.equal(['a1', 'b1', 'x']);
  });

  it('emit_without_listeners_answers_false', () => {
    expect(new TypedEmitter<Events>().emit('tick', 1)).to.equal(false);
  });

  it('once_runs_one_time_and_off_removes_the_most_recent_registration', () => {
    const { e } = collecting();
    let once = 0;
    let twice = 0;
    const l = (): void => void twice++;
    e.once('tick', () => void once++);
    e.on('tick', l);
    e.on('tick', l);
    e.emit('tick', 0);
    e.emit('tick', 0);
    expect(once).to.equal(1);
    expect(twice).to.equal(4);
    e.off('tick', l);
    e.emit('tick', 0);
    expect(twice).to.equal(5);
    expect(e.listenerCount('tick')).to.equal(1);
    e.off('tick', l);
    expect(e.listenerCount('tick')).to.equal(0);
    expect(e.emit('tick', 0)).to.equal(false);
  });

  it('off_finds_a_once_listener_by_the_function_given', () => {
    const { e } = collecting();
    let n = 0;
    const l = (): void => void n++;
    e.once('tick', l);
    e.off('tick', l);
    e.emit('tick', 0);
    expect(n).to.equal(0);
  });

  it('a_listener_added_or_removed_during_an_emit_does_not_change_that_emit', () => {
    const { e } = collecting();
    const seen: string[] = [];
    const late = (): void => void seen.push('late');
    const b = (): void => void seen.push('b');
    e.on('tick', () => {
      seen.push('a');
      e.on('tick', late);
      e.off('tick', b);
    });
    e.on('tick', b);
    e.emit('tick', 0);
    expect(seen).to.deep.equal(['a', 'b']);
    seen.length = 0;
    e.emit('tick', 0);
    expect(seen).to.deep.equal(['a', 'late']); // the second 'late' added now runs next time
  });

  it('a_throwing_listener_does_not_throw_into_the_emitter_and_the_rest_still_run', () => {
    const { e, errors } = collecting();
    const boom = new Error('listener bug');
    let after = 0;
    e.on('tick', () => {
      throw boom;
    });
    e.on('tick', () => void after++);
    expect(() => e.emit('tick', 1)).to.not.throw();
    expect(after).to.equal(1);
    expect(errors).to.deep.equal([[boom, 'tick']]);
  });

  it('by_default_a_listener_error_is_rethrown_on_a_microtask', async () => {
    const e = new TypedEmitter<Events>();
    const boom = new Error('reported later');
    e.on('tick', () => {
      throw boom;
    });
    const caught = new Promise<unknown>((resolve) => {
      const listeners = process.listeners('uncaughtException');
      process.removeAllListeners('uncaughtException');
      process.once('uncaughtException', (err) => {
        for (const l of listeners) process.on('uncaughtException', l);
        resolve(err);
      });
    });
    expect(() => e.emit('tick', 1)).to.not.throw();
    expect(await caught).to.equal(boom);
  });

  it('a_throwing_error_handler_is_swallowed', () => {
    const e = new TypedEmitter<Events>({
      onListenerError: () => {
        throw new Error('handler bug');
      },
    });
    e.on('tick', () => {
      throw new Error('listener bug');
    });
    expect(() => e.emit('tick', 1)).to.not.throw();
  });

  it('a_listener_that_is_not_a_function_is_a_programmer_error', () => {
    expect(() => new TypedEmitter<Events>().on('tick', 42 as unknown as () => void)).to.throw(TypeError, /listener must be a function/);
  });

  it('remove_all_listeners_of_one_event_or_all', () => {
    const { e } = collecting();
    e.on('tick', () => {});
    e.on('name', () => {});
    e.removeAllListeners('tick');
    expect([e.listenerCount('tick'), e.listenerCount('name')]).to.deep.equal([0, 1]);
    e.removeAllListeners();
    expect(e.listenerCount('name')).to.equal(0);
  });
});
