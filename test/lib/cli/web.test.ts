// `virtio-net web` (lib/cli/web.ts, web/page.js; API.md "virtio-net web"): the command started as a
// user starts it, its page opened in Debian's Chromium (headless, through puppeteer-core). The page
// boots the real guest in v86 in the browser with the device from `virtio-net-model/browser`, on
// v86's fetch adapter; #status must read `guest network: ok`, the rx filter on the page must show
// what the guest did (promiscuous after the page's `ip link set eth0 promisc on`) and agree with
// the device's own queryRxFilter(), the counters must show frames both ways, and the guest's wget
// must have fetched the server's /hello.txt. A screenshot goes to the test's temp folder. Also:
// without a guest image, the page and the server's log say what to run; the server itself
// (routes, 127.0.0.1 only, flags) without a browser.

import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import type { Browser, Page } from 'puppeteer-core';
import { programPath } from '../../../scripts/host-requirements.js';
import { HELLO_TEXT, MISSING_IMAGE_HINT, startWebServer } from '../../../lib/cli/web.js';
import type { WebServer } from '../../../lib/cli/web.js';
import { requireProgram } from '../../support/skip.js';
import { guestImageOrSkip } from '../../support/v86-guest.js';

const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'virtio-net.mjs');
const CHROMIUM = 'chromium';
/** Boot plus DHCP, ping, wget in v86 inside headless Chromium on a loaded 2-core machine. */
const GUEST_TIMEOUT_MS = 480_000;

/** What web/page.js exposes as window.virtioNet. */
interface PageHook {
  okAtMs: number;
  atOk: { rxFilter: Record<string, unknown>; txFrames: number; rxFrames: number };
  done: boolean;
  error?: string;
  device: { queryRxFilter(): Record<string, unknown>; stats(): { tx: { frames: number }; rx: { frames: number } } };
}
// The page functions below run in Chromium; the test's TypeScript has no DOM lib, so the little
// they use is declared here (module scope).
declare const window: { virtioNet: PageHook };
declare const document: { querySelector(selector: string): { textContent: string | null; className: string } | null };

interface Served {
  child: ChildProcess;
  url: string;
  log: () => string;
}

/** Starts `virtio-net web --port 0` (any free port) and resolves with the URL it prints. */
function serve(env: NodeJS.ProcessEnv = process.env): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'web', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`virtio-net web printed no URL in 60 s: ${out}`)), 60_000);
    const check = (): void => {
      const m = /serving (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m === null) return;
      clearTimeout(timer);
      // Give the next lines (the image line) a moment to arrive with the first.
      setTimeout(() => resolve({ child, url: m[1]!, log: () => out }), 200);
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`virtio-net web exited ${String(code)}: ${out}`)));
  });
}

async function stop(s: Served | undefined): Promise<void> {
  if (s === undefined || s.child.exitCode !== null) return;
  const exited = new Promise((resolve) => s.child.once('exit', resolve));
  s.child.kill('SIGTERM');
  await exited;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` (a short evaluate in the page) every 500 ms until it is true; fails after `timeoutMs`
 * naming `what`. One long waitForFunction would run into CDP's protocol timeout instead.
 */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(500);
  }
}

function launch(): Promise<Browser> {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return puppeteer.launch({
    executablePath: programPath(CHROMIUM)!,
    headless: true,
    args: [...(root ? ['--no-sandbox'] : []), '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

/** The page's rx-filter table as { field: text }. */
function shownRxFilter(page: Page): Promise<Record<string, string>> {
  return page.$$eval('#rx-filter tr', (rows) => Object.fromEntries(rows.map((r) => [r.getAttribute('data-field'), r.lastElementChild!.textContent])));
}

function shownCount(page: Page, table: string, field: string): Promise<number> {
  return page.$eval(`#${table} tr[data-field="${field}"] td:last-child`, (td) => Number(td.textContent));
}

