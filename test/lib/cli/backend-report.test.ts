// What `virtio-net run` / `virtio-net guest` report about the backend (issue #13 item 4): host
// errors counted and their last text even when nobody listens for 'host-error', and the host link
// state and changes; on the status line and in the JSON result. Real TAP, skipped without root.

import { expect } from 'chai';
import { deleteLink, hostCleanups, linkName, run, trackLink } from '../../support/netns.js';
import { TapNetdev } from '../../../lib/netdev/tap-netdev.js';
import { backendReport, statusLine } from '../../../lib/cli/report.js';
import { VirtioNetDevice } from '../../../devices/virtio-net/virtio-net-device.js';
import { GuestMemory } from '../../../virtqueue/guest-memory.js';

describe('lib/cli backend report (real TAP)', function () {
  this.timeout(20_000);
  const cleanups = hostCleanups();

  it('host_error_without_listener_is_counted_and_reported_by_the_cli', () => {
    const tap = new TapNetdev({ id: 'hostnet0', ifname: linkName('t') });
    trackLink(tap.ifname);
    cleanups.push(() => deleteLink(tap.ifname));
    cleanups.push(() => tap.close());
    const device = new VirtioNetDevice({ id: 'net0', memory: new GuestMemory(1 << 20), netdev: tap });
    run('ip', ['link', 'set', tap.ifname, 'up']);
    expect(tap.listenerCount('host-error')).to.equal(0);
    deleteLink(tap.ifname);
    expect(tap.send(new Uint8Array(60))).to.equal('dropped');
    const report = backendReport(tap);
    expect(report.errors).to.not.equal(null);
    expect(report.errors!.count).to.equal(1);
    expect(report.errors!.last).to.match(/EBADFD/);
    expect(report.link).to.include({ up: false, downs: 1 });
    const line = statusLine(1000, device.stats(), 0, 0, report);
    expect(line).to.match(/backend errors 1/);
    expect(line).to.match(/EBADFD/);
    expect(line).to.match(/host link down/);
  });
});
