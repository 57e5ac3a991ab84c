import { expect } from 'chai';
import {
  STATUS_ACKNOWLEDGE as ACK,
  STATUS_DEVICE_NEEDS_RESET,
  STATUS_DRIVER as DRV,
  STATUS_DRIVER_OK as DOK,
  STATUS_FAILED,
  STATUS_FEATURES_OK as FOK,
  nextStatus,
} from '../../../devices/virtio/device-status.js';
import { featureBit, VIRTIO_F_VERSION_1 } from '../../../devices/virtio/features.js';
import { addStatus, initDevice, readStatus, writeStatus } from '../../support/driver-transport.js';
import { ECHO_F_UPPER } from './echo-device.js';
import { mmioRig, pciRig, ring } from './setup.js';

const accept = (): null => null;
const V1 = featureBit(VIRTIO_F_VERSION_1);

function lastCode(rig: { device: { diagnostics(): readonly { code: string; section: string }[] } }): { code: string; section: string } | undefined {
  const d = rig.device.diagnostics();
  return d[d.length - 1];
}

/** Drives the device to ACK|DRIVER with VERSION_1 acknowledged through MMIO. */
function toDriver(rig: ReturnType<typeof mmioRig>, features = V1): void {
  writeStatus(rig.transport, 0);
  addStatus(rig.transport, ACK);
  addStatus(rig.transport, DRV);
  rig.transport.write(0x24, 4, 1);
  rig.transport.write(0x20, 4, Number(features >> 32n));
  rig.transport.write(0x24, 4, 0);
  rig.transport.write(0x20, 4, Number(features & 0xffff_ffffn));
}

