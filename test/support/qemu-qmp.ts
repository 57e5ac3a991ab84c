// A minimal QMP client (QEMU docs/interop/qmp-spec.rst) for the oracle: greeting, capabilities
// negotiation, `execute` with ids, and every asynchronous event kept in arrival order. QMP is
// one JSON object per line over the socket, and the server answers commands in the order they
// were sent, after any event it emitted earlier: a round trip is therefore a barrier for events.

import net from 'node:net';

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

export type QmpErrorCode = 'qmp.timeout' | 'qmp.closed' | 'qmp.error-reply' | 'qmp.protocol';

export class QmpError extends Error {
  constructor(
    readonly code: QmpErrorCode,
    /** The command (or connection step) that failed. */
    readonly request: string,
    detail: string,
    /** QEMU's error class for `qmp.error-reply` (e.g. 'GenericError', 'CommandNotFound'). */
    readonly errorClass?: string,
  ) {
    super(`QMP ${request}: ${detail}`);
    this.name = 'QmpError';
  }
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface QmpClientOptions {
  /** Per-command reply timeout, also the limit for connecting and the greeting. */
  timeoutMs: number;
  /** Extra text for error messages (the oracle passes QEMU's captured stderr). */
  context: () => string;
}

export class QmpClient {
  /** Every event received so far, oldest first. */
  readonly events: QmpEvent[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffered = '';
  private closedReason: string | null = null;
  private greeting: ((g: unknown) => void) | null = null;

  private constructor(
    private readonly socket: net.Socket,
    private readonly options: QmpClientOptions,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.fail('the QMP socket closed'));
    socket.on('error', (err: Error) => this.fail(`QMP socket error: ${err.message}`));
  }

  /** Connects, waits for the greeting and leaves capabilities-negotiation mode. */
  static async connect(path: string, options: QmpClientOptions): Promise<QmpClient> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new QmpError('qmp.timeout', `connect ${path}`, withContext(options, `no connection within ${options.timeoutMs} ms`)));
      }, options.timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(new QmpError('qmp.closed', `connect ${path}`, withContext(options, err.message)));
      });
    });
    const client = new QmpClient(socket, options);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.close();
        reject(new QmpError('qmp.timeout', 'greeting', withContext(options, `no greeting within ${options.timeoutMs} ms`)));
      }, options.timeoutMs);
      client.greeting = (g) => {
        clearTimeout(timer);
        if (typeof g === 'object' && g !== null && 'QMP' in g) resolve();
        else reject(new QmpError('qmp.protocol', 'greeting', `expected a greeting, got ${JSON.stringify(g)}`));
      };
    });
    await client.execute('qmp_capabilities');
    return client;
  }

  /** Runs one command; resolves with its `return` value, rejects with `QmpError`. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closedReason !== null) {
      return Promise.reject(new QmpError('qmp.closed', command, withContext(this.options, this.closedReason)));
    }
    const id = this.nextId++;
    const message = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpError('qmp.timeout', command, withContext(this.options, `no reply within ${this.options.timeoutMs} ms`)));
      }, this.options.timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  /** Closes the connection; outstanding commands reject. */
  close(): void {
    this.fail('closed by the oracle');
    this.socket.destroy();
  }

  private fail(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new QmpError('qmp.closed', p.command, withContext(this.options, reason)));
    }
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl).trim();
      this.buffered = this.buffered.slice(nl + 1);
      if (line !== '') this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.fail(`QEMU sent a line that is not JSON: ${line.slice(0, 200)}`);
      return;
    }
    if (this.greeting !== null) {
      const g = this.greeting;
      this.greeting = null;
      g(msg);
      return;
    }
    if (typeof msg.event === 'string') {
      this.events.push({
        event: msg.event,
        data: (msg.data ?? {}) as Record<string, unknown>,
        timestamp: msg.timestamp as QmpEvent['timestamp'],
      });
      return;
    }
    const id = msg.id;
    const p = typeof id === 'number' ? this.pending.get(id) : undefined;
    if (p === undefined || typeof id !== 'number') return; // a reply nobody waits for (timed out)
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ('return' in msg) {
      p.resolve(msg.return);
    } else {
      const err = (msg.error ?? {}) as { class?: string; desc?: string };
      p.reject(new QmpError('qmp.error-reply', p.command, `${err.class ?? '?'}: ${err.desc ?? JSON.stringify(msg)}`, err.class));
    }
  }
}

function withContext(options: QmpClientOptions, detail: string): string {
  const extra = options.context();
  return extra === '' ? detail : `${detail}\n${extra}`;
}
