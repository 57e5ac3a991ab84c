// A byte-level QMP test client: sends exactly the bytes a test gives it (split, merged, broken) and
// hands back each line the server sends, parsed. Every wait has a timeout that names what it
// waited for.

import net from 'node:net';

export type Line = Record<string, unknown>;

export class RawQmpClient {
  private buffer = '';
  private readonly lines: Line[] = [];
  private waiter: (() => void) | undefined;
  /** Raw text of every line received (without the line end), in order. */
  readonly rawLines: string[] = [];
  /** Set once the server closed the connection. */
  ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buffer += text;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const raw = this.buffer.slice(0, nl).replace(/\r$/, '');
        this.buffer = this.buffer.slice(nl + 1);
        this.rawLines.push(raw);
        this.lines.push(JSON.parse(raw) as Line);
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((done) =>
      socket.on('close', () => {
        this.ended = true;
        this.wake();
        done();
      }),
    );
  }

  static connect(where: string | { host: string; port: number }): Promise<RawQmpClient> {
    return new Promise((done, failed) => {
      const socket = typeof where === 'string' ? net.connect(where) : net.connect(where.port, where.host);
      socket.once('error', failed);
      socket.once('connect', () => {
        socket.off('error', failed);
        done(new RawQmpClient(socket));
      });
    });
  }

  /** Connects, reads the greeting, and negotiates capabilities. */
  static async negotiated(where: string | { host: string; port: number }): Promise<RawQmpClient> {
    const c = await RawQmpClient.connect(where);
    await c.next('greeting');
    const reply = await c.execute('qmp_capabilities');
    if (!('return' in reply)) throw new Error(`negotiation failed: ${JSON.stringify(reply)}`);
    return c;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  send(bytes: string | Uint8Array): void {
    this.socket.write(bytes);
  }

  /** The next line from the server. */
  async next(what: string, timeoutMs = 5000): Promise<Line> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return line;
      if (this.ended) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((done) => {
        const t = setTimeout(done, left);
        this.waiter = () => {
          clearTimeout(t);
          done();
        };
      });
    }
  }

  /** The next line that is not an event (a reply). */
  async reply(what: string, timeoutMs = 5000): Promise<Line> {
    for (;;) {
      const line = await this.next(what, timeoutMs);
      if (!('event' in line)) return line;
      this.events.push(line);
    }
  }

  /** Events seen while waiting for replies. */
  readonly events: Line[] = [];

  /** Sends a command and waits for its reply. */
  async execute(command: string, args?: Record<string, unknown>, id?: unknown): Promise<Line> {
    const msg: Record<string, unknown> = { execute: command };
    if (args !== undefined) msg['arguments'] = args;
    if (id !== undefined) msg['id'] = id;
    this.send(JSON.stringify(msg));
    return this.reply(command);
  }

  /** Lines already received and not yet taken. */
  takeBuffered(): Line[] {
    return this.lines.splice(0);
  }

  close(): void {
    this.socket.destroy();
  }
}
