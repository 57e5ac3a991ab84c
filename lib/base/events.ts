// A small typed event emitter with no `node:` import, for the device core, the NIC and the node-free
// netdevs (MemoryNetdev, WebSocketNetdev): the browser build takes these files unchanged.
//
// The events map names each event and its one payload: `TypedEmitter<{ status: number }>` has
// `on('status', (s: number) => …)`. Semantics follow Node's EventEmitter where code relies on them:
// listeners run synchronously in the order added; adding the same function twice calls it twice;
// `off` removes the most recently added match; `once` listeners are removed before they run; a
// listener added or removed during an emit does not change that emit's list.
//
// One deliberate difference: a listener that throws does not throw into the emitter. The device
// emits from inside a guest register access, and an embedder's bug there must neither stall the
// device nor reach the hypervisor as an exception; the remaining listeners still run and the error
// goes to `onListenerError` (default: re-thrown on a microtask, as the DOM's EventTarget reports
// listener errors — it surfaces as an uncaught exception, with its stack, outside the device).

/** Event name → payload type (an interface or a type literal; every key a string). */
export type EventMap = object;

/** A listener for event `K` of `E`. */
export type Listener<E extends EventMap, K extends keyof E> = (payload: E[K]) => void;

/** What emits events of `E` (the side a producer such as the device core needs). */
export interface EventSink<E extends EventMap> {
  emit<K extends keyof E & string>(event: K, payload: E[K]): boolean;
}

/** Called with an error a listener threw, and the event it was listening to. */
export type ListenerErrorHandler = (error: unknown, event: string) => void;

/** The default: report the error outside the emitter's caller, on a microtask. */
export const rethrowLater: ListenerErrorHandler = (error) => {
  queueMicrotask(() => {
    throw error;
  });
};

/** One registration; `once` wrappers keep the original so `off(original)` finds them. */
interface Entry {
  readonly fn: (payload: never) => void;
  readonly once: boolean;
}

const NO_ENTRIES: readonly Entry[] = Object.freeze([]);

export class TypedEmitter<E extends EventMap> implements EventSink<E> {
  /** Per event, an array replaced (never mutated) on change: an emit in progress keeps its snapshot. */
  private readonly listeners = new Map<string, readonly Entry[]>();
  private readonly onListenerError: ListenerErrorHandler;

  constructor(options: { onListenerError?: ListenerErrorHandler } = {}) {
    this.onListenerError = options.onListenerError ?? rethrowLater;
  }

  on<K extends keyof E & string>(event: K, listener: Listener<E, K>): this {
    return this.add(event, listener, false);
  }

  /** Like `on`, removed before its first call. */
  once<K extends keyof E & string>(event: K, listener: Listener<E, K>): this {
    return this.add(event, listener, true);
  }

  /** Removes the most recently added registration of `listener` for `event` (none: no-op). */
  off<K extends keyof E & string>(event: K, listener: Listener<E, K>): this {
    const list = this.listeners.get(event);
    if (list === undefined) return this;
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i]!.fn === listener) {
        this.replace(event, [...list.slice(0, i), ...list.slice(i + 1)]);
        break;
      }
    }
    return this;
  }

  /** Removes every listener of `event`, or of every event. */
  removeAllListeners(event?: keyof E & string): this {
    if (event === undefined) {
      const events = [...this.listeners.keys()];
      this.listeners.clear();
      for (const e of events) this.listenersChanged(e);
    } else if (this.listeners.delete(event)) this.listenersChanged(event);
    return this;
  }

  listenerCount(event: keyof E & string): number {
    return (this.listeners.get(event) ?? NO_ENTRIES).length;
  }

  /** Calls the listeners of `event` with `payload`; true if there were any. Never throws. */
  emit<K extends keyof E & string>(event: K, payload: E[K]): boolean {
    const list = this.listeners.get(event);
    if (list === undefined) return false;
    for (let i = 0; i < list.length; i++) {
      const entry = list[i]!;
      if (entry.once) this.removeEntry(event, entry);
      try {
        (entry.fn as (p: E[K]) => void)(payload);
      } catch (e) {
        this.reportListenerError(e, event);
      }
    }
    return true;
  }

  /**
   * Like `emit`, with a second argument after the payload, for a subclass whose listeners take two
   * (MemoryNetdev's 'transmit': the frame and its virtio-net header). Same order and error rule.
   */
  protected emitWith<K extends keyof E & string>(event: K, payload: E[K], second: unknown): boolean {
    const list = this.listeners.get(event);
    if (list === undefined) return false;
    for (let i = 0; i < list.length; i++) {
      const entry = list[i]!;
      if (entry.once) this.removeEntry(event, entry);
      try {
        (entry.fn as unknown as (p: E[K], s: unknown) => void)(payload, second);
      } catch (e) {
        this.reportListenerError(e, event);
      }
    }
    return true;
  }

  private add(event: string, listener: (payload: never) => void, once: boolean): this {
    if (typeof listener !== 'function') throw new TypeError(`${event}: listener must be a function, got ${typeof listener}`);
    this.replace(event, [...(this.listeners.get(event) ?? NO_ENTRIES), { fn: listener, once }]);
    return this;
  }

  private removeEntry(event: string, entry: Entry): void {
    const list = this.listeners.get(event);
    if (list === undefined) return;
    const i = list.indexOf(entry);
    if (i >= 0) this.replace(event, [...list.slice(0, i), ...list.slice(i + 1)]);
  }

  private replace(event: string, list: readonly Entry[]): void {
    if (list.length === 0) this.listeners.delete(event);
    else this.listeners.set(event, list);
    this.listenersChanged(event);
  }

  /**
   * Called after the listeners of `event` changed (added, removed, a `once` listener gone, cleared):
   * a subclass that tests "anyone listening?" per frame keeps a field from here instead.
   */
  protected listenersChanged(_event: string): void {}

  private reportListenerError(error: unknown, event: string): void {
    try {
      this.onListenerError(error, event);
    } catch {
      // A handler that throws is the embedder's second bug; the emitter still never throws.
    }
  }
}
