// The pieces of `virtio-net guest --kernel ipxe` that need no guest: the iPXE script with its step
// markers, the VGA text screen's transcript (scroll inference), and IpxeSteps reading a step's
// result and pausing the machine at its END marker. The real iPXE runs in test/guest/ipxe.test.ts.

import { expect } from 'chai';
import { UsageError } from '../../../lib/cli/args.js';
import { parseGuestArgs } from '../../../lib/cli/guest.js';
import { IpxeSteps, ipxeScript } from '../../../lib/cli/ipxe.js';
import { SCREEN_COLS, SCREEN_ROWS, VgaTextScreen, scrollShift } from '../../../lib/cli/ipxe-screen.js';

/** Writes `text` at row `row` from column 0 the way v86 reports it (one event per character). */
function write(put: (r: number, c: number, ch: number) => void, row: number, text: string): void {
  for (let c = 0; c < text.length; c++) put(row, c, text.charCodeAt(c));
}

function blankRows(): string[] {
  return new Array<string>(SCREEN_ROWS).fill(' '.repeat(SCREEN_COLS));
}

describe('lib/cli/ipxe (iPXE script and screen transcript)', () => {
  it('kernel_ipxe_needs_a_script_and_takes_no_initrd_or_state', () => {
    expect(parseGuestArgs(['--kernel', 'ipxe', '--script', 's.ipxe', '--legacy'])).to.include({ kernel: 'ipxe', script: 's.ipxe', legacy: true });
    expect(parseGuestArgs(['--kernel', 'ipxe', '--script', 's.ipxe', '--nic', 'builtin'])).to.include({ kernel: 'ipxe', nic: 'builtin' });
    expect(parseGuestArgs(['--kernel', 'ipxe', '--script', 's.ipxe', '--legacy-only'])).to.include({ legacy: false, legacyOnly: true });
    expect(parseGuestArgs(['--kernel', 'ipxe', '--script', 's.ipxe'])).to.include({ legacy: false, legacyOnly: false });
    expect(() => parseGuestArgs(['--legacy-only', '--nic', 'builtin'])).to.throw(UsageError, /--legacy-only does not apply to --nic builtin/);
    expect(() => parseGuestArgs(['--kernel', 'ipxe'])).to.throw(UsageError, /--kernel ipxe needs --script FILE/);
    for (const flag of [['--initrd', 'x.cpio'], ['--save', 'vm.state'], ['--restore', 'vm.state']]) {
      expect(() => parseGuestArgs(['--kernel', 'ipxe', '--script', 's.ipxe', ...flag])).to.throw(UsageError, new RegExp(`${flag[0]} does not go with --kernel ipxe`));
    }
  });

  it('the_script_marks_each_step_and_keeps_going_after_a_failing_command', () => {
    expect(ipxeScript(['dhcp', 'imgfetch http://x/y'])).to.equal(
      [
        '#!ipxe',
        'echo VNM-BEGIN 0 .',
        'dhcp && echo VNM-END 0 0 . || echo VNM-END 0 ${errno} .',
        'echo VNM-BEGIN 1 .',
        'imgfetch http://x/y && echo VNM-END 1 0 . || echo VNM-END 1 ${errno} .',
        '',
      ].join('\n'),
    );
    expect(() => ipxeScript(['dhcp\nreboot'])).to.throw(TypeError, /step 0 spans lines/);
  });

  it('scroll_shift_is_the_smallest_move_that_carries_text_and_zero_for_a_rewrite', () => {
    const before = blankRows();
    before[0] = 'alpha';
    before[1] = 'beta';
    before[2] = 'gam';
    const grown = [...before];
    grown[2] = 'gamma'; // text on the cursor's row grew: no scroll
    expect(scrollShift(before, grown)).to.equal(0);
    const scrolled2 = [...blankRows()];
    scrolled2[0] = 'gamma';
    scrolled2[1] = 'delta';
    expect(scrollShift(before, scrolled2)).to.equal(2);
    const rewritten = [...before];
    rewritten[1] = 'bet 50%'; // a row rewritten in place (progress): nothing scrolled
    expect(scrollShift(before, rewritten)).to.equal(0);
  });

  it('the_transcript_keeps_rows_that_scrolled_off_and_joins_wrapped_rows', () => {
    const screen = new VgaTextScreen();
    const put = screen.putChar.bind(screen);
    for (let r = 0; r < SCREEN_ROWS; r++) write(put, r, `line ${r}`);
    screen.snapshot();
    // The BIOS scrolls by one: every row moves up, the bottom row is blank, then text is written.
    for (let r = 0; r < SCREEN_ROWS - 1; r++) write(put, r, `line ${r + 1}`.padEnd(SCREEN_COLS));
    write(put, SCREEN_ROWS - 1, ' '.repeat(SCREEN_COLS));
    write(put, SCREEN_ROWS - 1, 'x'.repeat(SCREEN_COLS)); // a full row wraps on to the next
    screen.snapshot();
    for (let r = 0; r < SCREEN_ROWS - 1; r++) write(put, r, (r === SCREEN_ROWS - 2 ? 'x'.repeat(SCREEN_COLS) : `line ${r + 2}`).padEnd(SCREEN_COLS));
    write(put, SCREEN_ROWS - 1, 'tail'.padEnd(SCREEN_COLS));
    const lines = screen.lines();
    expect(lines.slice(0, 3)).to.deep.equal(['line 0', 'line 1', 'line 2']);
    expect(lines.at(-1)).to.equal(`${'x'.repeat(SCREEN_COLS)}tail`);
    expect(lines.length).to.equal(SCREEN_ROWS + 1);
    put(99, 0, 0x41); // outside the grid: ignored
  });

  it('a_step_resolves_at_its_end_marker_with_its_output_and_error_number_and_pauses_the_machine', async () => {
    const steps = new IpxeSteps();
    const calls: string[] = [];
    const put = steps.putChar.bind(steps);
    steps.attach({
      stop: async () => void calls.push('stop'),
      run: async () => {
        calls.push('run');
        // iPXE runs on: step 0 fails with an error number, then step 1 starts.
        if (calls.filter((c) => c === 'run').length === 1) {
          write(put, 0, 'VNM-BEGIN 0 .');
          write(put, 1, 'http://h/x... No such file or directory (http://ipxe.org/2d0c613b)');
          write(put, 2, 'VNM-END 0 0x2d0c613b .');
          write(put, 3, 'VNM-BEGIN 1 .');
        } else {
          write(put, 4, 'file.bin : 10 bytes [PXE-NBP]');
          write(put, 5, 'VNM-END 1 0 .');
        }
      },
    });
    try {
      const first = await steps.next(0, 5000);
      expect(first).to.deep.equal({ exitCode: 0x2d0c613b, output: 'http://h/x... No such file or directory (http://ipxe.org/2d0c613b)\n' });
      expect(calls).to.deep.equal(['run', 'stop']);
      const second = await steps.next(1, 5000);
      expect(second).to.deep.equal({ exitCode: 0, output: 'file.bin : 10 bytes [PXE-NBP]\n' });
      expect(calls).to.deep.equal(['run', 'stop', 'run', 'stop']);
      await steps.next(2, 50).then(
        () => expect.fail('step 2 has no marker'),
        (e: Error) => expect(e.message).to.match(/timed out after 50 ms waiting for iPXE step 2/),
      );
    } finally {
      steps.close();
    }
  });
});
