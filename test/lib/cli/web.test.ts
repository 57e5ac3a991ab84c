// `virtio-net web` (lib/cli/web.ts, web/page.js; API.md "virtio-net web"): the command started as a
// user starts it, its page opened in Debian's Chromium (headless, through puppeteer-core). The page
// boots the real guest in v86 in the browser with the device from `virtio-net-model/browser`, on
// v86's fetch adapter; #status must read `guest network: ok`, the rx filter on the page must show
// what the guest did (promiscuous after the page's `ip link set eth0 promisc on`) and agree with
// the device's own queryRxFilter(), the counters must show frames both ways, and the guest's wget
// must have fetched the server's /hello.txt. A screenshot goes to the test's temp folder. Also:
// without a guest image, the page and the server's log say what to run.

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import type { Browser, Page } from 'puppeteer-core';
import { programPath } from '../../../scripts/host-requirements.js';
import { HELLO_TEXT, MISSING_IMAGE_HINT } from '../../../lib/cli/web.js';
import { requireProgram } from '../../support/skip.js';
import { guestImageOrSkip } from '../../support/v86-guest.js';

const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'virtio-net.mjs');
const CHROMIUM = 'chromium';
/** Boot plus DHCP, ping, wget in v86 inside headless Chromium on a loaded 2-core machine. */
const GUEST_TIMEOUT_MS = 480_000;

/** What web/page.js exposes as window.virtioNet. */
interface PageHook {
  okAtMs: number;
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
    // Before the page's `ip link set eth0 promisc on`: not promiscuous, and frames went both ways.
    expect((await shownRxFilter(page!))['promiscuous']).to.equal('false');
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
