// The named transition table of filter-rewriter's per-connection TCP state machine (QEMU
// net/filter-rewriter.c, commit 30656b09 "rewrite tcp packet to keep secondary connection";
// TCP states after RFC 9293 §3.3.2). The rewriter runs on the SECONDARY: the "client" is the
// machine outside, the "guest" is the secondary guest. Its job is one number per connection:
//   offset = secondary_isn - primary_isn
// learnt during the handshake, then client → guest `ack += offset`, guest → client `seq -= offset`.
//
// Guest is the server: client SYN → guest SYN/ACK (record the guest's ISN) → the client's first
// ACK carries primary_isn + 1 in its ack field: offset = guest_isn - (ack - 1).
// Guest is the client: guest SYN (record its ISN) → the client's SYN/ACK acks primary_isn + 1:
// the same formula. Both FINs and the last ACK, or an RST, close and forget the connection.

/** What a packet means for a connection (direction + flags; RST > SYN > FIN > ACK). */
export type RewriterEvent =
  | 'client-syn'
  | 'client-syn-ack'
  | 'client-fin'
  | 'client-ack'
  | 'guest-syn'
  | 'guest-syn-ack'
  | 'guest-fin'
  | 'guest-ack'
  | 'rst';

export type RewriterState =
  /** Not seen yet (only a SYN creates a tracked connection). */
  | 'new'
  /** Client SYN seen; waiting for the guest's SYN/ACK. */
  | 'syn-received'
  /** The guest's SYN/ACK seen, its ISN recorded; waiting for the client's first ACK. */
  | 'syn-ack-recorded'
  /** The guest's SYN seen (guest is the client), its ISN recorded. */
  | 'syn-sent'
  /** Offset known: rewriting. */
  | 'established'
  /** The client sent FIN. */
  | 'client-closing'
  /** The guest sent FIN. */
  | 'guest-closing'
  /** Both sent FIN; the next ACK of the second FIN closes. */
  | 'last-ack'
  /** Forgotten. */
  | 'closed';

export type RewriterAction =
  | 'none'
  /** Keep the guest's sequence number as its ISN. */
  | 'record-guest-isn'
  /** offset = guest ISN - (ack - 1), from the client's ACK of the primary's SYN. */
  | 'compute-offset'
  | 'record-client-fin'
  | 'record-guest-fin'
  /** Close when this ACK acknowledges the other side's FIN. */
  | 'close-on-final-ack'
  | 'forget';

export interface Transition {
  readonly next: RewriterState;
  readonly action: RewriterAction;
}

const t = (next: RewriterState, action: RewriterAction = 'none'): Transition => ({ next, action });

/** `state/event` → transition. A pair not listed leaves the connection as it is. */
export const REWRITER_TRANSITIONS: ReadonlyMap<string, Transition> = new Map<string, Transition>([
  ['new/client-syn', t('syn-received')],
  ['new/guest-syn', t('syn-sent', 'record-guest-isn')],
  ['syn-received/guest-syn-ack', t('syn-ack-recorded', 'record-guest-isn')],
  ['syn-ack-recorded/guest-syn-ack', t('syn-ack-recorded', 'record-guest-isn')], // retransmitted SYN/ACK
  ['syn-ack-recorded/client-ack', t('established', 'compute-offset')],
  ['syn-ack-recorded/client-fin', t('client-closing', 'compute-offset')], // ACK of the SYN/ACK carried a FIN
  ['syn-sent/guest-syn', t('syn-sent', 'record-guest-isn')], // retransmitted SYN
  ['syn-sent/client-syn-ack', t('established', 'compute-offset')],
  ['established/client-fin', t('client-closing', 'record-client-fin')],
  ['established/guest-fin', t('guest-closing', 'record-guest-fin')],
  ['client-closing/guest-fin', t('last-ack', 'record-guest-fin')],
  ['client-closing/client-fin', t('client-closing', 'record-client-fin')],
  ['guest-closing/client-fin', t('last-ack', 'record-client-fin')],
  ['guest-closing/guest-fin', t('guest-closing', 'record-guest-fin')],
  ['last-ack/client-ack', t('last-ack', 'close-on-final-ack')],
  ['last-ack/guest-ack', t('last-ack', 'close-on-final-ack')],
  ...(['new', 'syn-received', 'syn-ack-recorded', 'syn-sent', 'established', 'client-closing', 'guest-closing', 'last-ack'] as const).map(
    (s): [string, Transition] => [`${s}/rst`, t('closed', 'forget')],
  ),
]);

/** Looks a transition up without building a string per packet. */
const TABLE: Readonly<Record<RewriterState, Partial<Record<RewriterEvent, Transition>>>> = (() => {
  const out: Record<string, Partial<Record<RewriterEvent, Transition>>> = {};
  for (const [key, tr] of REWRITER_TRANSITIONS) {
    const [state, event] = key.split('/') as [RewriterState, RewriterEvent];
    (out[state] ??= {})[event] = tr;
  }
  return out as Record<RewriterState, Partial<Record<RewriterEvent, Transition>>>;
})();

export function transition(state: RewriterState, event: RewriterEvent): Transition | undefined {
  return TABLE[state]?.[event];
}

/** States in which the offset is known and packets are rewritten. */
export function rewrites(state: RewriterState): boolean {
  return state === 'established' || state === 'client-closing' || state === 'guest-closing' || state === 'last-ack';
}
