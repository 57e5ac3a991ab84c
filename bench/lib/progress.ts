// The progress bar `npm run bench` draws on stderr while it runs (stdout keeps only the table).
// On a terminal it redraws one line; otherwise (CI logs) it prints one line per step.

export class ProgressBar {
  private done = 0;
  private readonly started = Date.now();
  private readonly tty: boolean;

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly width = 28,
  ) {
    this.tty = out.isTTY === true;
  }

  /** A step starts: shows it with the steps finished so far. */
  start(label: string): void {
    const elapsed = ((Date.now() - this.started) / 1000).toFixed(0);
    const filled = Math.round((this.done / Math.max(1, this.total)) * this.width);
    const bar = '#'.repeat(filled) + '.'.repeat(this.width - filled);
    const text = `[${bar}] ${this.done}/${this.total} ${elapsed}s ${label}`;
    if (this.tty) {
      const cols = this.out.columns ?? 100;
      this.out.write('\r' + text.slice(0, cols - 1).padEnd(cols - 1));
    } else {
      this.out.write(text + '\n');
    }
  }

  /** The current step finished. */
  step(): void {
    this.done = Math.min(this.total, this.done + 1);
  }

  /** Clears the line (terminal) or prints the total time. */
  finish(): void {
    const secs = ((Date.now() - this.started) / 1000).toFixed(1);
    if (this.tty) {
      const cols = this.out.columns ?? 100;
      this.out.write('\r' + `[${'#'.repeat(this.width)}] ${this.total}/${this.total} ${secs}s done`.padEnd(cols - 1) + '\n');
    } else {
      this.out.write(`done: ${this.total} steps in ${secs}s\n`);
    }
  }
}
