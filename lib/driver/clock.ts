// The time source of the guest-side timers (neighbour resolution, pings): the global timers by
// default, looked up at each call so sinon's fake timers drive them in tests; or any object with
// the same three methods.

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Date.now / setTimeout / clearTimeout of the global object, read when called. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};
