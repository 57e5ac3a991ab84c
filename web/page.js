// The page script of `virtio-net web` (lib/cli/web.ts bundles it with esbuild for the browser).
// Boots the project's guest image in v86 with a VirtioNetDevice from `virtio-net-model/browser` on
// v86's PCI bus; the device's netdev is a V86BusNetdev on v86's network bus, where v86's `fetch`
// adapter answers (DHCP, ARP, ping of its router, DNS, HTTP through the page's fetch()).
//
// Data flow: /config.json (is the image there?) → new V86 (no NIC of its own: net_device.type
// 'none') → 'emulator-loaded': attachToV86 → serial output → #console and the step runner → steps
// typed on ttyS0: eth0 up, udhcpc, ping the router, wget from the serving host, promisc on → every
// 250 ms: device.queryRxFilter() and device.stats() into the tables. #status reads
// `guest network: ok` once the ping went through and the device counted frames both ways.
// window.virtioNet exposes the emulator, device and netdev (and timings) to tests and the console.

import { V86 } from '/v86/libv86.mjs';
import { V86BusNetdev, VirtioNetDevice, attachToV86 } from 'virtio-net-model/browser';

const MAC = '52:54:00:12:34:56';
/** What scripts/guest/init prints when eth0 exists and the shell starts (lib/cli/guest-vm.ts). */
const READY_MARKER = 'VIRTIO-NET-GUEST-READY';
/** v86's fetch adapter: its router (lib/netdev tests use the same defaults). */
const ROUTER_IP = '192.168.86.1';
const STEP_TIMEOUT_MS = 120_000;
const BOOT_TIMEOUT_MS = 600_000;
const CONSOLE_LIMIT = 200_000;

/** A udhcpc event script: address, route and DNS from the lease (busybox calls it with `bound`). */
const DHCP_SCRIPT = [
  '#!/bin/sh',
  '[ "$1" = bound ] || exit 0',
  'ifconfig "$interface" "$ip" netmask "$subnet"',
  '[ -n "$router" ] && route add default gw "$router"',
  'echo "nameserver $dns" > /etc/resolv.conf',
];

const $ = (id) => document.getElementById(id);
const state = { emulator: null, device: null, netdev: null, okAtMs: null, atOk: null, bootedAtMs: null, steps: [], done: false };
window.virtioNet = state;

function setStatus(text, kind = '') {
  $('status').textContent = text;
  $('status').className = kind;
}

function setStep(text) {
  $('step').textContent = text;
}

// ---- serial console: display and a one-command-at-a-time runner --------------------------------

let transcript = '';
/** Characters cut from the front of `transcript` (positions stay absolute). */
let dropped = 0;
let pendingText = '';
const waiters = new Set();
const decoder = new TextDecoder();

function onSerialByte(byte) {
  if (byte === 0x0d) return;
  const ch = decoder.decode(Uint8Array.of(byte), { stream: true });
  transcript += ch;
  pendingText += ch;
  if (transcript.length > 4 * CONSOLE_LIMIT) {
    dropped += transcript.length - CONSOLE_LIMIT;
    transcript = transcript.slice(-CONSOLE_LIMIT);
  }
  if (byte === 0x0a || byte === 0x5d) for (const w of waiters) w();
}

