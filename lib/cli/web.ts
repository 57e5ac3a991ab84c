// `virtio-net web`: serves, on 127.0.0.1 only, a page that boots the guest image in v86 in the
// browser with this device on v86's PCI bus (API.md "virtio-net web"; the page is web/).
//
// Data flow: at startup esbuild bundles web/page.js (which imports `virtio-net-model/browser`:
// browser.ts in a checkout, dist/browser.js when installed) into memory → an HTTP server on 127.0.0.1
// serves:
//   /               web/index.html
//   /page.js        the bundle (v86 stays outside it: the page imports /v86/libv86.mjs)
//   /v86/…          libv86.mjs and v86.wasm from the v86 npm package
//   /guest/…        bios.bin, vgabios.bin, bzImage, initrd.cpio of the cached guest image
//                   (lib/cli/guest-image.ts; never built here: the page says what to run)
//   /config.json    { image, missing } for the page
//   /hello.txt      what the guest fetches with wget through v86's fetch adapter (which asks
//                   http://localhost:PORT/hello.txt from the page, hence the CORS header)
// Every request is answered from memory or a file read; nothing else on the machine is reachable.

import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, parseFlags } from './args.js';
import type { FlagSpec } from './args.js';
import { findGuestImage, guestCacheDir } from './guest-image.js';
import type { GuestImage } from './guest-image.js';

export const WEB_FLAGS: readonly FlagSpec[] = [
  { name: 'port', kind: 'number', min: 0, max: 65535, help: 'TCP port on 127.0.0.1 (default 8086; 0: any free port)' },
];

export const DEFAULT_WEB_PORT = 8086;
/** What the guest's wget gets from the serving host. */
export const HELLO_TEXT = 'hello from the virtio-net web server, fetched by the guest through the device\n';
/** What to run when the guest image is missing. */
export const MISSING_IMAGE_HINT =
  'the guest image is not built yet: run `npm run setup` (or `npx tsx scripts/build-guest-image.ts`), then reload the page';

export interface WebServer {
  readonly url: string;
  readonly port: number;
  readonly image: GuestImage | null;
  /** Minified bundle size in bytes. */
  readonly bundleBytes: number;
  close(): Promise<void>;
}

export interface WebServerOptions {
  port?: number;
  /** Guest image cache directory (default guest-image.ts's). */
  cacheDir?: string;
}

/** The package root, from lib/cli/ in a checkout or dist/lib/cli/ when built. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'web', 'page.js'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`virtio-net web: web/page.js not found above ${dirname(fileURLToPath(import.meta.url))}`);
}

/** Bundles web/page.js for the browser, into memory. */
async function bundlePage(root: string): Promise<Uint8Array> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (e) {
    throw new Error(`virtio-net web bundles its page with esbuild, which is not installed here (npm install esbuild): ${(e as Error).message}`);
  }
  // The source in a checkout (a dist/ left by an earlier build may be stale); dist/ when installed.
  const source = join(root, 'browser.ts');
  const result = await esbuild.build({
    entryPoints: [join(root, 'web', 'page.js')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
    external: ['/v86/*'],
    alias: { 'virtio-net-model/browser': existsSync(source) ? source : join(root, 'dist', 'browser.js') },
  });
  return result.outputFiles[0]!.contents;
}

function v86Files(): { mjs: string; wasm: string } {
  const main = createRequire(import.meta.url).resolve('v86');
  const dir = dirname(main);
  return { mjs: join(dir, 'libv86.mjs'), wasm: join(dir, 'v86.wasm') };
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  wasm: 'application/wasm',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  bin: 'application/octet-stream',
};

/** Starts the server; resolves once it listens. */
export async function startWebServer(options: WebServerOptions = {}): Promise<WebServer> {
  const root = packageRoot();
  const bundle = await bundlePage(root);
  const html = readFileSync(join(root, 'web', 'index.html'));
  const v86 = v86Files();
  const image = findGuestImage(options.cacheDir ?? guestCacheDir());
  const guestFiles: Record<string, string> =
    image === null ? {} : { 'bios.bin': image.bios, 'vgabios.bin': image.vgaBios, bzImage: image.bzimage, 'initrd.cpio': image.initrd };
  const routes: Record<string, () => Uint8Array | string> = {
    '/': () => html,
    '/index.html': () => html,
    '/page.js': () => bundle,
    '/v86/libv86.mjs': () => readFileSync(v86.mjs),
    '/v86/v86.wasm': () => readFileSync(v86.wasm),
    '/hello.txt': () => HELLO_TEXT,
  };
  for (const [name, path] of Object.entries(guestFiles)) routes[`/guest/${name}`] = () => readFileSync(path);

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    // The guest's wget arrives through the page's fetch() from another origin (localhost:PORT).
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Headers', '*');
      res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD');
      res.writeHead(204).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': TYPES['txt']! }).end('GET only\n');
      return;
    }
    if (path === '/config.json') {
      const body = JSON.stringify({
        image: image === null ? null : { kernelRelease: image.kernelRelease, packages: image.packages },
        missing: image === null ? MISSING_IMAGE_HINT : null,
        port: (server.address() as AddressInfo).port,
      });
      res.writeHead(200, { 'Content-Type': TYPES['json']!, 'Cache-Control': 'no-store' }).end(body);
      return;
    }
    const route = routes[path];
    if (route === undefined) {
      const body = path.startsWith('/guest/') && image === null ? `${MISSING_IMAGE_HINT}\n` : `not found: ${path}\n`;
      res.writeHead(404, { 'Content-Type': TYPES['txt']! }).end(body);
      return;
    }
    const ext = path === '/' ? 'html' : (path.split('.').pop() ?? 'bin');
    res.writeHead(200, { 'Content-Type': TYPES[ext] ?? TYPES['bin']!, 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : route());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_WEB_PORT, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    image,
    bundleBytes: bundle.byteLength,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The command: serves until SIGINT / SIGTERM; returns the exit code. */
export async function runWeb(argv: readonly string[]): Promise<number> {
  const flags = parseFlags('web', argv, WEB_FLAGS);
  const port = typeof flags['port'] === 'number' ? flags['port'] : DEFAULT_WEB_PORT;
  if (!Number.isInteger(port)) throw new UsageError(`virtio-net web: --port must be an integer, got ${port}`);
  const web = await startWebServer({ port });
  process.stdout.write(`virtio-net web: serving ${web.url} (127.0.0.1 only; page bundle ${(web.bundleBytes / 1024).toFixed(0)} KB)\n`);
  if (web.image === null) process.stdout.write(`virtio-net web: ${MISSING_IMAGE_HINT}\n`);
  else process.stdout.write(`virtio-net web: guest image ${web.image.kernelRelease} from ${guestCacheDir()}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await web.close();
  return 0;
}
