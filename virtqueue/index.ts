// virtqueue/: guest memory and the split (VIRTIO 1.2 §2.7) and packed (§2.8) virtqueues,
// transport- and device-agnostic. See README.md for the data flow.

export { GuestMemory, GuestMemoryError } from './guest-memory.js';
export type { GuestMemoryAccess, GuestMemoryRegion, GuestRegion, WriteObserver } from './guest-memory.js';

export { QUEUE_EMPTY, newQueueConfig } from './virtqueue.js';
export type { QueueConfig, QueueFeatures, QueueEmpty, QueueViolation, Virtqueue } from './virtqueue.js';
export { SplitQueue, MAX_QUEUE_SIZE } from './split-queue.js';
export { PackedQueue } from './packed-queue.js';
export type { PackedQueueRunState } from './packed-queue.js';
export { activateQueue, isVirtqueue } from './activate-queue.js';

export { DescriptorChain } from './descriptor-chain.js';
export { ChainReader } from './chain-reader.js';
export { ChainWriter } from './chain-writer.js';

export { describeQueueError, queueErrorSection, QUEUE_ERROR_SECTIONS } from './queue-errors.js';
export type { ChainError, PackedChainError, PackedActivationError, QueueActivationError, QueueErrorCode, QueueRing, SplitChainError } from './queue-errors.js';

export * from './ring-layout.js';
export * from './packed-layout.js';
