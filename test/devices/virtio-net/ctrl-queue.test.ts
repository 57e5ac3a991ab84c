import { expect } from 'chai';
import { CtrlClass, CtrlMac, CtrlRx, CtrlVlan } from '../../../devices/virtio-net/constants.js';
import { featureBit, VIRTIO_F_EVENT_IDX } from '../../../devices/virtio/features.js';
import { ALL_FEATURES, NetRig } from '../../support/net-rig.js';
import { le16, le32, mac } from './ctrl-fixtures.js';

// The control queue reads a command in place when its header and its payload each lie in one
// descriptor and one memory region (ctrl-queue.ts), and gathers it otherwise: both ways must answer
// every command alike — same ack, same diagnostics, same filter.

/** One command's readable bytes (header first). */
function command(ctrlClass: number, cmd: number, ...payload: (readonly number[] | Uint8Array)[]): number[] {
  return [ctrlClass, cmd, ...payload.flatMap((p) => [...p])];
}

const table = (uni: string[], multi: string[]): number[] => [...le32(uni.length), ...uni.flatMap((m) => [...mac(m)]), ...le32(multi.length), ...multi.flatMap((m) => [...mac(m)])];

const COMMANDS: number[][] = [
  command(CtrlClass.RX, CtrlRx.PROMISC, [1]),
  command(CtrlClass.RX, CtrlRx.ALLMULTI, [2]), // not 0/1: tolerated (QEMU), reported
  command(CtrlClass.RX, CtrlRx.PROMISC, [0, 7]), // a trailing byte: tolerated, reported
  command(CtrlClass.RX, CtrlRx.PROMISC), // short: ERR
  command(CtrlClass.RX, 9, [1]), // unknown command: ERR
  command(CtrlClass.VLAN, CtrlVlan.ADD, le16(100)),
  command(CtrlClass.VLAN, CtrlVlan.ADD, le16(5000)), // out of range: ERR
  command(CtrlClass.MAC, CtrlMac.TABLE_SET, table(['02:00:00:00:00:01'], ['01:00:5e:00:00:01', '33:33:00:00:00:01'])),
  command(CtrlClass.MAC, CtrlMac.TABLE_SET, table(['03:00:00:00:00:01'], [])), // group address as unicast: tolerated
  command(CtrlClass.MAC, CtrlMac.TABLE_SET, [...table([], ['01:00:5e:00:00:02']), 0]), // malformed: ERR
  command(CtrlClass.MAC, CtrlMac.TABLE_SET, table(Array.from({ length: 16 }, (_, i) => `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`), Array.from({ length: 48 }, (_, i) => `01:00:5e:00:01:${i.toString(16).padStart(2, '0')}`))),
  command(CtrlClass.MAC, CtrlMac.ADDR_SET, mac('02:00:00:00:00:42')),
  command(CtrlClass.MAC, CtrlMac.ADDR_SET, [1, 2, 3]), // not 6 bytes: ERR
  command(CtrlClass.ANNOUNCE, 0), // nothing pending: ERR
  command(99, 0, [1]), // unknown class: ERR
];

/** The ways the readable bytes are laid over descriptors: Linux's (header, payload), one descriptor, and splits. */
const LAYOUTS: { name: string; split(bytes: number[]): number[][] }[] = [
  { name: 'header, payload', split: (b) => (b.length > 2 ? [b.slice(0, 2), b.slice(2)] : [b]) },
  { name: 'one descriptor', split: (b) => [b] },
  { name: 'header split', split: (b) => [b.slice(0, 1), b.slice(1)] },
  { name: 'payload split', split: (b) => (b.length > 3 ? [b.slice(0, 2), b.slice(2, 3), b.slice(3)] : [b]) },
];

interface Answer {
  acks: number[];
  mistakes: string[];
  filter: unknown;
}

function play(layout: (typeof LAYOUTS)[number]): Answer {
  const rig = new NetRig({ transport: 'mmio', mac: '52:54:00:12:34:56' });
  const acks = COMMANDS.map((c) => rig.ctrlCommand(layout.split(c)).ack);
  const mistakes = rig.device.diagnostics().map((d) => `${d.code}: ${d.message}`);
  return { acks, mistakes, filter: rig.device.queryRxFilter() };
}

describe('devices/virtio-net/ctrl-queue', () => {
  it('answers_every_command_alike_whether_it_is_read_in_place_or_gathered', () => {
    const expected = play(LAYOUTS[0]!);
    // The list exercises both answers and several diagnostics (so agreeing is not trivially empty).
    expect(expected.acks).to.include(0).and.to.include(1);
    const codes = expected.mistakes.map((m) => m.slice(0, m.indexOf(':')));
    expect(codes).to.include('ctrl.rx-value-not-boolean').and.to.include('ctrl.mac-table-wrong-kind').and.to.include('ctrl.trailing-bytes');
    for (const layout of LAYOUTS.slice(1)) expect(play(layout), layout.name).to.deep.equal(expected);
  });

  for (const eventIdx of [true, false]) {
    it(`answers_commands_offered_under_one_kick_in_order_as_one_by_one${eventIdx ? '_event_idx' : ''}`, () => {
      // One pass takes every chain the kick announced (ctrl-queue.ts): the batch is answered whole,
      // in order, as the same commands sent one at a time, and the device asks for the next kick.
      const expected = play(LAYOUTS[1]!);
      const rig = new NetRig({ transport: 'mmio', mac: '52:54:00:12:34:56', init: false });
      expect(rig.start(eventIdx ? ALL_FEATURES : ALL_FEATURES & ~featureBit(VIRTIO_F_EVENT_IDX)).ok).to.equal(true);
      const ctrl = rig.ctrl;
      let heads: number[] = [];
      rig.kick(rig.ctrlIndex, () => {
        heads = COMMANDS.map((c) => ctrl.addChain([{ len: c.length, data: c }, { len: 1, write: true, data: [0xff] }]));
      }, true);
      expect(ctrl.takeUsed()).to.deep.equal(heads.map((id) => ({ id, len: 1 })));
      const acks = heads.map((h) => ctrl.bufferBytes(h, 1)[0]);
      const mistakes = rig.device.diagnostics().map((d) => `${d.code}: ${d.message}`);
      expect({ acks, mistakes, filter: rig.device.queryRxFilter() }).to.deep.equal(expected);
      if (eventIdx) expect(ctrl.readAvailEvent()).to.equal(COMMANDS.length);
      else expect(ctrl.usedFlags()).to.equal(0);
      // The next command alone is still noticed (the device asked to be notified).
      expect(rig.cmd(CtrlClass.RX, CtrlRx.PROMISC, [0])).to.equal(0);
      expect(rig.suppressedKicks).to.equal(0);
    });
  }
});
