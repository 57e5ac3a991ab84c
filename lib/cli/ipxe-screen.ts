// The VGA text screen of a v86 guest as a transcript (no VIRTIO section: the console of iPXE,
// whose Debian build writes to the BIOS screen only, not to a serial port).
//
// Data flow: v86's `screen-put-char` (row, column, character) → an 80×25 grid → `snapshot()`
// compares the grid with the previous snapshot; rows that scrolled off the top since then go to
// the history, so `lines()` is everything written so far, one entry per screen row, with a row
// whose last column is written joined to the next (a wrapped line).
//
// Scrolling is inferred, not signalled: the smallest shift k such that every row of the previous
// snapshot, moved up by k, is a prefix of the row now there (text on a row only grows between two
// snapshots unless it scrolls) and some text moved with it; when no shift fits (a row was
// rewritten in place, as iPXE's progress percentages are), nothing scrolled. A cleared screen
// therefore loses its rows (iPXE's scripts here clear nothing). Taking snapshots more often than the screen can
// scroll by 25 rows (every few milliseconds for an emulated BIOS) keeps the history whole.

export const SCREEN_ROWS = 25;
export const SCREEN_COLS = 80;

export class VgaTextScreen {
  private readonly grid: Uint8Array = new Uint8Array(SCREEN_ROWS * SCREEN_COLS).fill(0x20);
  private previous: string[] = new Array<string>(SCREEN_ROWS).fill('');
  /** Rows that scrolled off the top, oldest first (untrimmed, so wrapped rows stay full width). */
  private readonly history: string[] = [];

  /** v86's `screen-put-char` event. Characters outside the 80×25 grid are ignored. */
  putChar(row: number, col: number, code: number): void {
    if (row < 0 || row >= SCREEN_ROWS || col < 0 || col >= SCREEN_COLS) return;
    this.grid[row * SCREEN_COLS + col] = code & 0xff;
  }

  /** The screen now, one string of 80 characters per row. */
  rows(): string[] {
    const out: string[] = [];
    for (let r = 0; r < SCREEN_ROWS; r++) {
      let line = '';
      for (let c = 0; c < SCREEN_COLS; c++) {
        const ch = this.grid[r * SCREEN_COLS + c]!;
        line += ch < 0x20 || ch > 0x7e ? ' ' : String.fromCharCode(ch);
      }
      out.push(line);
    }
    return out;
  }

  /** Moves what scrolled off since the last snapshot into the history. */
  snapshot(): void {
    const now = this.rows();
    const k = scrollShift(this.previous, now);
    for (let i = 0; i < k; i++) this.history.push(this.previous[i]!);
    this.previous = now;
  }

  /** Everything written so far (after a snapshot), wrapped rows joined, trailing blanks trimmed. */
  lines(): string[] {
    this.snapshot();
    const rows = [...this.history, ...this.previous];
    const out: string[] = [];
    let carry = '';
    for (const row of rows) {
      if (row.length === SCREEN_COLS && row[SCREEN_COLS - 1] !== ' ') {
        carry += row;
        continue;
      }
      out.push((carry + row).trimEnd());
      carry = '';
    }
    if (carry !== '') out.push(carry.trimEnd());
    while (out.length > 0 && out[out.length - 1] === '') out.pop();
    return out;
  }
}

/** How many rows `now` scrolled up relative to `before` (0 when no shift explains it). */
export function scrollShift(before: readonly string[], now: readonly string[]): number {
  for (let k = 0; k < before.length; k++) {
    let fits = true;
    let carried = k === 0; // a shift must carry some text along, not only blank rows
    for (let i = 0; i + k < before.length && fits; i++) {
      const was = before[i + k]!.trimEnd();
      fits = now[i]!.startsWith(was);
      if (was !== '') carried = true;
    }
    if (fits && carried) return k;
  }
  return 0;
}