describe('virtio-net web: the guest in v86 in headless Chromium, with the device from the browser entry', function () {
  this.timeout(GUEST_TIMEOUT_MS + 120_000);
  let served: Served | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  let dir = '';

  before(async function () {
    requireProgram(this, CHROMIUM);
    guestImageOrSkip(this);
    dir = mkdtempSync(join(tmpdir(), 'virtio-net-web-'));
    served = await serve();
    browser = await launch();
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 740 });
  });

  after(async () => {
    await browser?.close();
    await stop(served);
  });

  it('boots_the_guest_and_status_reads_guest_network_ok', async () => {
    const started = Date.now();
    await page!.goto(served!.url);
    await until(
      () => page!.evaluate(() => {
        const s = document.querySelector('#status');
        return s !== null && (s.textContent === 'guest network: ok' || s.className === 'error');
      }),
      GUEST_TIMEOUT_MS,
      'guest network: ok',
    );
    const status = await page!.$eval('#status', (s) => s.textContent);
    const consoleTail = await page!.$eval('#console', (c) => (c.textContent ?? '').slice(-1500));
    expect(status, `page status; console tail:\n${consoleTail}`).to.equal('guest network: ok');
    const okAtMs = await page!.evaluate(() => window.virtioNet.okAtMs);
    console.log(`      page load → guest network: ok: ${(okAtMs / 1000).toFixed(1)} s in the page (${((Date.now() - started) / 1000).toFixed(1)} s seen by the test)`);
    // When the network came up, before the page's `ip link set eth0 promisc on`: not promiscuous,
    // and frames went both ways. The page records this at that moment because it goes straight on
    // to the next steps: the live table may already show promisc on (one CI run saw it).
    const atOk = await page!.evaluate(() => window.virtioNet.atOk);
    expect(atOk.rxFilter['promiscuous']).to.equal(false);
    expect(atOk.txFrames).to.be.greaterThan(0);
    expect(atOk.rxFrames).to.be.greaterThan(0);
    expect(await shownCount(page!, 'frames', 'tx frames')).to.be.greaterThan(0);
    expect(await shownCount(page!, 'frames', 'rx frames')).to.be.greaterThan(0);
  });

  it('the_page_shows_the_rx_filter_the_guest_set_and_the_device_reports', async () => {
    await until(() => page!.evaluate(() => window.virtioNet.done || window.virtioNet.error !== undefined), 300_000, 'the page script to finish');
    const error = await page!.evaluate(() => window.virtioNet.error ?? null);
    expect(error, 'the page script failed').to.equal(null);
    // The table refreshes every 250 ms: wait for it to catch up with the last step.
    await until(
      () => page!.evaluate(() => document.querySelector('#rx-filter tr[data-field="promiscuous"] td:last-child')?.textContent === 'true'),
      5_000,
      'promiscuous true on the page',
    );
    await sleep(600);
    const shown = await shownRxFilter(page!);
    const fromDevice = await page!.evaluate(() => window.virtioNet.device.queryRxFilter());
    expect(fromDevice['promiscuous']).to.equal(true);
    expect(fromDevice['main-mac']).to.equal('52:54:00:12:34:56');
    const asShown = Object.fromEntries(
      Object.entries(fromDevice).map(([k, v]) => [k, Array.isArray(v) ? (v.length === 0 ? '[]' : v.join(' ')) : String(v)]),
    );
    expect(shown).to.deep.equal(asShown);
  });

  it('the_guest_fetched_the_servers_page_through_the_device_and_nothing_was_dropped_on_the_bus', async () => {
    const text = await page!.$eval('#console', (c) => c.textContent ?? '');
    expect(text).to.include(HELLO_TEXT.trim());
    expect(await shownCount(page!, 'frames', 'bus: dropped')).to.equal(0);
    const stats = await page!.evaluate(() => window.virtioNet.device.stats());
    const shownTx = await shownCount(page!, 'frames', 'tx frames');
    expect(shownTx).to.be.greaterThan(0);
    expect(shownTx).to.be.at.most(stats.tx.frames);
    expect(await shownCount(page!, 'frames', 'rx frames')).to.be.at.most(stats.rx.frames);
  });

  it('saves_a_screenshot', async () => {
    const path = join(dir, 'web-page.png');
    await page!.screenshot({ path });
    const png = readFileSync(path);
    expect([...png.subarray(0, 8)]).to.deep.equal([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    console.log(`      screenshot: ${path} (${png.byteLength} bytes)`);
  });
});

