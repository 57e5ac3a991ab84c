// The browser entry (browser.ts, `virtio-net-model/browser`, API.md "v86's network bus and the
// browser"): esbuild bundles it for the browser and nothing Node-only gets in — no `node:` module,
// no Node builtin, no koffi, nothing left external — and the bundle runs in a realm that has none of
// Node's globals (no Buffer, process, setImmediate, require). The package root still exports
// everything it did, and the same objects as the browser entry.

import { expect } from 'chai';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import vm from 'node:vm';
import * as esbuild from 'esbuild';

const ROOT = join(import.meta.dirname, '..');
const ENTRY = join(ROOT, 'browser.ts');

/** What the root exported (at run time) when the browser entry was added; the root may add, never drop. */
const ROOT_EXPORTS_BEFORE = [
  'AVAIL_ELEM_SIZE', 'AVAIL_FLAGS', 'AVAIL_IDX', 'AVAIL_RING', 'AVAIL_RING_ALIGN', 'CONSUME', 'ChainReader', 'ChainWriter',
  'ChardevSocket', 'ColoCompare', 'ConfigSpace', 'CtrlAck', 'CtrlClass', 'DEFAULT_COMPARE_TIMEOUT_MS',
  'DEFAULT_EXPIRED_SCAN_CYCLE_MS', 'DEFAULT_MAX_QUEUE_SIZE', 'DESC_ADDR', 'DESC_FLAGS', 'DESC_LEN', 'DESC_NEXT', 'DESC_SIZE',
  'DESC_TABLE_ALIGN', 'DIAGNOSTIC_CAPACITY', 'DIAGNOSTIC_SECTIONS', 'DescriptorChain', 'DeviceStateError', 'DumpFilter',
  'FEATURE_BITS', 'FILTER_QUEUES', 'FilterChain', 'FrameReader', 'GuestMemory', 'GuestMemoryError', 'HostError', 'ISR_CONFIG',
  'ISR_QUEUE', 'MAX_FRAMED_LENGTH', 'MAX_PASSTHROUGH_ENTRIES', 'MAX_QUEUE_SIZE', 'MMIO_CONFIG', 'MMIO_MAGIC',
  'MMIO_VENDOR_QEMU', 'MacvtapNetdev', 'MemoryNetdev', 'MirrorFilter', 'NET_DIAGNOSTIC_SECTIONS', 'NetFeature', 'NetStatus',
  'PASS', 'PassthroughError', 'PassthroughList', 'QMP_SCHEMA', 'QUEUE_EMPTY', 'QUEUE_ERROR_SECTIONS', 'QmpError', 'QmpServer',
  'REWRITER_TRANSITIONS', 'RedirectorFilter', 'RewriterFilter', 'STATUS_ACKNOWLEDGE', 'STATUS_DEVICE_NEEDS_RESET',
  'STATUS_DRIVER', 'STATUS_DRIVER_OK', 'STATUS_FAILED', 'STATUS_FEATURES_OK', 'SimPeer', 'SplitQueue', 'TapNetdev',
  'USED_ELEM_SIZE', 'USED_FLAGS', 'USED_IDX', 'USED_RING', 'USED_RING_ALIGN', 'V86BusNetdev', 'V86GuestMemory',
  'VIRTIO_F_ACCESS_PLATFORM', 'VIRTIO_F_ANY_LAYOUT', 'VIRTIO_F_EVENT_IDX', 'VIRTIO_F_INDIRECT_DESC', 'VIRTIO_F_IN_ORDER',
  'VIRTIO_F_NOTIFICATION_DATA', 'VIRTIO_F_NOTIFY_ON_EMPTY', 'VIRTIO_F_NOTIF_CONFIG_DATA', 'VIRTIO_F_ORDER_PLATFORM',
  'VIRTIO_F_RING_PACKED', 'VIRTIO_F_RING_RESET', 'VIRTIO_F_SR_IOV', 'VIRTIO_F_VERSION_1', 'VIRTQ_AVAIL_F_NO_INTERRUPT',
  'VIRTQ_DESC_F_INDIRECT', 'VIRTQ_DESC_F_NEXT', 'VIRTQ_DESC_F_WRITE', 'VIRTQ_USED_F_NO_NOTIFY', 'VNET_HEADER_LENGTHS',
  'VirtioCore', 'VirtioDevice', 'VirtioFeature', 'VirtioMmioTransport', 'VirtioNetDevice', 'VirtioPciTransport', 'add16',
  'attachToV86', 'availEventOffset', 'availRingBytes', 'checkFilterOptions', 'descTableBytes', 'describeBits',
  'describeQueueError', 'deviceErrorSection', 'encodeFrame', 'featureBit', 'hasLinkState', 'hasOffloads', 'hasVnetHeader',
  'isValidQueueSize', 'needEvent', 'newQueueConfig', 'nextStatus', 'portByName', 'protocolByName', 'protocolName',
  'queueErrorSection', 'queueSees', 'statusBitNames', 'sub16', 'syncsRxFilter', 'usedEventOffset', 'usedRingBytes',
  'v86GuestMemory', 'wrap16',
];

