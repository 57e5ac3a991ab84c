// Proves test/support/qemu-oracle.ts is a reliable oracle: it drives QEMU 7.2's virtio-net-pci
// control queue (VIRTIO 1.2 §5.1.6.5) through qtest and reads the results back over QMP. The
// cases also pin the QEMU behaviours ("quirks") a differential test against the model relies on.
// One QEMU process per describe block, reset to device defaults before each case.

import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { QemuOracle, type CtrlResult } from '../support/qemu-oracle.js';
import { QEMU_BINARY } from '../support/qemu-process.js';
import { requireProgram } from '../support/skip.js';
import { QtestChannel, QtestError } from '../support/qemu-qtest.js';


// Control classes and commands (VIRTIO 1.2 §5.1.6.5), spelled out once for these cases.
const CLASS_RX = 0, RX_PROMISC = 0, RX_ALLMULTI = 1, RX_NOBCAST = 5;
const CLASS_MAC = 1, MAC_TABLE_SET = 0, MAC_ADDR_SET = 1;
const CLASS_VLAN = 2, VLAN_ADD = 0;
const OK = 0, ERR = 1;
const RX_FILTER_CHANGED = 'NIC_RX_FILTER_CHANGED';

const header = (cls: number, cmd: number): Uint8Array => Uint8Array.of(cls, cmd);
const le16 = (n: number): Uint8Array => Uint8Array.of(n & 0xff, n >> 8);
const le32 = (n: number): Uint8Array => Uint8Array.of(n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24);
const mac = (text: string): Uint8Array => Uint8Array.from(text.split(':').map((h) => Number.parseInt(h, 16)));
/** `count` distinct addresses whose first byte is `first` (0x02 unicast, 0x01 multicast). */
const macList = (count: number, first: number): Uint8Array => {
  const out = new Uint8Array(count * 6);
  for (let i = 0; i < count; i++) out.set([first, 0, 0, 0, i >> 8, i & 0xff], i * 6);
  return out;
};

/** Skips the block (with a printed reason; under CI=true as root, fails) when QEMU is missing. */
function requireQemu(ctx: Mocha.Context): void {
  requireProgram(ctx, QEMU_BINARY);
}

function expectCompleted(r: CtrlResult, ack: number): void {
  expect(r.outcome).to.equal('completed');
  expect(r.ack).to.deep.equal([ack]);
  expect(r.usedLen).to.equal(1);
  expect(r.needsReset).to.equal(false);
}

