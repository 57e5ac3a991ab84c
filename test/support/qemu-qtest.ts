// The qtest text protocol QEMU speaks on `-qtest stdio` (QEMU docs/devel/qtest.rst): one request
// line in, one reply line out, in order. Replies are `OK`, `OK <value>` or `FAIL <reason>`;
// asynchronous `IRQ raise|lower N` lines (only after irq_intercept_*) are not replies and are
// skipped. Port and MMIO accesses are the accesses a vCPU would make; `read`/`write` reach guest
// RAM the way DMA does. This is what lets the oracle play guest driver without booting a guest.

import type { Readable, Writable } from 'node:stream';

/** Why a qtest request did not get an `OK`. */
export type QtestErrorCode = 'qtest.timeout' | 'qtest.fail' | 'qtest.closed';

export class QtestError extends Error {
  constructor(
    readonly code: QtestErrorCode,
    /** The request line that failed. */
    readonly request: string,
    detail: string,
  ) {
    super(`qtest '${request}': ${detail}`);
    this.name = 'QtestError';
  }
}

interface Pending {
  line: string;
  resolve: (value: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Largest chunk of guest RAM moved in one `read`/`write` line (keeps lines a sane length). */
const MAX_MEM_CHUNK = 4096;

export interface QtestChannelOptions {
  /** Per-request reply timeout. */
  timeoutMs: number;
  /** Extra text for error messages (the oracle passes QEMU's captured stderr). */
  context: () => string;
}

export class QtestChannel {
  private readonly pending: Pending[] = [];
  private buffered = '';
  private closedReason: string | null = null;

  constructor(
    private readonly input: Writable,
    output: Readable,
    private readonly options: QtestChannelOptions,
  ) {
    output.setEncoding('latin1');
    output.on('data', (chunk: string) => this.onData(chunk));
    output.on('end', () => this.close('QEMU closed its qtest output'));
    input.on('error', (err: Error) => this.close(`writing to QEMU failed: ${err.message}`));
  }

  /** True once the channel can carry no more requests. */
  get closed(): boolean {
    return this.closedReason !== null;
  }

  /** Sends one request line; resolves with what follows `OK` (trimmed, possibly empty). */
  request(line: string): Promise<string> {
    if (this.closedReason !== null) {
      return Promise.reject(new QtestError('qtest.closed', line, this.withContext(this.closedReason)));
    }
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Replies are matched by order: after a lost reply nothing that follows can be trusted.
        this.close(`no reply within ${this.options.timeoutMs} ms to '${line}'`, 'qtest.timeout');
      }, this.options.timeoutMs);
      this.pending.push({ line, resolve, reject, timer });
      this.input.write(`${line}\n`);
    });
  }

  /** Rejects every outstanding request; later requests fail at once. */
  close(reason: string, code: QtestErrorCode = 'qtest.closed'): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(new QtestError(code, p.line, this.withContext(reason)));
    }
  }

  async outb(port: number, value: number): Promise<void> {
    await this.request(`outb ${hex(port)} ${hex(value)}`);
  }
  async outw(port: number, value: number): Promise<void> {
    await this.request(`outw ${hex(port)} ${hex(value)}`);
  }
  async outl(port: number, value: number): Promise<void> {
    await this.request(`outl ${hex(port)} ${hex(value)}`);
  }
  async inb(port: number): Promise<number> {
    return parseValue(`inb ${hex(port)}`, await this.request(`inb ${hex(port)}`));
  }
  async inw(port: number): Promise<number> {
    return parseValue(`inw ${hex(port)}`, await this.request(`inw ${hex(port)}`));
  }
  async inl(port: number): Promise<number> {
    return parseValue(`inl ${hex(port)}`, await this.request(`inl ${hex(port)}`));
  }

  /** MMIO store of 1, 2 or 4 bytes at a guest-physical address. */
  async mmioWrite(address: number, width: 1 | 2 | 4, value: number): Promise<void> {
    await this.request(`${WRITE_OP[width]} ${hex(address)} ${hex(value)}`);
  }
  /** MMIO load of 1, 2 or 4 bytes at a guest-physical address. */
  async mmioRead(address: number, width: 1 | 2 | 4): Promise<number> {
    const line = `${READ_OP[width]} ${hex(address)}`;
    return parseValue(line, await this.request(line));
  }

  /** Copies bytes into guest RAM (as DMA would). */
  async memWrite(address: number, bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length; at += MAX_MEM_CHUNK) {
      const chunk = bytes.subarray(at, Math.min(bytes.length, at + MAX_MEM_CHUNK));
      await this.request(`write ${hex(address + at)} ${chunk.length} 0x${Buffer.from(chunk).toString('hex')}`);
    }
  }

  /** Copies `length` bytes out of guest RAM. */
  async memRead(address: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    for (let at = 0; at < length; at += MAX_MEM_CHUNK) {
      const n = Math.min(MAX_MEM_CHUNK, length - at);
      const line = `read ${hex(address + at)} ${n}`;
      const reply = await this.request(line);
      const digits = reply.startsWith('0x') ? reply.slice(2) : reply;
      if (digits.length !== n * 2 || !/^[0-9a-fA-F]*$/.test(digits)) {
        throw new QtestError('qtest.fail', line, this.withContext(`unexpected reply '${reply}'`));
      }
      out.set(Buffer.from(digits, 'hex'), at);
    }
    return out;
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl).replace(/\r$/, '');
      this.buffered = this.buffered.slice(nl + 1);
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    if (line.startsWith('IRQ ') || line === '') return; // asynchronous notice, not a reply
    const p = this.pending.shift();
    if (p === undefined) {
      this.close(`unsolicited line from QEMU: '${line}'`);
      return;
    }
    clearTimeout(p.timer);
    if (line === 'OK' || line.startsWith('OK ')) {
      p.resolve(line.slice(2).trim());
    } else {
      p.reject(new QtestError('qtest.fail', p.line, this.withContext(`QEMU replied '${line}'`)));
    }
  }

  private withContext(detail: string): string {
    const extra = this.options.context();
    return extra === '' ? detail : `${detail}\n${extra}`;
  }
}

const WRITE_OP = { 1: 'writeb', 2: 'writew', 4: 'writel' } as const;
const READ_OP = { 1: 'readb', 2: 'readw', 4: 'readl' } as const;

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function parseValue(request: string, reply: string): number {
  if (!/^0x[0-9a-fA-F]+$/.test(reply)) {
    throw new QtestError('qtest.fail', request, `unexpected reply '${reply}'`);
  }
  return Number.parseInt(reply.slice(2), 16);
}