/** A terminal escape sequence (ash asks the cursor position with ESC [6n), and one still arriving. */
const ESCAPE = /\x1b\[[0-9;?]*[A-Za-z]/g;
const PARTIAL_ESCAPE = /\x1b(\[[0-9;?]*)?$/;

function flushConsole() {
  if (pendingText === '') return;
  const pre = $('console');
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  const partial = PARTIAL_ESCAPE.exec(pendingText);
  const complete = partial === null ? pendingText : pendingText.slice(0, partial.index);
  pendingText = partial === null ? '' : partial[0];
  pre.append(complete.replace(ESCAPE, ''));
  if (pre.textContent.length > CONSOLE_LIMIT) pre.textContent = pre.textContent.slice(-CONSOLE_LIMIT / 2);
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

/** Absolute position of the end of the serial output so far. */
const position = () => dropped + transcript.length;

/** Resolves with the match once `pattern` appears in serial output after position `from`. */
function waitFor(pattern, from, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = pattern.exec(transcript.slice(Math.max(0, from - dropped)));
      if (m === null) return;
      waiters.delete(check);
      clearTimeout(timer);
      resolve(m);
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`));
    }, timeoutMs);
    waiters.add(check);
    check();
  });
}

let nextId = 1;
/** Types `command` on ttyS0 and resolves with its exit status (echoed back as `[exit N #id]`). */
async function run(command) {
  const id = nextId++;
  const from = position();
  state.emulator.serial0_send(`${command}; echo "[exit $? #${id}]"\n`);
  // The echoed command line holds a literal `$?`, which the digits below never match.
  const m = await waitFor(new RegExp(`\\[exit (\\d+) #${id}\\]`), from, STEP_TIMEOUT_MS, command);
  return Number(m[1]);
}

// ---- the rx filter and the counters ------------------------------------------------------------

function row(key, value, nonzero = false) {
  const tr = document.createElement('tr');
  tr.dataset.field = key;
  const k = document.createElement('td');
  k.textContent = key;
  const v = document.createElement('td');
  v.textContent = Array.isArray(value) ? (value.length === 0 ? '[]' : value.join(' ')) : String(value);
  if (nonzero) v.className = 'nonzero';
  tr.append(k, v);
  return tr;
}

const shown = new Map();
function fill(id, rows) {
  const key = JSON.stringify(rows);
  if (shown.get(id) === key) return;
  shown.set(id, key);
  $(id).replaceChildren(...rows.map(([k, v, nz]) => row(k, v, nz)));
}

function render() {
  flushConsole();
  const { device, netdev } = state;
  if (device === null) return;
  const f = device.queryRxFilter();
  fill('rx-filter', Object.entries(f).map(([k, v]) => [k, v]));
  const s = device.stats();
  const bus = netdev.stats();
  fill('frames', [
    ['tx frames', s.tx.frames], ['tx bytes', s.tx.bytes],
    ['rx offered', s.rx.offered], ['rx frames', s.rx.frames], ['rx bytes', s.rx.bytes],
    ['rx backlog', s.rx.backlog], ['rx backpressure', s.rx.backpressure],
    ['ctrl ok / err', `${s.ctrl.ok} / ${s.ctrl.err}`], ['interrupts (used)', s.interrupts.used],
    ['bus: from adapter', bus.received], ['bus: delivered', bus.delivered], ['bus: dropped', bus.dropped, bus.dropped > 0],
  ]);
  fill('drops', [
    ...Object.entries(s.rx.drops).map(([k, v]) => [`rx ${k}`, v, v > 0]),
    ...Object.entries(s.tx.errors).map(([k, v]) => [`tx ${k}`, v, v > 0]),
  ]);
}

// ---- boot and script -------------------------------------------------------------------------

function boot() {
  const emulator = new V86({
    wasm_path: '/v86/v86.wasm',
    bios: { url: '/guest/bios.bin' },
    vga_bios: { url: '/guest/vgabios.bin' },
    bzimage: { url: '/guest/bzImage' },
    initrd: { url: '/guest/initrd.cpio' },
    cmdline: 'console=ttyS0 tsc=reliable mitigations=off',
    memory_size: 256 << 20,
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
    // No NIC of v86's own; relay_url still starts v86's fetch adapter on the bus.
    net_device: { type: 'none', relay_url: 'fetch' },
  });
  state.emulator = emulator;
  state.netdev = new V86BusNetdev({ emulator });
  emulator.add_listener('serial0-output-byte', onSerialByte);
  return new Promise((resolve, reject) => {
    emulator.add_listener('emulator-loaded', () => {
      try {
        attachToV86(emulator, (memory) => {
          state.device = new VirtioNetDevice({ id: 'nic0', mac: MAC, memory, netdev: state.netdev });
          return state.device;
        });
        state.device.on('rx-filter-changed', render);
        emulator.run();
        resolve();
      } catch (e) {
        reject(e);
      }
    });
  });
}

async function step(label, commands) {
  setStep(`guest: ${label}…`);
  const entry = { label, exitCode: null };
  state.steps.push(entry);
  for (const c of Array.isArray(commands) ? commands : [commands]) {
    entry.exitCode = await run(c);
    if (entry.exitCode !== 0) throw new Error(`${label}: \`${c}\` exited ${entry.exitCode}`);
  }
}

async function main() {
  setInterval(render, 250);
  const config = await (await fetch('/config.json')).json();
  if (config.missing !== null) {
    setStatus('guest image missing', 'error');
    setStep(config.missing);
    $('console').textContent = `${config.missing}\n`;
    return;
  }
  setStatus(`booting Linux ${config.image.kernelRelease} in v86…`);
  await boot();
  await waitFor(new RegExp(READY_MARKER), 0, BOOT_TIMEOUT_MS, 'the guest to boot');
  state.bootedAtMs = performance.now();
  setStatus('guest booted; configuring eth0…');
  const quoted = DHCP_SCRIPT.map((l) => `'${l}'`).join(' ');
  await step('eth0 up', 'ip link set eth0 up');
  await step('DHCP from v86\'s fetch adapter', [`printf '%s\\n' ${quoted} > /tmp/dhcp.sh`, 'chmod +x /tmp/dhcp.sh', 'udhcpc -i eth0 -n -q -t 5 -T 2 -s /tmp/dhcp.sh']);
  await step(`ping ${ROUTER_IP}`, `ping -c 3 -W 3 ${ROUTER_IP}`);
  const s = state.device.stats();
  if (s.tx.frames === 0 || s.rx.frames === 0) throw new Error(`the device counted ${s.tx.frames} tx and ${s.rx.frames} rx frames`);
  state.okAtMs = performance.now();
  // What the device held when the network came up, before the steps below change it (promisc on):
  // the page moves on at once, so a reader of the live table could already see the later filter.
  state.atOk = { rxFilter: state.device.queryRxFilter(), txFrames: s.tx.frames, rxFrames: s.rx.frames };
  setStatus('guest network: ok', 'ok');
  // The adapter's DNS answers `<port>.external` and its HTTP maps it to http://localhost:<port>;
  // the guest's static wget cannot use DNS (no glibc NSS module), so the answer goes to /etc/hosts.
  const host = `${config.port}.external`; // the server's port (location.port is empty on port 80)
  await step(`wget http://${host}/hello.txt`, [
    `nslookup ${host} | awk '/^Address: /{a=$2} END{print a, "${host}"}' > /etc/hosts`,
    `wget -q -O - http://${host}/hello.txt`,
  ]);
  await step('promiscuous mode', 'ip link set eth0 promisc on');
  state.done = true;
  render();
  setStep(`done: booted in ${(state.bootedAtMs / 1000).toFixed(1)} s, network ok after ${(state.okAtMs / 1000).toFixed(1)} s (from page load)`);
}

main().catch((e) => {
  state.error = String(e && e.message ? e.message : e);
  setStatus(`guest network: failed (${state.error})`, 'error');
  console.error(e);
});