describe('devices/virtio/device-status', () => {
  describe('nextStatus (pure)', () => {
    it('writing_zero_is_a_reset', () => {
      expect(nextStatus(ACK | DRV | FOK | DOK, 0, 'modern', accept)).to.deep.equal({ kind: 'reset' });
    });

    it('linux_sequence_sets_each_bit_in_order_without_mistakes', () => {
      let s = 0;
      for (const bit of [ACK, DRV, FOK, DOK]) {
        const t = nextStatus(s, s | bit, 'modern', accept);
        expect(t.kind).to.equal('update');
        if (t.kind !== 'update') return;
        expect(t.mistakes).to.deep.equal([]);
        expect(t.newlySet).to.equal(bit);
        s = t.status;
      }
      expect(s).to.equal(ACK | DRV | FOK | DOK);
    });

    it('driver_clearing_a_bit_keeps_it_and_is_a_mistake', () => {
      const t = nextStatus(ACK | DRV, ACK, 'modern', accept);
      expect(t).to.deep.include({ kind: 'update', status: ACK | DRV, newlySet: 0 });
      if (t.kind === 'update') expect(t.mistakes.map((m) => m.code)).to.deep.equal(['status.bit-cleared']);
    });

    it('driver_echoing_needs_reset_keeps_the_device_bit_without_a_mistake', () => {
      const cur = ACK | DRV | FOK | DOK | STATUS_DEVICE_NEEDS_RESET;
      const t = nextStatus(cur, cur | STATUS_FAILED, 'modern', accept);
      expect(t).to.deep.include({ status: cur | STATUS_FAILED });
      if (t.kind === 'update') expect(t.mistakes).to.deep.equal([]);
    });

    it('driver_setting_needs_reset_is_ignored_and_a_mistake', () => {
      const t = nextStatus(ACK, ACK | STATUS_DEVICE_NEEDS_RESET, 'modern', accept);
      expect(t).to.deep.include({ status: ACK });
      if (t.kind === 'update') expect(t.mistakes.map((m) => m.code)).to.deep.equal(['status.device-bit-set']);
    });

    it('features_ok_through_legacy_is_dropped', () => {
      const t = nextStatus(ACK | DRV, ACK | DRV | FOK, 'legacy', accept);
      expect(t).to.deep.include({ status: ACK | DRV, newlySet: 0 });
      if (t.kind === 'update') expect(t.mistakes.map((m) => m.code)).to.deep.equal(['status.features-ok-on-legacy']);
    });

    it('driver_ok_through_legacy_needs_no_features_ok', () => {
      const t = nextStatus(ACK | DRV, ACK | DRV | DOK, 'legacy', accept);
      expect(t).to.deep.include({ status: ACK | DRV | DOK, newlySet: DOK, mistakes: [] });
    });

    it('feature_check_runs_only_when_features_ok_is_newly_set', () => {
      let calls = 0;
      const check = (): null => {
        calls++;
        return null;
      };
      nextStatus(ACK | DRV, ACK | DRV | FOK, 'modern', check);
      nextStatus(ACK | DRV | FOK, ACK | DRV | FOK | DOK, 'modern', check);
      expect(calls).to.equal(1);
    });
  });

  describe('through the device', () => {
    it('driver_before_acknowledge_is_accepted_and_recorded', () => {
      const rig = mmioRig();
      writeStatus(rig.transport, DRV);
      expect(readStatus(rig.transport)).to.equal(DRV);
      expect(lastCode(rig)).to.deep.include({ code: 'status.driver-before-acknowledge', section: '3.1.1' });
    });

    it('features_ok_before_driver_is_accepted_and_recorded', () => {
      const rig = mmioRig();
      rig.transport.write(0x24, 4, 1);
      rig.transport.write(0x20, 4, 1); // VERSION_1
      writeStatus(rig.transport, ACK | FOK);
      expect(readStatus(rig.transport)).to.equal(ACK | FOK);
      expect(rig.device.diagnosticCount('status.features-ok-before-driver')).to.equal(1);
    });

    it('features_ok_with_an_unoffered_bit_does_not_stick', () => {
      const rig = mmioRig();
      toDriver(rig, V1 | featureBit(20));
      addStatus(rig.transport, FOK);
      expect(readStatus(rig.transport) & FOK).to.equal(0);
      const d = lastCode(rig);
      expect(d).to.deep.include({ code: 'features.not-offered', section: '2.2.1' });
      expect(rig.device.diagnostics().at(-1)!.value).to.equal(featureBit(20));
    });

    it('features_ok_without_version_1_on_the_modern_interface_does_not_stick', () => {
      const rig = mmioRig();
      toDriver(rig, featureBit(ECHO_F_UPPER));
      addStatus(rig.transport, FOK);
      expect(readStatus(rig.transport) & FOK).to.equal(0);
      expect(lastCode(rig)).to.deep.include({ code: 'features.version-1-missing', section: '6.1' });
    });

    it('features_ok_refused_by_the_device_dependency_check_does_not_stick', () => {
      const rig = mmioRig();
      toDriver(rig, V1 | featureBit(1)); // ECHO_F_EXTRA without ECHO_F_UPPER
      addStatus(rig.transport, FOK);
      expect(readStatus(rig.transport) & FOK).to.equal(0);
      const d = rig.device.diagnostics().at(-1)!;
      expect(d).to.deep.include({ code: 'features.rejected-by-device', section: '2.2.2' });
      expect(d.message).to.contain('ECHO_F_EXTRA');
    });

    it('refused_features_ok_can_be_retried_with_a_valid_set', () => {
      const rig = mmioRig();
      toDriver(rig, V1 | featureBit(20));
      addStatus(rig.transport, FOK);
      rig.transport.write(0x24, 4, 0);
      rig.transport.write(0x20, 4, 0);
      addStatus(rig.transport, FOK);
      expect(readStatus(rig.transport) & FOK).to.equal(FOK);
      expect(rig.device.negotiatedFeatures).to.equal(V1);
    });

    it('driver_ok_before_features_ok_does_not_stick_and_starts_no_queue', () => {
      const rig = mmioRig();
      toDriver(rig);
      const r = ring(rig.memory);
      rig.transport.write(0x30, 4, 0);
      rig.transport.write(0x38, 4, r.size);
      rig.transport.write(0x80, 4, r.descTable);
      rig.transport.write(0x90, 4, r.availRing);
      rig.transport.write(0xa0, 4, r.usedRing);
      rig.transport.write(0x44, 4, 1);
      addStatus(rig.transport, DOK);
      expect(readStatus(rig.transport)).to.equal(ACK | DRV);
      expect(rig.device.running).to.equal(false);
      expect(rig.device.queues[0]).to.equal(null);
      expect(lastCode(rig)).to.deep.include({ code: 'status.driver-ok-before-features-ok', section: '3.1.1' });
    });

    it('new_bits_after_failed_are_refused_until_reset', () => {
      const rig = mmioRig();
      addStatus(rig.transport, ACK);
      addStatus(rig.transport, STATUS_FAILED);
      addStatus(rig.transport, DRV);
      expect(readStatus(rig.transport)).to.equal(ACK | STATUS_FAILED);
      expect(lastCode(rig)).to.deep.include({ code: 'status.after-failed', section: '2.1.1' });
      writeStatus(rig.transport, 0);
      addStatus(rig.transport, ACK);
      expect(readStatus(rig.transport)).to.equal(ACK);
    });

    it('clearing_driver_ok_keeps_the_device_running', () => {
      const rig = mmioRig();
      const r = ring(rig.memory);
      expect(initDevice(rig.transport, { features: V1, queues: [r] }).ok).to.equal(true);
      writeStatus(rig.transport, ACK | DRV | FOK);
      expect(readStatus(rig.transport)).to.equal(ACK | DRV | FOK | DOK);
      expect(rig.device.running).to.equal(true);
      expect(lastCode(rig)).to.deep.include({ code: 'status.bit-cleared', section: '2.1.1' });
    });

    it('features_are_frozen_at_features_ok', () => {
      const rig = mmioRig();
      toDriver(rig, V1 | featureBit(ECHO_F_UPPER));
      addStatus(rig.transport, FOK);
      rig.transport.write(0x24, 4, 0);
      rig.transport.write(0x20, 4, 0);
      expect(rig.device.negotiatedFeatures).to.equal(V1 | featureBit(ECHO_F_UPPER));
      expect(lastCode(rig)).to.deep.include({ code: 'features.write-after-features-ok', section: '3.1.1' });
    });

    it('status_events_report_every_change', () => {
      const rig = mmioRig();
      const seen: number[] = [];
      rig.device.on('status', (s: number) => seen.push(s));
      initDevice(rig.transport, { features: V1 });
      expect(seen).to.deep.equal([ACK, ACK | DRV, ACK | DRV | FOK, ACK | DRV | FOK | DOK]);
    });

    it('pci_common_cfg_status_follows_the_same_machine', () => {
      const rig = pciRig();
      const res = initDevice(rig.transport, { features: V1 | featureBit(ECHO_F_UPPER) });
      expect(res).to.deep.include({ ok: true, status: ACK | DRV | FOK | DOK, negotiated: V1 | featureBit(ECHO_F_UPPER) });
      const bad = pciRig();
      const r2 = initDevice(bad.transport, { features: featureBit(ECHO_F_UPPER), ackExactly: true });
      expect(r2.ok).to.equal(false);
      expect(r2.status).to.equal(ACK | DRV | STATUS_FAILED);
      expect(bad.device.diagnosticCount('features.version-1-missing')).to.equal(1);
    });
  });
});
