// The guest image's module dependency reader (lib/cli/guest-image.ts `moduleDepends`): the
// `depends=` string of a module's .modinfo section, found in the .ko bytes, as the "ipvs" profile
// uses it to order ip_vs after nf_conntrack and its own dependencies.

import { expect } from 'chai';
import { moduleDepends } from '../../../lib/cli/guest-image.js';

const ko = (...strings: string[]): Uint8Array => new TextEncoder().encode(`\x7fELF junk\0${strings.join('\0')}\0more junk`);

describe('guest image: module dependencies from .modinfo', () => {
  it('reads the comma-separated depends= list', () => {
    expect(moduleDepends(ko('license=GPL', 'depends=nf_conntrack,nf_defrag_ipv6,libcrc32c', 'retpoline=Y'))).to.deep.equal(['nf_conntrack', 'nf_defrag_ipv6', 'libcrc32c']);
  });
  it('an empty depends= and no depends= are both none', () => {
    expect(moduleDepends(ko('license=GPL', 'depends=', 'name=x'))).to.deep.equal([]);
    expect(moduleDepends(ko('license=GPL', 'name=x'))).to.deep.equal([]);
  });
  it('only a whole .modinfo entry counts (not "xdepends=" inside another string)', () => {
    expect(moduleDepends(ko('description=no xdepends=foo here', 'depends=bar'))).to.deep.equal(['bar']);
  });
});
