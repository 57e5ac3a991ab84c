// `virtio-net relay` started in the test's own process (lib/cli/relay.ts's `relay()`, as the
// command runs it) on 127.0.0.1 and a free port, for tests that put clients or guests behind it.

import { parseNetdev } from '../../lib/cli/args.js';
import { relay } from '../../lib/cli/relay.js';
import type { RelayResult } from '../../lib/cli/relay.js';

export interface StartedRelay {
  /** The relay's WebSocket URL (`ws://127.0.0.1:PORT/`); empty if it ended before listening. */
  url: string;
  /** Ends the relay (aborts it) and resolves with its result; calling it again gives the same result. */
  stop: () => Promise<RelayResult>;
}

/** Starts `relay` with the backend `to` (a `--to` netdev spec); resolves once it listens (or has ended). */
export async function startRelay(to: string): Promise<StartedRelay> {
  const ctl = new AbortController();
  let url = '';
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const job = relay({ host: '127.0.0.1', port: 0, spec: parseNetdev(to), durationMs: null, json: true, signal: ctl.signal, onListening: (u) => ((url = u), listening()) }, () => undefined);
  await Promise.race([ready, job]);
  return {
    url,
    stop: async () => {
      ctl.abort();
      return job;
    },
  };
}
