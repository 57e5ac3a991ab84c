import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { Netns, deleteLink, hostCleanups, linkName, trackLink, withNetnsFd } from '../../support/netns.js';
import { MulticastList, parseDevMcast } from '../../../lib/netdev/multicast.js';
import { Rtnetlink } from '../../../lib/netlink/rtnetlink.js';
import { NetlinkError } from '../../../lib/netlink/errors.js';
import { HostError } from '../../../lib/host/libc.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('lib/netdev/multicast', () => {
  it('dev_mcast_lines_group_by_interface', () => {
    const text = '2    eth0            1     0     333300000001\n2    eth0            1     0     01005e000001\n9    mvt0            1     0     01005e010203\n';
    expect([...parseDevMcast(text)]).to.deep.equal([
      ['eth0', ['33:33:00:00:00:01', '01:00:5e:00:00:01']],
      ['mvt0', ['01:00:5e:01:02:03']],
    ]);
  });

  describe('on the real kernel (throwaway netns)', function () {
    this.timeout(20_000);
    const cleanups = hostCleanups();
    let rt: Rtnetlink;

    before(() => {
      rt = new Rtnetlink();
    });
    after(() => rt?.close());

    it('multicast_list_add_and_delete_show_in_dev_mcast_and_unicast_is_refused_first', () => {
      const ns = new Netns();
      cleanups.push(() => ns.destroy());
      const lower = linkName('l');
      withNetnsFd(ns, (fd) => rt.createVeth(lower, 'peer0', { peerNetnsFd: fd }));
      trackLink(lower);
      cleanups.push(() => deleteLink(lower));
      const m = new MulticastList();
      cleanups.push(() => m.close());
      const groups = (): string[] => parseDevMcast(readFileSync('/proc/net/dev_mcast', 'utf8')).get(lower) ?? [];
      m.add(lower, '01:00:5e:7f:00:01');
      expect(groups()).to.include('01:00:5e:7f:00:01');
      m.delete(lower, '01:00:5e:7f:00:01');
      expect(groups()).to.not.include('01:00:5e:7f:00:01');
      expect((thrown(() => m.add(lower, '52:54:00:12:34:56')) as NetlinkError).code).to.equal('netlink.bad-value');
      const h = thrown(() => m.add('vnmnosuchlink', '01:00:5e:7f:00:01')) as HostError;
      expect(h).to.be.instanceOf(HostError);
      expect(h.errno).to.equal(19);
    });
  });
});
