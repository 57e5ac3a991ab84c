// `--netdev tap,…,io=inline|uring` (TapNetdev's `io`): parsed for `virtio-net run` (with QEMU's
// id/vhost/script properties beside it) and `virtio-net guest`; inline stays the default (no `io`
// in the spec); any other value is a UsageError naming the property and the allowed values, and
// both commands exit 2 with it before anything opens; `--help` shows the property.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseNetdev } from '../../../lib/cli/args.js';
import { parseNetdevLine } from '../../../lib/cli/netdev-options.js';
import { usageMessage } from '../../support/usage-error.js';

const root = join(import.meta.dirname, '..', '..', '..');
const cli = join(root, 'bin', 'virtio-net.mjs');


describe('lib/cli --netdev tap,io=', () => {
  it('io_uring_and_inline_parse_and_the_default_names_no_io', () => {
    expect(parseNetdev('tap,io=uring')).to.deep.equal({ kind: 'tap', io: 'uring' });
    expect(parseNetdev('tap,ifname=tap3,io=inline')).to.deep.equal({ kind: 'tap', ifname: 'tap3', io: 'inline' });
    expect(parseNetdev('tap,ifname=tap3')).to.deep.equal({ kind: 'tap', ifname: 'tap3' });
    expect(parseNetdevLine('tap,id=hn0,vhost=off,io=uring,script=no')).to.deep.equal({ id: 'hn0', spec: { kind: 'tap', io: 'uring' } });
  });

  it('any_other_io_is_a_usage_error_naming_the_allowed_values', () => {
    expect(usageMessage(() => parseNetdev('tap,io=epoll'))).to.equal('--netdev tap: io must be inline or uring, got "epoll"');
    expect(usageMessage(() => parseNetdev('tap,io='))).to.equal('--netdev tap: io must be inline or uring, got ""');
    expect(usageMessage(() => parseNetdev('tap,io=URING'))).to.contain('io must be inline or uring');
    // not a property of the other fd backend
    expect(usageMessage(() => parseNetdev('macvtap,ifname=m0,io=uring'))).to.contain('unknown property io');
  });

  it('virtio_net_run_and_guest_exit_2_on_a_bad_io_before_anything_opens', function () {
    this.timeout(120_000);
    for (const cmd of ['run', 'guest']) {
      const p = spawnSync(process.execPath, [cli, cmd, '--netdev', 'tap,ifname=vnmio0,io=poll'], { encoding: 'utf8', timeout: 60_000 });
      expect(p.status, `${cmd}: ${p.stderr}`).to.equal(2);
      expect(p.stderr).to.contain('--netdev tap: io must be inline or uring, got "poll"');
    }
  });

  it('help_shows_the_io_property', function () {
    this.timeout(60_000);
    const p = spawnSync(process.execPath, [cli, 'run', '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(p.status).to.equal(0);
    expect(p.stdout).to.contain('tap[,ifname=NAME][,io=inline|uring]');
  });
});
