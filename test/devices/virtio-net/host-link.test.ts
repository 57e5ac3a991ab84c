// The device follows its backend's host link (LinkStateCapable): config `status` LINK_UP and a
// config change interrupt (§5.1.4), combined with management's set_link: the guest sees the link up
// only while both say up. A MemoryNetdev given the capability stands in for TAP / macvtap (the real
// ones are test/lib/netdev/host-link.test.ts).

import { expect } from 'chai';
import { NetRig } from '../../support/net-rig.js';
import { NetStatus } from '../../../devices/virtio-net/constants.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import type { LinkStateCapable, LinkStateChange, LinkStatus } from '../../../lib/netdev/netdev.js';
import { hasLinkState } from '../../../lib/netdev/netdev.js';

const ISR_CONFIG = 2;

/** A MemoryNetdev whose host link the test sets. */
class LinkedMemoryNetdev extends MemoryNetdev implements LinkStateCapable {
  private up = true;
  private readonly linkListeners = new Set<(c: LinkStateChange) => void>();
  get linkUp(): boolean {
    return this.up;
  }
  onLinkChange(listener: (c: LinkStateChange) => void): () => void {
    this.linkListeners.add(listener);
    return () => this.linkListeners.delete(listener);
  }
  linkStatus(): LinkStatus {
    return { up: this.up, downs: 0, ups: 0, last: null };
  }
  setHost(up: boolean): void {
    this.up = up;
    for (const l of this.linkListeners) l({ up, reason: 'host-link', atMs: Date.now() });
  }
}

describe('devices/virtio-net host link', () => {
  it('host_link_down_clears_link_up_with_a_config_interrupt_and_up_sets_it_again', () => {
    const netdev = new LinkedMemoryNetdev({ id: 'h0' });
    expect(hasLinkState(netdev)).to.equal(true);
    const rig = new NetRig({ netdev });
    rig.readIsr();
    netdev.setHost(false);
    expect(rig.readIsr() & ISR_CONFIG).to.equal(ISR_CONFIG);
    expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(0);
    expect(rig.device.linkUp).to.equal(false);
    netdev.setHost(true);
    expect(rig.readIsr() & ISR_CONFIG).to.equal(ISR_CONFIG);
    expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(NetStatus.LINK_UP);
    expect(rig.device.stats().interrupts.config).to.equal(2);
  });

  it('a_backend_whose_host_link_is_down_at_creation_starts_the_guest_link_down', () => {
    const netdev = new LinkedMemoryNetdev({ id: 'h0' });
    netdev.setHost(false);
    const rig = new NetRig({ netdev });
    expect(rig.readLinkStatus() & NetStatus.LINK_UP).to.equal(0);
  });

  it('set_link_and_the_host_link_combine_up_only_when_both_say_up', () => {
    const netdev = new LinkedMemoryNetdev({ id: 'h0' });
    const rig = new NetRig({ netdev });
    const up = (): boolean => (rig.readLinkStatus() & NetStatus.LINK_UP) !== 0;
    rig.device.setLink(false); // management down
    netdev.setHost(false);
    netdev.setHost(true); // host back: management still says down
    expect(up()).to.equal(false);
    rig.device.setLink(true);
    expect(up()).to.equal(true);
    netdev.setHost(false);
    rig.device.setLink(true); // management up cannot raise a link whose host is down
    expect(up()).to.equal(false);
    expect(rig.device.linkUp).to.equal(false);
    netdev.setHost(true);
    expect(up()).to.equal(true);
    // Each change of what the guest sees raised one config interrupt: down, up, down, up.
    expect(rig.device.stats().interrupts.config).to.equal(4);
  });

  it('a_backend_that_fails_its_send_is_counted_as_a_backend_tx_error', () => {
    const netdev = new LinkedMemoryNetdev({ id: 'h0' });
    const rig = new NetRig({ netdev });
    (netdev as unknown as { send: () => string }).send = () => 'dropped';
    rig.send(new Uint8Array(60).fill(0xff));
    const s = rig.device.stats();
    expect(s.tx.frames).to.equal(0);
    expect(s.tx.errors.backend).to.equal(1);
  });
});