/** What API.md puts behind `virtio-net-model/browser` (plus the helpers beside them). */
const BROWSER_MUST_EXPORT = [
  'GuestMemory', 'SplitQueue', 'VirtioMmioTransport', 'VirtioPciTransport', 'VirtioNetDevice', 'DeviceStateError',
  'MemoryNetdev', 'V86BusNetdev', 'WebSocketNetdev', 'SimPeer', 'attachToV86', 'v86GuestMemory', 'V86GuestMemory',
  'hasVnetHeader', 'hasOffloads', 'hasLinkState', 'syncsRxFilter', 'NetFeature', 'FEATURE_BITS', 'CtrlClass', 'NetStatus',
];

/** A module esbuild saw that a browser cannot have: a Node builtin (with or without `node:`) or the FFI. */
function nodeOnly(path: string): boolean {
  const bare = path.startsWith('node:') ? path.slice(5) : path;
  return path.startsWith('node:') || builtinModules.includes(bare) || builtinModules.includes(bare.split('/')[0]!) || /(^|\/)koffi(\/|$)/.test(path);
}

/** Bundles the browser entry as the test needs it; a failed build fails with esbuild's messages. */
async function bundle(options: esbuild.BuildOptions = {}): Promise<esbuild.BuildResult & { metafile: esbuild.Metafile; outputFiles: esbuild.OutputFile[] }> {
  try {
    return (await esbuild.build({
      entryPoints: [ENTRY],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      ...options,
    })) as esbuild.BuildResult & { metafile: esbuild.Metafile; outputFiles: esbuild.OutputFile[] };
  } catch (e) {
    const errors = (e as { errors?: esbuild.Message[] }).errors ?? [];
    const lines = errors.map((m) => `${m.location?.file ?? '?'}:${m.location?.line ?? '?'}: ${m.text}`);
    throw new Error(`esbuild could not bundle browser.ts for the browser:\n${lines.join('\n') || String(e)}`);
  }
}

