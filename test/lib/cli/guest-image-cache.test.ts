// The guest image cache's naming rule (lib/cli/guest-image.ts `isImageOf`): a build deletes the
// images of earlier recipes of its own architecture, profile and kernel, and never another
// variant's image; and the initramfs's one-entry-per-path rule (`uniquePaths`), which keeps the
// ipvs profile's files from repeating what the tools already put in.

import { expect } from 'chai';
import { isImageOf, uniquePaths } from '../../../lib/cli/guest-image.js';
import type { GuestArch, GuestKernel, GuestProfile } from '../../../lib/cli/guest-image.js';

const hash = '0123456789abcdef';
const variants: Array<[GuestArch, GuestProfile, GuestKernel, string]> = [
  ['i386', 'base', '6.1', `image-${hash}`],
  ['i386', 'base', '6.5', `image-k65-${hash}`],
  ['amd64', 'base', '6.1', `image-amd64-${hash}`],
  ['amd64', 'base', '6.5', `image-amd64-k65-${hash}`],
  ['amd64', 'ipvs', '6.1', `image-amd64-ipvs-${hash}`],
  ['amd64', 'ipvs', '6.5', `image-amd64-k65-ipvs-${hash}`],
];

describe('guest image: cache directory names', () => {
  it('each variant claims its own names and no other variant\'s', () => {
    for (const [arch, profile, kernel, own] of variants) {
      for (const [, , , name] of variants) {
        expect(isImageOf(name, arch, profile, kernel), `${arch}/${profile}/${kernel} vs ${name}`).to.equal(name === own);
      }
    }
  });
  it('only a 16-digit hex recipe after the prefix counts (not build- dirs, apt dirs or other names)', () => {
    for (const name of ['image-', `image-${hash}0`, 'image-0123456789ABCDEF', 'build-abc', 'apt-amd64', `image-x-${hash}`]) {
      expect(isImageOf(name, 'i386', 'base', '6.1'), name).to.equal(false);
    }
    expect(isImageOf('image-fedcba9876543210', 'i386', 'base', '6.1')).to.equal(true);
  });
});

describe('guest image: initramfs entries', () => {
  it('keeps the first entry of each path, in order', () => {
    const a = new Uint8Array([1]);
    const b = new Uint8Array([2]);
    const out = uniquePaths([
      { kind: 'dir', path: 'lib64' },
      { kind: 'file', path: 'lib/x86_64-linux-gnu/libc.so.6', data: a, mode: 0o755 },
      { kind: 'dir', path: 'lib64' },
      { kind: 'file', path: 'sbin/ipvsadm', data: b, mode: 0o755 },
      { kind: 'file', path: 'lib/x86_64-linux-gnu/libc.so.6', data: b, mode: 0o755 },
    ]);
    expect(out.map((e) => e.path)).to.deep.equal(['lib64', 'lib/x86_64-linux-gnu/libc.so.6', 'sbin/ipvsadm']);
    expect(out[1]).to.include({ data: a });
  });
});
