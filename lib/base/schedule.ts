// "Later, on a new turn": the one place device code defers work (a transmit burst that did not
// finish yields to the event loop and goes on from here). No `node:` import.
//
// Node: `setImmediate` (after pending I/O callbacks, so the backends and the hypervisor get a turn
// between bursts). Elsewhere (browsers, workers): a MessageChannel message, which is also a new
// macrotask; failing that, a microtask (it runs before anything else — still bounded work per call,
// and only a host with neither falls back to it).

/** Runs `fn` on a later turn. */
export type Defer = (fn: () => void) => void;

interface MessagePortLike {
  onmessage: ((ev: unknown) => void) | null;
  postMessage(message: unknown): void;
  /** Node only: a port with a handler otherwise keeps the process alive. */
  unref?(): void;
}

interface SchedulerGlobals {
  setImmediate?: (fn: () => void) => unknown;
  MessageChannel?: new () => { port1: MessagePortLike; port2: MessagePortLike };
  queueMicrotask: (fn: () => void) => void;
}

/** Picks the best way to defer in `g` (the global object by default; tests pass their own). */
export function pickDefer(g: SchedulerGlobals = globalThis as unknown as SchedulerGlobals): Defer {
  const immediate = g.setImmediate;
  if (typeof immediate === 'function') return (fn) => void immediate(fn);
  const Channel = g.MessageChannel;
  if (typeof Channel === 'function') {
    // One channel for all: callbacks run in order, one message each.
    const queue: (() => void)[] = [];
    const channel = new Channel();
    channel.port1.onmessage = () => {
      const fn = queue.shift();
      if (fn !== undefined) fn();
    };
    channel.port1.unref?.();
    return (fn) => {
      queue.push(fn);
      channel.port2.postMessage(0);
    };
  }
  const micro = g.queueMicrotask;
  return (fn) => micro(fn);
}

/** Runs `fn` on a later turn of the host's event loop (see the file comment). */
export const defer: Defer = pickDefer();

/**
 * Timers for device code (notification coalescing): the host's `setTimeout` / `clearTimeout` and
 * clock, looked up on every call rather than captured at load, so a fake clock installed later
 * (sinon's, in tests) drives them. A pending timer does not keep a Node process alive.
 */
export interface Timers {
  /** Runs `fn` once after `ms` milliseconds; the handle is for `clear`. */
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
  /** Milliseconds on a clock that only moves forward in a run (Date.now here). */
  now(): number;
}

interface TimerGlobals {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  Date: { now(): number };
}

/** The host's timers (see `Timers`). */
export const hostTimers: Timers = {
  set(fn, ms) {
    const handle = (globalThis as unknown as TimerGlobals).setTimeout(fn, ms);
    (handle as { unref?: () => void } | null)?.unref?.();
    return handle;
  },
  clear(handle) {
    (globalThis as unknown as TimerGlobals).clearTimeout(handle);
  },
  now() {
    return (globalThis as unknown as TimerGlobals).Date.now();
  },
};