describe('the browser entry (virtio-net-model/browser)', function () {
  this.timeout(30000);

  it('bundles_for_the_browser_with_no_node_module_no_ffi_and_nothing_external', async () => {
    const result = await bundle();
    expect(result.errors).to.deep.equal([]);
    const bad: string[] = [];
    for (const [file, input] of Object.entries(result.metafile.inputs)) {
      if (nodeOnly(file) || file.includes('node_modules/')) bad.push(`${file} is in the bundle`);
      for (const imp of input.imports) {
        if (nodeOnly(imp.path)) bad.push(`${file} imports '${imp.path}'`);
        else if (imp.external === true) bad.push(`${file} leaves '${imp.path}' external`);
      }
    }
    expect(bad, '\n' + bad.join('\n')).to.deep.equal([]);
    // The device, its transports and the three node-free backends are in it.
    const inputs = Object.keys(result.metafile.inputs);
    for (const f of ['devices/virtio-net/virtio-net-device.ts', 'devices/virtio/pci-transport.ts', 'devices/virtio/mmio-transport.ts', 'lib/netdev/memory-netdev.ts', 'lib/netdev/v86-bus-netdev.ts', 'lib/netdev/websocket-netdev.ts', 'lib/hypervisors/v86.ts']) {
      expect(inputs).to.include(f);
    }
  });

  it('the_check_catches_a_node_import_an_ffi_import_and_an_external', async () => {
    // The same checks on an entry that imports what the browser entry must not.
    const result = await esbuild.build({
      stdin: { contents: "import 'node:events'; import 'koffi'; import 'somewhere-else';", resolveDir: ROOT, loader: 'ts' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      external: ['node:events', 'koffi', 'somewhere-else'],
    });
    const imports = Object.values(result.metafile.inputs).flatMap((i) => i.imports);
    expect(imports.filter((i) => nodeOnly(i.path)).map((i) => i.path)).to.deep.equal(['node:events', 'koffi']);
    expect(imports.filter((i) => i.external === true)).to.have.length(3);
    // And esbuild on its own refuses a Node builtin for the browser.
    let refused = '';
    await esbuild
      .build({ stdin: { contents: "import { EventEmitter } from 'node:events'; new EventEmitter();", resolveDir: ROOT }, bundle: true, platform: 'browser', write: false, logLevel: 'silent' })
      .catch((e: { errors: esbuild.Message[] }) => (refused = e.errors.map((m) => m.text).join('\n')));
    expect(refused).to.match(/node:events/);
  });

  it('runs_in_a_realm_without_node_globals_device_transport_netdevs_state_and_the_later_turn', async () => {
    const result = await bundle({ format: 'iife', globalName: 'VNM', minify: true });
    const code = result.outputFiles[0]!.text;
    // A browser-like realm: the language, plus the few web globals the entry uses. No Buffer,
    // process, setImmediate, require, global.
    const sandbox: Record<string, unknown> = { queueMicrotask, setTimeout, clearTimeout, MessageChannel, TextEncoder, TextDecoder, console };
    const context = vm.createContext(sandbox);
    for (const name of ['Buffer', 'process', 'setImmediate', 'require', 'global', 'module']) {
      expect(vm.runInContext(`typeof ${name}`, context), name).to.equal('undefined');
    }
    vm.runInContext(code, context);
    const report = (await vm.runInContext(
      `(async () => {
        const {
          GuestMemory, VirtioNetDevice, VirtioMmioTransport, VirtioPciTransport, MemoryNetdev, SimPeer, WebSocketNetdev, MMIO_MAGIC,
        } = VNM;
        const memory = new GuestMemory(1 << 20);
        const netdev = new MemoryNetdev({ id: 'net0' });
        const device = new VirtioNetDevice({ id: 'nic0', mac: '52:54:00:12:34:56', memory, netdev });
        const mmio = new VirtioMmioTransport(device, { onInterrupt: () => {} });
        const pci = new VirtioPciTransport(new VirtioNetDevice({ id: 'nic1', memory, netdev: new MemoryNetdev() }), { onInterrupt: () => {} });
        const magic = mmio.read(0, 4) === MMIO_MAGIC;
        const state = device.saveState();
        device.restoreState(state);
        // SimPeer answers an ARP request on a later turn (the MessageChannel path of defer()).
        const guestSide = new MemoryNetdev({ id: 'g' });
        const peer = new SimPeer(guestSide);
        const arp = new Uint8Array(42);
        arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        arp.set([0x52, 0x54, 0, 0x12, 0x34, 0x56, 10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2], 22);
        guestSide.send(arp);
        const heldNow = guestSide.stats().injected;
        await new Promise((resolve) => setTimeout(resolve, 20));
        // WebSocketNetdev on the realm's WebSocket (a stand-in class: no network in this realm).
        class FakeSocket {
          constructor(url) { this.url = url; this.readyState = 0; this.bufferedAmount = 0; this.binaryType = 'blob'; FakeSocket.last = this; }
          send() {}
          close() { this.readyState = 3; queueMicrotask(() => this.onclose && this.onclose({ code: 1000, reason: '' })); }
        }
        globalThis.WebSocket = FakeSocket;
        const ws = new WebSocketNetdev({ id: 'ws0', url: 'ws://relay.invalid/', reconnectMs: 0 });
        const binaryType = FakeSocket.last.binaryType;
        FakeSocket.last.readyState = 1;
        FakeSocket.last.onopen({});
        const up = ws.linkUp;
        await ws.close();
        return {
          magic, pciOk: pci.configRead(0, 2) === 0x1af4, stateBytes: state.length,
          arpReplies: peer.stats().arpReplies, heldBefore: heldNow, injectedAfter: guestSide.stats().injected,
          binaryType, up, downAfterClose: ws.linkUp,
        };
      })()`,
      context,
    )) as Record<string, unknown>;
    expect(report).to.deep.include({ magic: true, pciOk: true, arpReplies: 1, heldBefore: 0, injectedAfter: 1, binaryType: 'arraybuffer', up: true, downAfterClose: false });
    expect(report.stateBytes).to.be.greaterThan(0);
  });

  it('the_root_still_exports_everything_it_did_and_the_same_objects_as_the_browser_entry', async () => {
    const root = (await import('../index.js')) as Record<string, unknown>;
    const browser = (await import('../browser.js')) as Record<string, unknown>;
    expect(Object.keys(root)).to.include.members(ROOT_EXPORTS_BEFORE);
    expect(Object.keys(root)).to.include('WebSocketNetdev');
    expect(Object.keys(browser)).to.include.members(BROWSER_MUST_EXPORT);
    const differ = Object.keys(browser).filter((k) => root[k] !== browser[k]);
    expect(differ, 'browser exports missing from the root or different there').to.deep.equal([]);
    // And none of the Node-only parts leak into the browser entry.
    for (const k of ['TapNetdev', 'MacvtapNetdev', 'HostError', 'QmpServer', 'ChardevSocket', 'ColoCompare', 'FilterChain']) {
      expect(browser, k).to.not.have.property(k);
    }
  });

  it('the_package_exports_map_names_the_browser_entry', async () => {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types: string; import: string }> };
    expect(pkg.exports['./browser']).to.deep.equal({ types: './dist/browser.d.ts', import: './dist/browser.js' });
    expect(pkg.exports['.']).to.deep.equal({ types: './dist/index.d.ts', import: './dist/index.js' });
    const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    expect(build.include, 'npm run build emits dist/browser.js').to.include('browser.ts');
  });
});
