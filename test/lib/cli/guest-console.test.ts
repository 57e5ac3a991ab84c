// GuestConsole's line protocol over a serial byte stream. The guest side here is a stand-in that
// answers the way busybox ash on a tty does, including echo before `stty -echo` takes effect,
// output split across arbitrary byte boundaries and text that looks like a marker.

import { expect } from 'chai';
import { GuestConsole } from '../../../lib/cli/guest-console.js';

/** Answers each line the console sends: the setup line, then command + marker lines. */
function shell(results: Map<string, { out: string; rc: number }>, echo: boolean): { console: GuestConsole; sent: string[] } {
  const sent: string[] = [];
  let pending = '';
  let lastRc = 0;
  const c: GuestConsole = new GuestConsole((text) => {
    sent.push(text);
    pending += text;
    let nl: number;
    while ((nl = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let reply = echo ? `${line}\r\n` : '';
      if (line.startsWith('stty -echo')) {
        reply += '@@VNM-SYNC@@\r\n';
        echo = false;
      } else if (line.startsWith('echo "@@VNM $? ')) {
        const id = /\$\? (\d+)@@/.exec(line)![1];
        reply += `@@VNM ${lastRc} ${id}@@\r\n`;
      } else {
        const r = results.get(line) ?? { out: '', rc: 127 };
        reply += r.out.replace(/\n/g, '\r\n');
        lastRc = r.rc;
      }
      // Deliver one byte at a time, as v86's serial0-output-byte does.
      for (const b of new TextEncoder().encode(reply)) c.feed(b);
    }
  });
  return { console: c, sent };
}

describe('GuestConsole', () => {
  it('runs_commands_in_order_with_exit_codes_and_output', async () => {
    const { console } = shell(new Map([['uname', { out: 'Linux\n', rc: 0 }], ['false', { out: '', rc: 1 }]]), true);
    const [a, b, c] = await Promise.all([console.run('uname'), console.run('false'), console.run('nosuch')]);
    expect(a).to.deep.equal({ exitCode: 0, output: 'Linux\n' });
    expect(b).to.deep.equal({ exitCode: 1, output: '' });
    expect(c.exitCode).to.equal(127);
  });

  it('output_that_resembles_a_marker_is_not_taken_for_one', async () => {
    const tricky = 'echo "@@VNM $? 1@@"\n@@VNM x 1@@\n';
    const { console } = shell(new Map([['cat notes', { out: tricky, rc: 0 }]]), false);
    expect(await console.run('cat notes')).to.deep.equal({ exitCode: 0, output: tricky });
  });

  it('a_multi_line_command_is_a_programmer_error', () => {
    const { console } = shell(new Map(), false);
    expect(() => console.run('a\nb')).to.throw(TypeError, /one line/);
  });

  it('a_command_that_never_finishes_times_out_with_the_console_tail', async () => {
    const c = new GuestConsole(() => {}); // a guest that never answers
    let error: Error | null = null;
    await c.run('sleep 1000', 20).catch((e: Error) => (error = e));
    expect(error!.message).to.match(/timed out after 20 ms/);
  });

  it('wait_for_sees_a_marker_split_across_bytes', async () => {
    const c = new GuestConsole(() => {});
    const p = c.waitFor('READY', 1000);
    for (const b of new TextEncoder().encode('boot...\r\nREA')) c.feed(b);
    for (const b of new TextEncoder().encode('DY\r\n')) c.feed(b);
    await p;
    expect(c.transcript()).to.equal('boot...\nREADY\n');
  });
});
