// virtqueue/: guest memory and the split virtqueue of VIRTIO 1.2 §2.7, transport- and
// device-agnostic. See README.md for the data flow.

export { GuestMemory, GuestMemoryError } from './guest-memory.js';
export type { GuestMemoryAccess, GuestMemoryRegion, WriteObserver } from './guest-memory.js';

export { SplitQueue, QUEUE_EMPTY, MAX_QUEUE_SIZE, newQueueConfig } from './split-queue.js';
export type { QueueConfig, QueueFeatures, QueueEmpty, QueueViolation } from './split-queue.js';

export { DescriptorChain } from './descriptor-chain.js';
export { ChainReader } from './chain-reader.js';
export { ChainWriter } from './chain-writer.js';

export { describeQueueError, queueErrorSection, QUEUE_ERROR_SECTIONS } from './queue-errors.js';
export type { ChainError, QueueActivationError, QueueErrorCode, QueueRing } from './queue-errors.js';

export * from './ring-layout.js';
