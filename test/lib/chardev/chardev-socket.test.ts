// The chardev socket's unix server file: private to its owner, and removed only by its creator.
import { expect } from 'chai';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChardevSocket } from '../../../lib/chardev/index.js';

describe('lib/chardev ChardevSocket unix server file', () => {
  let dir: string;
  let opened: ChardevSocket[];
  /** A server socket closed after the test in every outcome. */
  const server = (id: string, path: string): ChardevSocket => {
    const c = new ChardevSocket({ id, endpoint: { path }, server: true });
    opened.push(c);
    return c;
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vnm-chardev-'));
    opened = [];
  });
  afterEach(async () => {
    await Promise.all(opened.map((c) => c.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('unix_server_socket_file_is_mode_0600_whatever_the_umask', async () => {
    const old = process.umask(0o022);
    const path = join(dir, 'mirror0.sock');
    const c = server('mirror0', path);
    try {
      await c.open();
      const st = statSync(path);
      expect(st.isSocket()).to.equal(true);
      expect(st.mode & 0o777).to.equal(0o600);
    } finally {
      process.umask(old);
      await c.close();
    }
    expect(existsSync(path), 'removed on close').to.equal(false);
  });

  it('close_removes_only_the_socket_file_it_created', async () => {
    const path = join(dir, 'shared.sock');
    const first = server('first', path);
    await first.open();
    // Another server takes the path over (e.g. a restarted process).
    await unlink(path);
    const second = server('second', path);
    await second.open();
    await first.close();
    expect(statSync(path).isSocket(), 'the second server keeps its socket file').to.equal(true);
    await second.close();
    expect(existsSync(path)).to.equal(false);
  });

  it('refuses_to_replace_a_path_that_is_not_a_socket', async () => {
    const path = join(dir, 'not-a-socket');
    writeFileSync(path, 'keep me');
    const c = server('red0', path);
    let error: unknown;
    await c.open().catch((e: unknown) => (error = e));
    expect(String(error)).to.match(/ChardevSocket red0: .*not-a-socket exists and is not a socket/);
    expect(readFileSync(path, 'utf8')).to.equal('keep me');
  });
});
