// `--chardev`, `--object` and the `--netdev` id/vhost/script properties: the seed's COLO lines
// parse as written, and every mistake is a UsageError naming the object, the property and what is
// allowed — found while parsing, before anything opens (`virtio-net run` exits 2).
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseChardev } from '../../../lib/cli/chardev-args.js';
import { parseNetdevLine } from '../../../lib/cli/netdev-options.js';
import { parseObject, splitOptions } from '../../../lib/cli/object-args.js';
import { parseObjectSetup } from '../../../lib/cli/object-setup.js';
import { usageMessage } from '../../support/usage-error.js';

const root = join(import.meta.dirname, '..', '..', '..');


describe('lib/cli --chardev / --object / --netdev id=', () => {
  it('the_seeds_chardev_spellings_parse_including_bare_server_and_nowait', () => {
    expect(parseChardev('socket,id=mirror0,host=3.3.3.3,port=9003,server,nowait')).to.deep.equal({ id: 'mirror0', endpoint: { host: '3.3.3.3', port: 9003 }, server: true, wait: false });
    expect(parseChardev('socket,id=red0,host=3.3.3.3,port=9003')).to.deep.equal({ id: 'red0', endpoint: { host: '3.3.3.3', port: 9003 }, server: false, wait: false });
    expect(parseChardev('socket,id=c,path=/run/c.sock,server=on')).to.deep.equal({ id: 'c', endpoint: { path: '/run/c.sock' }, server: true, wait: true });
    expect(parseChardev('socket,id=c,port=0,server=on,wait=off')).to.deep.equal({ id: 'c', endpoint: { host: '127.0.0.1', port: 0 }, server: true, wait: false });
  });

  it('bad_chardevs_name_the_property_and_what_is_allowed', () => {
    expect(usageMessage(() => parseChardev('file,id=x,path=/tmp/x'))).to.contain('backend must be socket');
    expect(usageMessage(() => parseChardev('socket,id=x,port=9,serv=on'))).to.equal("--chardev socket: unknown property 'serv'; allowed: id, host, port, path, server, wait, nowait");
    expect(usageMessage(() => parseChardev('socket,id=x,port=99999'))).to.equal('--chardev socket,id=x: port must be a number from 1 to 65535, got "99999"');
    expect(usageMessage(() => parseChardev('socket,id=x,port=1,server=maybe'))).to.equal('--chardev socket,id=x: server must be on or off, got "maybe"');
    expect(usageMessage(() => parseChardev('socket,port=1'))).to.contain('needs id=NAME');
    expect(usageMessage(() => parseChardev('socket,id=x,path=/a,port=1'))).to.contain('give path= (unix) or host=,port= (TCP), not both');
    expect(usageMessage(() => parseChardev('socket,id=x,port=1,nowait'))).to.contain('wait/nowait is for a server');
  });

  it('the_seeds_object_lines_parse_with_qemus_property_names', () => {
    expect(parseObject('filter-mirror,id=m0,netdev=hn0,queue=tx,outdev=mirror0,vnet_hdr_support')).to.deep.equal({
      type: 'filter-mirror', id: 'm0', props: { netdev: 'hn0', queue: 'tx', outdev: 'mirror0', vnet_hdr_support: true },
    });
    expect(parseObject('colo-compare,id=comp0,primary_in=compare0-0,secondary_in=compare1,outdev=compare_out0,iothread=iothread1,compare_timeout=3000').props).to.deep.equal({
      primary_in: 'compare0-0', secondary_in: 'compare1', outdev: 'compare_out0', iothread: 'iothread1', compare_timeout: 3000,
    });
    expect(parseObject('filter-dump,id=d,netdev=hn0,file=/tmp/a,,b.pcap,maxlen=128').props).to.deep.equal({ netdev: 'hn0', file: '/tmp/a,b.pcap', maxlen: 128 });
    expect(parseObject('iothread,id=iothread1')).to.deep.equal({ type: 'iothread', id: 'iothread1', props: {} });
    expect(splitOptions('a,b,,c,d')).to.deep.equal(['a', 'b,c', 'd']);
  });

  it('bad_objects_name_the_object_the_property_and_what_is_allowed', () => {
    expect(usageMessage(() => parseObject('filter-mirror,id=m0,netdev=hn0,queue=tx,outdevv=mirror0'))).to.equal(
      "--object filter-mirror m0: unknown property 'outdevv'; filter-mirror takes netdev, queue, status, position, insert, outdev, vnet_hdr_support (and id)",
    );
    expect(usageMessage(() => parseObject('filter-mirror,id=m0,netdev=hn0,queue=both,outdev=x'))).to.equal('--object filter-mirror m0: property \'queue\' must be one of all, rx, tx, got "both"');
    expect(usageMessage(() => parseObject('filter-dump,id=d,netdev=hn0,file=/x,maxlen=-1'))).to.equal('--object filter-dump d: property \'maxlen\' must be an integer from 0 to 2147483647, got "-1"');
    expect(usageMessage(() => parseObject('filter-mirror,id=m0,netdev=hn0,outdev=x,vnet_hdr_support=perhaps'))).to.contain("property 'vnet_hdr_support' must be on or off");
    expect(usageMessage(() => parseObject('filter-mirror,id=m0,netdev=hn0'))).to.equal("--object filter-mirror m0: property 'outdev' is required (where copies go)");
    expect(usageMessage(() => parseObject('filter-redirector,id=r,netdev=hn0'))).to.contain('needs indev=CHARDEV or outdev=CHARDEV');
    expect(usageMessage(() => parseObject('filter-rewriter,id=f3,netdev=hn0,queue=rx'))).to.contain('queue must be all');
    expect(usageMessage(() => parseObject('memory-backend-ram,id=m'))).to.equal("--object unknown object type 'memory-backend-ram'; allowed: filter-mirror, filter-redirector, filter-rewriter, filter-dump, colo-compare, iothread");
    expect(usageMessage(() => parseObject('iothread'))).to.equal('--object iothread: needs id=NAME');
    expect(usageMessage(() => parseObject('iothread,id=1x'))).to.contain('id must start with a letter');
  });

  it('references_are_checked_across_lines_before_anything_opens', () => {
    const chardevs = ['socket,id=c0,port=9001,server,nowait', 'socket,id=c1,port=9002,server,nowait'];
    expect(usageMessage(() => parseObjectSetup(chardevs, ['filter-mirror,id=m0,netdev=hn1,outdev=c0'], 'hn0'))).to.equal("--object filter-mirror m0: netdev 'hn1' does not exist; netdevs: hn0");
    expect(usageMessage(() => parseObjectSetup(chardevs, ['filter-mirror,id=m0,netdev=hn0,outdev=c9'], 'hn0'))).to.equal("--object filter-mirror m0: outdev 'c9' is not a chardev; chardevs: c0, c1");
    expect(usageMessage(() => parseObjectSetup(chardevs, ['filter-mirror,id=m0,netdev=hn0,outdev=c0', 'filter-mirror,id=m1,netdev=hn0,outdev=c0'], 'hn0'))).to.equal("--object filter-mirror m1: chardev 'c0' is already used by 'm0'");
    expect(usageMessage(() => parseObjectSetup(chardevs, ['filter-rewriter,id=a,netdev=hn0', 'filter-rewriter,id=a,netdev=hn0'], 'hn0'))).to.contain("an object with id 'a' already exists");
    expect(usageMessage(() => parseObjectSetup(chardevs, ['colo-compare,id=c,primary_in=c0,secondary_in=c1,outdev=c0,iothread=io1'], 'hn0'))).to.contain("chardev 'c0' is both its primary_in and its outdev");
    expect(usageMessage(() => parseObjectSetup([...chardevs, 'socket,id=c2,port=1'], ['colo-compare,id=c,primary_in=c0,secondary_in=c1,outdev=c2,iothread=io1'], 'hn0'))).to.contain("iothread 'io1' is not an iothread object");
    expect(usageMessage(() => parseObjectSetup([chardevs[0]!, chardevs[0]!], [], 'hn0'))).to.contain("a chardev with id 'c0' was given before");
    const ok = parseObjectSetup([...chardevs, 'socket,id=c2,port=1'], ['iothread,id=io1', 'colo-compare,id=c,primary_in=c0,secondary_in=c1,outdev=c2,iothread=io1,vnet_hdr_support'], 'hn0');
    expect([...ok.vnet]).to.deep.equal([['c0', true], ['c1', true], ['c2', true]]);
  });

  it('netdev_lines_take_qemus_id_vhost_off_and_scripts', () => {
    expect(parseNetdevLine('tap,id=hn0,vhost=off,script=/etc/qemu-ifup,downscript=/etc/qemu-ifdown')).to.deep.equal({
      id: 'hn0', spec: { kind: 'tap' }, script: '/etc/qemu-ifup', downscript: '/etc/qemu-ifdown',
    });
    expect(parseNetdevLine('tap,ifname=tap9,script=no,downscript=no')).to.deep.equal({ id: 'hostnet0', spec: { kind: 'tap', ifname: 'tap9' } });
    expect(parseNetdevLine('memory,id=n1')).to.deep.equal({ id: 'n1', spec: { kind: 'memory' } });
    expect(usageMessage(() => parseNetdevLine('tap,id=hn0,vhost=on'))).to.contain('vhost must be off');
    expect(usageMessage(() => parseNetdevLine('tap,id=9'))).to.contain('id must start with a letter');
    expect(usageMessage(() => parseNetdevLine('tap,id=hn0,down script=/x'))).to.contain("unknown property down script");
  });

  it('virtio_net_run_exits_2_naming_the_bad_property_before_anything_starts', () => {
    const p = spawnSync(process.execPath, [join(root, 'bin', 'virtio-net.mjs'), 'run', '--netdev', 'memory,id=hn0',
      '--chardev', 'socket,id=c0,host=127.0.0.1,port=0,server=on,wait=on',
      '--object', 'filter-mirror,id=m0,netdev=hn0,queue=tx,outdev=c0,vnethdr'], { encoding: 'utf8', timeout: 60_000 });
    // wait=on would block forever had the chardev been opened: the error came first.
    expect(p.status, p.stderr).to.equal(2);
    expect(p.stderr).to.contain("filter-mirror m0: unknown property 'vnethdr'");
  });
});
