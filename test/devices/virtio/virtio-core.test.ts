// devices/virtio/virtio-core.ts on its own (no facade, no transport calls): the running state as a
// value, the handlers' moments, the typed events, and a throwing listener kept out of the device.

import { expect } from 'chai';
import { GuestMemory } from '../../../virtqueue/guest-memory.js';
import type { Virtqueue } from '../../../virtqueue/virtqueue.js';
import { TypedEmitter } from '../../../lib/base/events.js';
import { VirtioCore } from '../../../devices/virtio/virtio-core.js';
import type { CoreEvents, RunState } from '../../../devices/virtio/core-types.js';
import { STATUS_DEVICE_NEEDS_RESET } from '../../../devices/virtio/device-status.js';
import { featureBit, VIRTIO_F_VERSION_1 } from '../../../devices/virtio/features.js';
import { DriverRing } from '../../support/driver-ring.js';

const V1 = featureBit(VIRTIO_F_VERSION_1);
const FEATURES_DONE = 1 | 2 | 8; // ACKNOWLEDGE | DRIVER | FEATURES_OK
const DRIVER_OK = 4;

interface Rig {
  core: VirtioCore;
  events: TypedEmitter<CoreEvents>;
  calls: string[];
  rings: DriverRing[];
  memory: GuestMemory;
}

function rig(listenerErrors: unknown[] = []): Rig {
  const memory = new GuestMemory(1 << 20);
  const calls: string[] = [];
  const events = new TypedEmitter<CoreEvents>({ onListenerError: (e) => listenerErrors.push(e) });
  const core = new VirtioCore(
    { deviceType: 42, queueMaxSizes: [8, 8], offeredFeatures: 0n, configFields: [] },
    memory,
    {
      onFeaturesOk: (f) => calls.push(`features-ok:${f.toString(16)}`),
      onDriverOk: (queues) => calls.push(`driver-ok:${queues.map((q) => (q === null ? '-' : q.index)).join('')}`),
      onQueueStarted: (i) => calls.push(`started:${i}`),
      onQueueNotify: (i, q: Virtqueue) => calls.push(`notify:${i}:${q.index}`),
      onQueuesStopped: () => calls.push('stopped'),
      onReset: () => calls.push('reset'),
    },
    events,
  );
  const rings = [0, 1].map((i) => new DriverRing(memory, { size: 8, base: 0x10000 * (i + 1) }));
  return { core, events, calls, rings, memory };
}

function program(r: Rig, index: number): void {
  const c = r.rings[index]!.queueConfig();
  r.core.writeQueueSize(index, c.size);
  r.core.writeQueueAddressWord(index, 'descTable', 0, c.descTable);
  r.core.writeQueueAddressWord(index, 'availRing', 0, c.availRing);
  r.core.writeQueueAddressWord(index, 'usedRing', 0, c.usedRing);
  r.core.writeQueueReady(index, true);
}

function negotiate(r: Rig): void {
  r.core.writeStatus(1);
  r.core.writeStatus(3);
  r.core.writeDriverFeatureWord(1, Number(V1 >> 32n));
  r.core.writeStatus(FEATURES_DONE);
}

describe('devices/virtio/virtio-core', () => {
  it('running_state_goes_stopped_running_stopped_and_a_running_value_never_changes', () => {
    const r = rig();
    expect(r.core.state).to.deep.equal({ kind: 'stopped' });
    negotiate(r);
    program(r, 0);
    r.core.writeStatus(FEATURES_DONE | DRIVER_OK);
    const first: RunState = r.core.state;
    expect(first.kind).to.equal('running');
    if (first.kind !== 'running') return;
    expect(first.queues[0]!.index).to.equal(0);
    expect(first.queues[1]).to.equal(null);
    expect(Object.isFrozen(first.queues)).to.equal(true);
    // A queue enabled after DRIVER_OK: a new running value; the old one is as it was.
    program(r, 1);
    const second = r.core.state;
    expect(second).to.not.equal(first);
    expect(first.queues[1]).to.equal(null);
    expect(second.kind === 'running' && second.queues[1]!.index).to.equal(1);
    expect(second.kind === 'running' && second.queues[0]).to.equal(first.queues[0]);
    // Reset: stopped, and the queues getter shows nulls.
    r.core.writeStatus(0);
    expect(r.core.state).to.deep.equal({ kind: 'stopped' });
    expect(r.core.queues).to.deep.equal([null, null]);
    expect(r.calls).to.deep.equal([`features-ok:${V1.toString(16)}`, 'driver-ok:0-', 'started:1', 'stopped', 'reset']);
  });

  it('a_tier1_error_stops_the_running_state_and_notify_reaches_no_handler', () => {
    const r = rig();
    negotiate(r);
    program(r, 0);
    r.core.writeStatus(FEATURES_DONE | DRIVER_OK);
    r.core.notify(0);
    r.core.needsReset({ code: 'test.broken' });
    expect(r.core.state.kind).to.equal('stopped');
    r.core.notify(0);
    expect(r.calls.filter((c) => c.startsWith('notify'))).to.deep.equal(['notify:0:0']);
    expect(r.core.status & STATUS_DEVICE_NEEDS_RESET).to.not.equal(0);
    expect(r.core.diagnostics().at(-1)).to.deep.include({ code: 'test.broken', section: '2.1.2' });
  });

  it('a_throwing_listener_does_not_break_the_device', () => {
    const errors: unknown[] = [];
    const r = rig(errors);
    r.events.on('status', () => {
      throw new Error('embedder bug');
    });
    r.events.on('needs-reset', () => {
      throw new Error('embedder bug 2');
    });
    negotiate(r);
    program(r, 0);
    expect(() => r.core.writeStatus(FEATURES_DONE | DRIVER_OK)).to.not.throw();
    expect(r.core.running).to.equal(true);
    expect(r.core.diagnosticCount('device.hook-threw')).to.equal(0);
    const ring = r.rings[0]!;
    ring.addChain([{ len: 4 }]);
    r.core.notify(0);
    expect(r.calls).to.include('notify:0:0');
    expect(() => r.core.needsReset({ code: 'test.x' })).to.not.throw();
    expect(errors.map((e) => (e as Error).message)).to.deep.equal(['embedder bug', 'embedder bug', 'embedder bug', 'embedder bug', 'embedder bug 2']);
  });

  it('bad_spec_throws_at_construction', () => {
    const memory = new GuestMemory(4096);
    const handlers = { onDriverOk: () => {}, onQueueNotify: () => {} };
    expect(() => new VirtioCore({ deviceType: 1, queueMaxSizes: [3], offeredFeatures: 0n, configFields: [] }, memory, handlers)).to.throw(RangeError, /queueMaxSizes/);
    expect(() => new VirtioCore({ deviceType: 1, queueMaxSizes: [8], offeredFeatures: 0n, configFields: [] }, {} as GuestMemory, handlers)).to.throw(TypeError, /memory/);
  });
});
