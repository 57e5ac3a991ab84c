// The initramfs writer (newc cpio, the kernel's early-userspace buffer format): read back with an
// independent parser of the format, field by field.

import { expect } from 'chai';
import { cpioNewc } from '../../../lib/cli/guest-cpio.js';

interface Parsed {
  name: string;
  mode: number;
  nlink: number;
  rdevmajor: number;
  rdevminor: number;
  data: Uint8Array;
}

function parse(a: Uint8Array): Parsed[] {
  const out: Parsed[] = [];
  const text = new TextDecoder();
  let at = 0;
  for (;;) {
    expect(at % 4).to.equal(0);
    const h = text.decode(a.subarray(at, at + 110));
    expect(h.slice(0, 6)).to.equal('070701');
    const field = (i: number): number => parseInt(h.slice(6 + 8 * i, 14 + 8 * i), 16);
    const namesize = field(11);
    const filesize = field(6);
    const name = text.decode(a.subarray(at + 110, at + 110 + namesize - 1));
    expect(a[at + 110 + namesize - 1]).to.equal(0);
    let p = at + 110 + namesize;
    p += (4 - (p % 4)) % 4;
    const data = a.slice(p, p + filesize);
    p += filesize;
    p += (4 - (p % 4)) % 4;
    if (name === 'TRAILER!!!') {
      expect(p).to.equal(a.length);
      return out;
    }
    out.push({ name, mode: field(1), nlink: field(4), rdevmajor: field(9), rdevminor: field(10), data });
    at = p;
  }
}

describe('cpioNewc', () => {
  it('round_trips_dirs_files_symlinks_and_device_nodes_with_padding', () => {
    const a = cpioNewc([
      { kind: 'dir', path: '/dev' },
      { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
      { kind: 'file', path: 'init', data: Uint8Array.of(1, 2, 3), mode: 0o755 },
      { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
      { kind: 'dir', path: 'tmp', mode: 0o1777 },
    ]);
    const e = parse(a);
    expect(e.map((x) => x.name)).to.deep.equal(['dev', 'dev/console', 'init', 'bin/sh', 'tmp']);
    expect(e[0]!.mode).to.equal(0o040755);
    expect(e[0]!.nlink).to.equal(2);
    expect(e[1]!.mode).to.equal(0o020600);
    expect([e[1]!.rdevmajor, e[1]!.rdevminor]).to.deep.equal([5, 1]);
    expect(e[2]!.mode).to.equal(0o100755);
    expect([...e[2]!.data]).to.deep.equal([1, 2, 3]);
    expect(e[3]!.mode).to.equal(0o120777);
    expect(new TextDecoder().decode(e[3]!.data)).to.equal('busybox');
    expect(e[4]!.mode).to.equal(0o041777);
  });

  it('an_empty_path_is_a_programmer_error', () => {
    expect(() => cpioNewc([{ kind: 'dir', path: '/' }])).to.throw(RangeError, /path/);
  });
});
