// Shell commands over the guest's serial console (no VIRTIO section: a 16550 UART as v86 emulates
// it, and busybox ash on ttyS0 started by scripts/guest/init).
//
// Protocol: once, `stty -echo` and an empty prompt, confirmed by a sync marker. Then per command:
// the command line, then `echo "@@VNM $? <n>@@"` on the next line. The output is everything the
// guest printed between the two; the marker carries the exit status. The literal `$?` of an echoed
// line can never match the marker pattern (it wants digits), so a stray echo cannot fool it.

/** Transcript kept for diagnostics and matching; older text is dropped. */
const TRANSCRIPT_LIMIT = 1 << 20;
/** Default time one scripted command may take (a step is ~1–1.5 s in v86). */
const DEFAULT_STEP_TIMEOUT_MS = 60_000;

export interface CommandResult {
  exitCode: number;
  output: string;
}

interface Waiter {
  pattern: RegExp;
  from: number;
  resolve: (m: RegExpExecArray, at: number) => void;
}

export class GuestConsole {
  private text = '';
  /** Characters dropped from the front of `text` (keeps positions absolute). */
  private dropped = 0;
  private readonly waiters = new Set<Waiter>();
  private prepared: Promise<void> | null = null;
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly decoder = new TextDecoder();

  constructor(private readonly send: (text: string) => void) {}

  /** One byte from the guest's serial output. */
  feed(byte: number): void {
    if (byte === 0x0d) return; // the tty's \r\n becomes \n
    this.text += this.decoder.decode(Uint8Array.of(byte), { stream: true });
    if (this.text.length > TRANSCRIPT_LIMIT) {
      const cut = this.text.length - TRANSCRIPT_LIMIT / 2;
      this.text = this.text.slice(cut);
      this.dropped += cut;
    }
    if ((byte === 0x0a || byte === 0x40) /* a line or a marker ends */ && this.waiters.size > 0) this.check();
  }

  /** Everything the guest printed (the last megabyte at most). */
  transcript(): string {
    return this.text;
  }

  /** Resolves when `marker` appears in output printed after this call (or before, if `fromStart`). */
  waitFor(marker: string, timeoutMs: number, fromStart = true): Promise<void> {
    const pattern = new RegExp(marker.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    return this.waitPattern(pattern, fromStart ? 0 : this.position(), timeoutMs).then(() => undefined);
  }

  /** Runs `command` in the guest shell (commands run one at a time, in call order). */
  run(command: string, timeoutMs = DEFAULT_STEP_TIMEOUT_MS): Promise<CommandResult> {
    if (typeof command !== 'string' || command.includes('\n')) {
      throw new TypeError(`GuestConsole.run: command must be one line of shell, got ${JSON.stringify(command)}`);
    }
    const next = this.queue.then(() => this.runNow(command, timeoutMs));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(command: string, timeoutMs: number): Promise<CommandResult> {
    await this.prepare(timeoutMs);
    const id = this.nextId++;
    const start = this.position();
    this.send(`${command}\necho "@@VNM $? ${id}@@"\n`);
    const { match, at } = await this.waitPattern(new RegExp(`@@VNM (\\d+) ${id}@@\\n?`), start, timeoutMs, command);
    const output = this.slice(start, at);
    return { exitCode: Number(match[1]), output: output.replace(/^\n+/, '') };
  }

  private prepare(timeoutMs: number): Promise<void> {
    if (this.prepared === null) {
      const start = this.position();
      this.send('stty -echo; PS1=""; PS2=""; export PS1 PS2; echo "@@VNM-SYNC""@@"\n');
      // The quotes split the marker in the echoed command line, so only the output matches.
      this.prepared = this.waitPattern(/@@VNM-SYNC@@\n/, start, timeoutMs, 'console setup').then(() => undefined);
    }
    return this.prepared;
  }

  private position(): number {
    return this.dropped + this.text.length;
  }

  private slice(from: number, to: number): string {
    return this.text.slice(Math.max(0, from - this.dropped), Math.max(0, to - this.dropped));
  }

  private waitPattern(pattern: RegExp, from: number, timeoutMs: number, what = pattern.source): Promise<{ match: RegExpExecArray; at: number }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; console tail: ${JSON.stringify(this.text.slice(-300))}`));
      }, timeoutMs);
      const waiter: Waiter = {
        pattern,
        from,
        resolve: (m, at) => {
          clearTimeout(timer);
          resolve({ match: m, at });
        },
      };
      this.waiters.add(waiter);
      this.check();
    });
  }

  private check(): void {
    for (const w of this.waiters) {
      const m = w.pattern.exec(this.text.slice(Math.max(0, w.from - this.dropped)));
      if (m === null) continue;
      this.waiters.delete(w);
      w.resolve(m, Math.max(w.from, this.dropped) + m.index);
    }
  }
}