describe('oracle/qemu-oracle (QEMU virtio-net-pci, modern interface)', function () {
  let oracle: QemuOracle | undefined;
  const q = (): QemuOracle => {
    if (oracle === undefined) throw new Error('QEMU did not start');
    return oracle;
  };

  before(async function () {
    requireQemu(this);
    oracle = await QemuOracle.start({ mac: '52:54:00:12:34:56' });
    console.log(`      QEMU started to DRIVER_OK in ${oracle.startupMs} ms (modern)`);
  });
  after(async () => {
    await oracle?.stop();
  });
  beforeEach(async () => {
    await q().reset();
    await q().queryRxFilter(); // re-arms NIC_RX_FILTER_CHANGED
  });

  it('negotiates_version_1_and_the_control_features', () => {
    for (const bit of [32, 17, 18, 19, 20, 21, 23, 5, 16]) {
      expect(Number((q().negotiatedFeatures >> BigInt(bit)) & 1n), `bit ${bit}`).to.equal(1);
    }
  });

  it('promisc_0_acks_ok_and_query_shows_promiscuous_false', async () => {
    expect((await q().queryRxFilter()).promiscuous).to.equal(true); // QEMU's reset default
    const r = await q().ctrl([header(CLASS_RX, RX_PROMISC), Uint8Array.of(0)]);
    expectCompleted(r, OK);
    expect(r.usedId).to.equal(0);
    expect((await q().queryRxFilter()).promiscuous).to.equal(false);
  });

  it('table_set_one_unicast_one_multicast_reads_back', async () => {
    const r = await q().ctrl([
      header(CLASS_MAC, MAC_TABLE_SET),
      le32(1), mac('02:00:00:00:00:07'),
      le32(1), mac('01:00:5e:00:00:01'),
    ]);
    expectCompleted(r, OK);
    const f = await q().queryRxFilter();
    expect(f['unicast-table']).to.deep.equal(['02:00:00:00:00:07']);
    expect(f['multicast-table']).to.deep.equal(['01:00:5e:00:00:01']);
    expect(f['unicast-overflow']).to.equal(false);
    expect(f['multicast-overflow']).to.equal(false);
  });

  it('vlan_add_5_shows_in_vlan_table', async () => {
    expect((await q().queryRxFilter())['vlan-table']).to.deep.equal([]);
    expectCompleted(await q().ctrl([header(CLASS_VLAN, VLAN_ADD), le16(5)]), OK);
    const f = await q().queryRxFilter();
    expect(f['vlan-table']).to.deep.equal([5]);
    expect(f.vlan).to.equal('normal');
  });

  it('unknown_class_acks_err_without_event', async () => {
    const r = await q().ctrl([header(0xc8, 0), Uint8Array.of(1)]);
    expectCompleted(r, ERR);
    expect(r.rxFilterEvents).to.equal(0);
  });

  it('rx_filter_changed_fires_once_until_a_query', async () => {
    const before = q().countEvents(RX_FILTER_CHANGED);
    const first = await q().ctrl([header(CLASS_RX, RX_PROMISC), Uint8Array.of(0)]);
    const second = await q().ctrl([header(CLASS_RX, RX_ALLMULTI), Uint8Array.of(1)]);
    expect([first.rxFilterEvents, second.rxFilterEvents]).to.deep.equal([1, 0]);
    expect(q().countEvents(RX_FILTER_CHANGED)).to.equal(before + 1);
    const last = q().events().at(-1);
    expect(last?.event).to.equal(RX_FILTER_CHANGED);
    expect(last?.data.name).to.equal('nic0');
    expect(String(last?.data.path)).to.match(/nic0/);
    await q().queryRxFilter();
    expect((await q().ctrl([header(CLASS_RX, RX_PROMISC), Uint8Array.of(1)])).rxFilterEvents).to.equal(1);
  });

  it('mac_addr_set_changes_config_mac_and_main_mac', async () => {
    expect(await q().readConfigMac()).to.equal('52:54:00:12:34:56');
    // Split across two descriptors, as nothing in the spec forbids.
    const r = await q().ctrl([header(CLASS_MAC, MAC_ADDR_SET), mac('02:11:22:33:44:55').subarray(0, 2), mac('02:11:22:33:44:55').subarray(2)]);
    expectCompleted(r, OK);
    expect(await q().readConfigMac()).to.equal('02:11:22:33:44:55');
    expect((await q().queryRxFilter())['main-mac']).to.equal('02:11:22:33:44:55');
  });

  // --- quirks the differential test must know about -------------------------------------------

  it('quirk_vlan_table_is_descending_not_insertion_order', async () => {
    for (const vid of [5, 100, 3]) expectCompleted(await q().ctrl([header(CLASS_VLAN, VLAN_ADD), le16(vid)]), OK);
    expect((await q().queryRxFilter())['vlan-table']).to.deep.equal([100, 5, 3]);
  });

  it('quirk_mac_tables_come_back_in_reverse_order', async () => {
    const r = await q().ctrl([header(CLASS_MAC, MAC_TABLE_SET), le32(2), macList(2, 0x02), le32(2), macList(2, 0x01)]);
    expectCompleted(r, OK);
    const f = await q().queryRxFilter();
    expect(f['unicast-table']).to.deep.equal(['02:00:00:00:00:01', '02:00:00:00:00:00']);
    expect(f['multicast-table']).to.deep.equal(['01:00:00:00:00:01', '01:00:00:00:00:00']);
  });

  it('quirk_broadcast_allowed_carries_nobcast', async () => {
    expect((await q().queryRxFilter())['broadcast-allowed']).to.equal(false); // broadcasts ARE received
    expectCompleted(await q().ctrl([header(CLASS_RX, RX_NOBCAST), Uint8Array.of(1)]), OK);
    expect((await q().queryRxFilter())['broadcast-allowed']).to.equal(true); // now they are not
  });

  it('quirk_table_set_overflow_sets_flag_and_keeps_no_entries_of_that_kind', async () => {
    const r = await q().ctrl([header(CLASS_MAC, MAC_TABLE_SET), le32(65), macList(65, 0x02), le32(1), macList(1, 0x01)]);
    expectCompleted(r, OK);
    const f = await q().queryRxFilter();
    expect(f['unicast-overflow']).to.equal(true);
    expect(f['unicast-table']).to.deep.equal([]);
    expect(f.unicast).to.equal('normal'); // overflow is not reported as 'all'
    expect(f['multicast-table']).to.deep.equal(['01:00:00:00:00:00']);
  });

  it('quirk_table_set_trailing_byte_acks_err_and_changes_nothing', async () => {
    const r = await q().ctrl([header(CLASS_MAC, MAC_TABLE_SET), le32(0), le32(1), macList(1, 0x01), Uint8Array.of(7)]);
    expectCompleted(r, ERR);
    expect(r.rxFilterEvents).to.equal(0);
    expect((await q().queryRxFilter())['multicast-table']).to.deep.equal([]);
  });

  it('quirk_ack_longer_than_one_byte_gets_one_byte_and_used_len_1', async () => {
    const r = await q().ctrl([header(CLASS_RX, RX_PROMISC), Uint8Array.of(0)], 4);
    expect(r.outcome).to.equal('completed');
    expect(r.ack).to.deep.equal([OK, 0xff, 0xff, 0xff]);
    expect(r.usedLen).to.equal(1);
  });

  it('chain_without_writable_descriptor_breaks_the_device_and_reset_recovers', async () => {
    const r = await q().ctrl([header(CLASS_RX, RX_PROMISC), Uint8Array.of(0)], 0);
    expect(r.outcome).to.equal('device-error');
    expect(r.ack).to.equal(null);
    expect(r.usedLen).to.equal(0);
    expect(r.needsReset).to.equal(true);
    expect(r.deviceError).to.match(/virtio-net ctrl missing headers/);
    expect(q().isBroken).to.equal(true);
    expect((await q().queryRxFilter()).promiscuous).to.equal(true); // nothing applied
    await q().reset();
    expect(q().isBroken).to.equal(false);
    expectCompleted(await q().ctrl([header(CLASS_RX, RX_PROMISC), Uint8Array.of(0)]), OK);
  });

  it('zero_length_readable_descriptor_breaks_the_device', async () => {
    const r = await q().ctrl([header(CLASS_RX, RX_PROMISC), new Uint8Array(0)]);
    expect(r.outcome).to.equal('device-error');
    expect(r.needsReset).to.equal(true);
    expect(r.deviceError).to.match(/zero sized buffers/);
  });

  it('readable_after_writable_raw_chain_breaks_the_device', async () => {
    const d = q().dataArea.address;
    const r = await q().ctrlRaw({
      memory: [{ address: d, bytes: Uint8Array.of(CLASS_RX, RX_PROMISC, 0) }, { address: d + 64, bytes: Uint8Array.of(0xff) }],
      descriptors: [
        { addr: d, len: 2, flags: 1, next: 1 },
        { addr: d + 64, len: 1, flags: 1 | 2, next: 2 },
        { addr: d + 2, len: 1, flags: 0, next: 0 },
      ],
      ack: { address: d + 64, length: 1 },
    });
    expect(r.outcome).to.equal('device-error');
    expect(r.deviceError).to.match(/Incorrect order for descriptors/);
  });

  it('a_broken_device_refuses_further_chains_until_reset', async () => {
    await q().ctrl([Uint8Array.of(CLASS_RX)]); // header of one byte: "missing headers"
    let thrown: unknown;
    try {
      await q().ctrl([header(CLASS_RX, RX_PROMISC), Uint8Array.of(0)]);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.be.instanceOf(Error);
    expect((thrown as Error).message).to.match(/reset\(\)/);
  });
});

describe('oracle/qemu-oracle (QEMU virtio-net-pci, legacy interface)', function () {
  let oracle: QemuOracle | undefined;
  const q = (): QemuOracle => {
    if (oracle === undefined) throw new Error('QEMU did not start');
    return oracle;
  };

  before(async function () {
    requireQemu(this);
    oracle = await QemuOracle.start({ legacy: true, mac: '52:54:00:ab:cd:ef' });
    console.log(`      QEMU started to DRIVER_OK in ${oracle.startupMs} ms (legacy)`);
  });
  after(async () => {
    await oracle?.stop();
  });
  beforeEach(async () => {
    await q().reset();
    await q().queryRxFilter();
  });

  it('legacy_negotiates_control_features_without_version_1', async () => {
    expect(Number((q().negotiatedFeatures >> 32n) & 1n)).to.equal(0);
    expect(Number((q().negotiatedFeatures >> 17n) & 1n)).to.equal(1);
    expect(await q().readConfigMac()).to.equal('52:54:00:ab:cd:ef');
  });

  it('legacy_promisc_0_acks_ok', async () => {
    const r = await q().ctrl([header(CLASS_RX, RX_PROMISC), Uint8Array.of(0)]);
    expectCompleted(r, OK);
    expect(r.rxFilterEvents).to.equal(1);
    expect((await q().queryRxFilter()).promiscuous).to.equal(false);
  });

  it('legacy_missing_ack_is_detected_from_qemu_error_report_without_needs_reset', async () => {
    const r = await q().ctrl([header(CLASS_RX, RX_PROMISC), Uint8Array.of(0)], 0);
    expect(r.outcome).to.equal('device-error');
    expect(r.needsReset).to.equal(false); // legacy devices cannot show DEVICE_NEEDS_RESET
    expect(r.deviceError).to.match(/virtio-net ctrl missing headers/);
    await q().reset();
    expectCompleted(await q().ctrl([header(CLASS_RX, RX_PROMISC), Uint8Array.of(0)]), OK);
  });
});

describe('oracle/qemu-oracle (lifecycle and options)', function () {
  before(function () {
    requireQemu(this);
  });

  it('stop_kills_qemu_and_removes_the_socket_directory', async () => {
    const oracle = await QemuOracle.start({ guestFeatures: ['CTRL_VQ', 'CTRL_RX'] });
    const dir = path.dirname(oracle.qmpSocketPath);
    const pid = oracle.pid;
    expect(pid).to.be.a('number');
    expect(fs.existsSync(oracle.qmpSocketPath)).to.equal(true);
    await oracle.stop();
    expect(fs.existsSync(dir)).to.equal(false);
    expect(() => process.kill(pid!, 0)).to.throw(); // no such process
    await oracle.stop(); // idempotent
  });

  it('unknown_device_property_rejects_with_qemu_stderr', async () => {
    let thrown: unknown;
    try {
      await QemuOracle.start({ features: { no_such_property: true } });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.be.instanceOf(Error);
    expect((thrown as Error).message).to.match(/no_such_property/);
  });

  it('bad_options_throw_naming_the_option', async () => {
    const cases: [Parameters<typeof QemuOracle.start>[0], RegExp][] = [
      [{ mac: 'nope' }, /options\.mac/],
      [{ guestFeatures: ['NOT_A_FEATURE' as 'MAC'] }, /options\.guestFeatures.*allowed/],
      [{ legacy: true, guestFeatures: ['VERSION_1'] }, /options\.guestFeatures VERSION_1/],
      [{ features: { ctrl_vlan: 'yes' as unknown as boolean } }, /options\.features/],
    ];
    for (const [opts, re] of cases) {
      let thrown: unknown;
      try {
        await QemuOracle.start(opts);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, String(re)).to.be.instanceOf(TypeError);
      expect((thrown as Error).message).to.match(re);
    }
  });
});

describe('oracle/qemu-qtest (protocol client)', () => {
  const channel = (timeoutMs = 1000) => {
    const toQemu = new PassThrough();
    const fromQemu = new PassThrough();
    const sent: string[] = [];
    toQemu.setEncoding('latin1');
    toQemu.on('data', (s: string) => sent.push(...s.split('\n').filter((l) => l !== '')));
    return { qt: new QtestChannel(toQemu, fromQemu, { timeoutMs, context: () => 'ctx' }), fromQemu, sent };
  };

  it('skips_irq_lines_and_matches_replies_in_order', async () => {
    const { qt, fromQemu, sent } = channel();
    const a = qt.inb(0x10);
    const b = qt.memRead(0x1000, 2);
    fromQemu.write('IRQ raise 11\nOK 0x2a\nIRQ lower 11\nOK 0xbeef\n');
    expect(await a).to.equal(0x2a);
    expect([...(await b)]).to.deep.equal([0xbe, 0xef]);
    expect(sent).to.deep.equal(['inb 0x10', 'read 0x1000 2']);
  });

  it('fail_reply_rejects_naming_the_request', async () => {
    const { qt, fromQemu } = channel();
    const p = qt.outl(0xcf8, 1);
    fromQemu.write("FAIL Unknown command 'x'\n");
    let thrown: unknown;
    try {
      await p;
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.be.instanceOf(QtestError);
    expect((thrown as QtestError).code).to.equal('qtest.fail');
    expect((thrown as QtestError).request).to.equal('outl 0xcf8 0x1');
  });

  it('missing_reply_times_out_naming_the_request_and_closes_the_channel', async () => {
    const { qt } = channel(50);
    let thrown: unknown;
    try {
      await qt.inl(0xcfc);
    } catch (err) {
      thrown = err;
    }
    expect((thrown as QtestError).code).to.equal('qtest.timeout');
    expect((thrown as QtestError).message).to.match(/inl 0xcfc[\s\S]*ctx/);
    expect(qt.closed).to.equal(true);
    let again: unknown;
    try {
      await qt.inb(0);
    } catch (err) {
      again = err;
    }
    expect((again as QtestError).code).to.equal('qtest.closed');
  });
});
