// lib/filters: net filters on a netdev (QEMU netfilter objects) — the public surface of this folder.
export * from './filter.js';
export { FilterChain, type FilterPosition, type FilterChainStats } from './filter-chain.js';
export { MirrorFilter, type MirrorFilterOptions, type MirrorStats } from './mirror.js';
export { RedirectorFilter, type RedirectorFilterOptions, type RedirectorStats } from './redirector.js';
export { RewriterFilter, type RewriterFilterOptions, type RewriterStats, type RewriterConnectionInfo } from './rewriter.js';
export { REWRITER_TRANSITIONS, type RewriterEvent, type RewriterState, type RewriterAction, type Transition } from './rewriter-states.js';
export { DumpFilter, type DumpFilterOptions } from './dump.js';