describe('virtio-net web without a guest image', function () {
  this.timeout(120_000);
  let served: Served | undefined;
  let browser: Browser | undefined;
  let cache = '';

  before(async function () {
    requireProgram(this, CHROMIUM);
    cache = mkdtempSync(join(tmpdir(), 'virtio-net-web-empty-cache-'));
    served = await serve({ ...process.env, XDG_CACHE_HOME: cache });
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await stop(served);
    rmSync(cache, { recursive: true, force: true });
  });

  it('the_page_and_the_log_say_what_to_run', async () => {
    expect(served!.log()).to.include(MISSING_IMAGE_HINT);
    const page = await browser!.newPage();
    await page.goto(served!.url);
    await until(() => page.evaluate(() => document.querySelector('#status')?.textContent === 'guest image missing'), 60_000, 'the missing-image status');
    expect(await page.$eval('#step', (s) => s.textContent)).to.include('npm run setup');
  });
});

describe('virtio-net web: the server', function () {
  this.timeout(60_000);
  let web: WebServer | undefined;
  let cache = '';

  before(async () => {
    cache = mkdtempSync(join(tmpdir(), 'virtio-net-web-server-'));
    web = await startWebServer({ port: 0, cacheDir: cache });
  });

  after(async () => {
    await web?.close();
    rmSync(cache, { recursive: true, force: true });
  });

  it('listens_on_127_0_0_1_and_serves_the_page_the_bundle_and_v86', async () => {
    expect(web!.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const html = await fetch(web!.url);
    expect(html.headers.get('content-type')).to.match(/^text\/html/);
    expect(await html.text()).to.include('id="status"');
    const bundle = await (await fetch(`${web!.url}page.js`)).text();
    expect(bundle.length).to.equal(web!.bundleBytes);
    expect(bundle).to.include('/v86/libv86.mjs'); // v86 stays outside the bundle
    const wasm = await fetch(`${web!.url}v86/v86.wasm`);
    expect(wasm.headers.get('content-type')).to.equal('application/wasm');
    expect([...new Uint8Array(await wasm.arrayBuffer()).subarray(0, 4)]).to.deep.equal([0x00, 0x61, 0x73, 0x6d]);
  });

  it('without_an_image_config_and_guest_files_say_what_to_run', async () => {
    expect(web!.image).to.equal(null);
    const config = (await (await fetch(`${web!.url}config.json`)).json()) as { image: unknown; missing: string };
    expect(config.image).to.equal(null);
    expect(config.missing).to.equal(MISSING_IMAGE_HINT);
    const bz = await fetch(`${web!.url}guest/bzImage`);
    expect(bz.status).to.equal(404);
    expect(await bz.text()).to.include('npm run setup');
  });

  it('hello_txt_is_readable_from_another_origin_and_other_methods_are_refused', async () => {
    const hello = await fetch(`${web!.url}hello.txt`);
    expect(hello.headers.get('access-control-allow-origin')).to.equal('*');
    expect(await hello.text()).to.equal(HELLO_TEXT);
    expect((await fetch(`${web!.url}hello.txt`, { method: 'POST', body: 'x' })).status).to.equal(405);
    expect((await fetch(`${web!.url}nothing-here`)).status).to.equal(404);
  });

  it('a_bad_port_or_an_unknown_flag_is_a_usage_error_exit_2', () => {
    for (const [args, says] of [
      [['--port', '70000'], '--port must be a number >= 0 and <= 65535'],
      [['--port', '80.5'], '--port must be an integer'],
      [['--bind', '0.0.0.0'], 'unknown flag --bind'],
    ] as const) {
      const r = spawnSync(process.execPath, [BIN, 'web', ...args], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).to.equal(2);
      expect(r.stderr).to.include(says);
    }
  });
});
