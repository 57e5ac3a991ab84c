// Config `speed` / `duplex` (VIRTIO 1.3 §5.1.4, SPEED_DUPLEX; devices/virtio-net/speed-duplex.ts):
// from the options, from a backend that knows its link (LinkSpeedCapable), unknown otherwise; a
// backend's values taken only while the guest's link is down (§5.1.4.1). The TAP's own values are
// tested against the kernel in test/lib/netdev/tap-netdev.test.ts.

import { expect } from 'chai';
import { NetRig } from '../../support/net-rig.js';
import { MemoryNetdev } from '../../../lib/netdev/memory-netdev.js';
import type { LinkSpeed, LinkSpeedCapable } from '../../../lib/netdev/netdev.js';

const MAIN = '52:54:00:12:34:56';

/** A backend that reports a link speed (what TapNetdev does from sysfs). */
class SpeedNetdev extends MemoryNetdev implements LinkSpeedCapable {
  now: LinkSpeed = { speed: 2500, duplex: 'full' };
  reads = 0;
  linkSpeed(): LinkSpeed {
    this.reads++;
    return this.now;
  }
}

function speed(rig: NetRig): number {
  return rig.driver.readConfig(12, 4);
}
function duplex(rig: NetRig): number {
  return rig.driver.readConfig(16, 1);
}

describe('devices/virtio-net speed and duplex', () => {
  it('the_options_set_the_config_fields_and_offer_speed_duplex', () => {
    const rig = new NetRig({ mac: MAIN, speed: 40000, duplex: 'half' });
    expect(rig.has('SPEED_DUPLEX')).to.equal(true);
    expect(speed(rig)).to.equal(40000);
    expect(duplex(rig)).to.equal(0);
  });

  it('without_options_or_a_backend_that_knows_speed_duplex_is_not_offered', () => {
    const rig = new NetRig({ mac: MAIN });
    expect(rig.has('SPEED_DUPLEX')).to.equal(false);
    // The field does not exist: it reads 0 (and is recorded as a driver mistake).
    expect(speed(rig)).to.equal(0);
  });

  it('enabled_without_a_source_reports_unknown', () => {
    const rig = new NetRig({ mac: MAIN, features: { enable: ['SPEED_DUPLEX'] } });
    expect(rig.has('SPEED_DUPLEX')).to.equal(true);
    expect(speed(rig)).to.equal(0xffffffff);
    expect(duplex(rig)).to.equal(0xff);
  });

  it('a_backend_that_knows_its_link_fills_what_the_options_leave_out', () => {
    const rig = new NetRig({ mac: MAIN, netdev: new SpeedNetdev({ id: 'n0' }), duplex: 'half' });
    expect(rig.has('SPEED_DUPLEX')).to.equal(true);
    expect(speed(rig)).to.equal(2500);
    expect(duplex(rig)).to.equal(0);
  });

  it('the_backends_values_change_only_when_the_link_comes_up_again', () => {
    const netdev = new SpeedNetdev({ id: 'n0' });
    const rig = new NetRig({ mac: MAIN, netdev });
    netdev.now = { speed: 100, duplex: 'half' };
    expect(speed(rig)).to.equal(2500); // link up: unchanged (§5.1.4.1 SHOULD NOT change)
    rig.device.setLink(false);
    expect(speed(rig)).to.equal(2500);
    rig.device.setLink(true);
    expect(speed(rig)).to.equal(100);
    expect(duplex(rig)).to.equal(0);
    netdev.now = { speed: 0x80000000, duplex: undefined }; // out of range: unknown
    rig.device.setLink(false);
    rig.device.setLink(true);
    expect(speed(rig)).to.equal(0xffffffff);
    expect(duplex(rig)).to.equal(0xff);
  });

  it('disable_removes_it_even_with_options', () => {
    const rig = new NetRig({ mac: MAIN, speed: 1000, features: { disable: ['SPEED_DUPLEX'] } });
    expect(rig.has('SPEED_DUPLEX')).to.equal(false);
  });
});
