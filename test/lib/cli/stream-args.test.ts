// `--netdev stream,…` and `--netdev passt,…` spellings (QEMU's property names) and their usage errors.

import { expect } from 'chai';
import { parseNetdev, UsageError } from '../../../lib/cli/args.js';

describe('lib/cli stream and passt --netdev spellings', () => {
  it('stream_unix_and_inet_in_qemus_spelling', () => {
    expect(parseNetdev('stream,addr.type=unix,addr.path=/run/s.sock')).to.deep.equal({ kind: 'stream', options: { path: '/run/s.sock', server: false, reconnectMs: 0 } });
    expect(parseNetdev('stream,addr.type=unix,addr.path=/s,server=on')).to.deep.equal({ kind: 'stream', options: { path: '/s', server: true, reconnectMs: 0 } });
    expect(parseNetdev('stream,addr.type=unix,addr.path=/s,server=off,reconnect=2')).to.deep.equal({ kind: 'stream', options: { path: '/s', server: false, reconnectMs: 2000 } });
    expect(parseNetdev('stream,addr.type=inet,addr.host=127.0.0.1,addr.port=5555,reconnect-ms=250')).to.deep.equal({
      kind: 'stream',
      options: { host: '127.0.0.1', port: 5555, server: false, reconnectMs: 250 },
    });
    expect(parseNetdev('stream,server=on,addr.type=inet,addr.host=::1,addr.port=0')).to.deep.equal({ kind: 'stream', options: { host: '::1', port: 0, server: true, reconnectMs: 0 } });
  });

  it('stream_usage_errors_say_what_is_wrong', () => {
    const bad: [string, RegExp][] = [
      ['stream', /needs addr.type=unix or addr.type=inet, got none/],
      ['stream,addr.type=vsock', /got "vsock"/],
      ['stream,addr.type=unix', /needs addr.path=PATH/],
      ['stream,addr.type=inet,addr.port=1', /needs addr.host=HOST/],
      ['stream,addr.type=inet,addr.host=h', /needs addr.port=PORT/],
      ['stream,addr.type=inet,addr.host=h,addr.port=0', /addr.port must be an integer from 1 to 65535/],
      ['stream,addr.type=inet,addr.host=h,addr.port=99999,server=on', /from 0 to 65535/],
      ['stream,addr.type=unix,addr.path=/s,server=maybe', /server must be on or off/],
      ['stream,addr.type=unix,addr.path=/s,server=on,reconnect=1', /reconnect is for a client/],
      ['stream,addr.type=unix,addr.path=/s,reconnect=1,reconnect-ms=5', /not both/],
      ['stream,addr.type=unix,addr.path=/s,addr.path=/t', /addr.path given twice/],
      ['stream,addr.type=unix,addr.path=/s,fd=3', /unknown property fd/],
      ['stream,addr.type=unix,addr.path=/s,addr.port=3', /takes addr.path, not/],
    ];
    for (const [v, re] of bad) expect(() => parseNetdev(v), v).to.throw(UsageError, re);
  });

  it('passt_forwards_in_passts_and_qemus_spelling', () => {
    expect(parseNetdev('passt')).to.deep.equal({ kind: 'passt', tcp: [], udp: [] });
    expect(parseNetdev('passt,tcp=8080:80,tcp=2222:22,udp=5353')).to.deep.equal({ kind: 'passt', tcp: ['8080:80', '2222:22'], udp: ['5353'] });
    expect(parseNetdev('passt,hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5000-:53')).to.deep.equal({ kind: 'passt', tcp: ['8080:80'], udp: ['127.0.0.1/5000:53'] });
    expect(() => parseNetdev('passt,tcp=80;rm')).to.throw(UsageError, /one passt port spec/);
    expect(() => parseNetdev('passt,hostfwd=tcp::1-10.0.2.15:2')).to.throw(UsageError, /cannot name a guest address/);
    expect(() => parseNetdev('passt,hostfwd=8080')).to.throw(UsageError, /hostfwd must look like tcp::8080-:80/);
    expect(() => parseNetdev('passt,socket=/x')).to.throw(UsageError, /unknown property socket; allowed: tcp, udp, hostfwd/);
    expect(() => parseNetdev('slirp')).to.throw(UsageError, /allowed: memory, tap, macvtap, dgram, vde, stream, passt, websocket/);
  });

  it('websocket_takes_a_ws_or_wss_url', () => {
    expect(parseNetdev('websocket,url=ws://127.0.0.1:8086/')).to.deep.equal({ kind: 'websocket', url: 'ws://127.0.0.1:8086/' });
    expect(parseNetdev('websocket,url=wss://relay.example:443/net?a=1,b=2')).to.deep.equal({ kind: 'websocket', url: 'wss://relay.example:443/net?a=1,b=2' });
    expect(() => parseNetdev('websocket')).to.throw(UsageError, /needs url=ws:\/\/HOST:PORT/);
    expect(() => parseNetdev('websocket,host=x')).to.throw(UsageError, /needs url=/);
    expect(() => parseNetdev('websocket,url=http://127.0.0.1:8086/')).to.throw(UsageError, /must be ws:\/\/ or wss:\/\//);
    expect(() => parseNetdev('websocket,url=not a url')).to.throw(UsageError, /not a URL/);
  });
});
