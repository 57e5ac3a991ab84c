// filter-dump (QEMU net/dump.c, "-object filter-dump,id=,netdev=,file=,maxlen="): writes every
// frame the filter sees to a capture file and lets it go on. Formats: classic pcap (libpcap
// format: 24-byte global header, 16-byte record headers, LINKTYPE_ETHERNET) or pcapng
// (draft-ietf-opsawg-pcapng: SHB, one IDB, one EPB per frame), both little-endian, microsecond
// timestamps. Frames longer than `maxlen` are cut to `maxlen` (the record keeps the real length).
// The virtio-net header is not written (QEMU skips it too). Writes are synchronous, from one
// preallocated header buffer (a debugging filter: QEMU writes synchronously as well).
//
// The file is created 0600, never through a symbolic link (O_NOFOLLOW), and never over an
// existing file unless `append` asks for it (O_EXCL otherwise): a capture holds guest traffic, and
// a path a local user could pre-create or point elsewhere must not redirect it. QEMU truncates
// (O_TRUNC, 0644); we differ on purpose. Appending adds records to a pcap file of the same format
// (its header is kept) or a new section to a pcapng file (pcapng allows several).

import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, writeSync } from 'node:fs';
import { checkFilterOptions, PASS, type Direction, type FilterQueue, type NetFilter, type Verdict } from './filter.js';

export interface DumpFilterOptions {
  id: string;
  queue?: FilterQueue;
  status?: boolean;
  /** Capture file: created (0600); an existing file or a symbolic link is refused unless `append`. */
  file: string;
  /** Add to an existing capture of the same format instead of refusing it (default false). */
  append?: boolean;
  /** Bytes kept per frame (default 65536, QEMU's default). */
  maxlen?: number;
  format?: 'pcap' | 'pcapng';
}

const PCAP_MAGIC = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;
export const DEFAULT_MAXLEN = 65536;
/** pcapng block types. */
const SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

export class DumpFilter implements NetFilter {
  readonly id: string;
  readonly queue: FilterQueue;
  status: boolean;
  readonly file: string;
  readonly maxlen: number;
  readonly format: 'pcap' | 'pcapng';
  private fd: number | undefined;
  private readonly head = Buffer.alloc(28);
  private readonly tail = Buffer.alloc(8);
  private frames = 0;
  private writeErrors = 0;

  constructor(options: DumpFilterOptions) {
    const base = checkFilterOptions('DumpFilter', options);
    const { file, maxlen = DEFAULT_MAXLEN, format = 'pcap', append = false } = options;
    if (typeof file !== 'string' || file === '') throw new TypeError(`DumpFilter ${base.id}: options.file must be a non-empty path`);
    if (!Number.isSafeInteger(maxlen) || maxlen < 1 || maxlen > 0x7fffffff) {
      throw new TypeError(`DumpFilter ${base.id}: options.maxlen must be an integer from 1 to 2147483647, got ${String(maxlen)}`);
    }
    if (format !== 'pcap' && format !== 'pcapng') throw new TypeError(`DumpFilter ${base.id}: options.format must be 'pcap' or 'pcapng', got ${String(format)}`);
    if (typeof append !== 'boolean') throw new TypeError(`DumpFilter ${base.id}: options.append must be a boolean, got ${String(append)}`);
    this.id = base.id;
    this.queue = base.queue;
    this.status = base.status;
    this.file = file;
    this.maxlen = maxlen;
    this.format = format;
    const fd = openCapture(base.id, file, append);
    try {
      // Appending to a pcap file keeps its header (one per file); pcapng gets a new section.
      const continuing = appendsToCapture(base.id, file, fd, format);
      if (format === 'pcapng' || !continuing) writeSync(fd, format === 'pcap' ? this.pcapHeader() : this.pcapngHeader());
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    this.fd = fd;
  }

  process(_direction: Direction, frame: Uint8Array, _vnetHeader: Uint8Array | undefined): Verdict {
    const fd = this.fd;
    if (fd === undefined) return PASS;
    const cap = Math.min(frame.length, this.maxlen);
    const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    const h = this.head;
    try {
      if (this.format === 'pcap') {
        h.writeUInt32LE(Math.floor(us / 1e6), 0);
        h.writeUInt32LE(us % 1e6, 4);
        h.writeUInt32LE(cap, 8);
        h.writeUInt32LE(frame.length, 12);
        writeSync(fd, h, 0, 16);
        writeSync(fd, frame, 0, cap);
      } else {
        const pad = (4 - (cap % 4)) % 4;
        const total = 28 + cap + pad + 4;
        h.writeUInt32LE(EPB, 0);
        h.writeUInt32LE(total, 4);
        h.writeUInt32LE(0, 8); // interface 0
        h.writeUInt32LE(Math.floor(us / 2 ** 32), 12);
        h.writeUInt32LE(us % 2 ** 32, 16);
        h.writeUInt32LE(cap, 20);
        h.writeUInt32LE(frame.length, 24);
        writeSync(fd, h, 0, 28);
        writeSync(fd, frame, 0, cap);
        const t = this.tail;
        t.fill(0, 0, 4);
        t.writeUInt32LE(total, 4);
        writeSync(fd, t, 4 - pad, pad + 4);
      }
      this.frames++;
    } catch {
      this.writeErrors++; // a full disk must not stop the datapath
    }
    return PASS;
  }

  stats(): { frames: number; writeErrors: number } {
    return { frames: this.frames, writeErrors: this.writeErrors };
  }

  close(): Promise<void> {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
    return Promise.resolve();
  }

  private pcapHeader(): Buffer {
    const b = Buffer.alloc(24);
    b.writeUInt32LE(PCAP_MAGIC, 0);
    b.writeUInt16LE(2, 4);
    b.writeUInt16LE(4, 6);
    b.writeUInt32LE(this.maxlen, 16); // snaplen
    b.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    return b;
  }

  private pcapngHeader(): Buffer {
    const b = Buffer.alloc(28 + 20);
    b.writeUInt32LE(SHB, 0);
    b.writeUInt32LE(28, 4);
    b.writeUInt32LE(BYTE_ORDER_MAGIC, 8);
    b.writeUInt16LE(1, 12);
    b.writeUInt16LE(0, 14);
    b.writeInt32LE(-1, 16); // section length unknown (64-bit -1)
    b.writeInt32LE(-1, 20);
    b.writeUInt32LE(28, 24);
    b.writeUInt32LE(IDB, 28);
    b.writeUInt32LE(20, 32);
    b.writeUInt16LE(LINKTYPE_ETHERNET, 36);
    b.writeUInt16LE(0, 38);
    b.writeUInt32LE(this.maxlen, 40); // snaplen
    b.writeUInt32LE(20, 44);
    return b;
  }
}

/** Opens the capture file as the header comment says; errors name the filter and the file. */
function openCapture(id: string, file: string, append: boolean): number {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | (append ? constants.O_APPEND : constants.O_EXCL);
  try {
    return openSync(file, flags, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const isLink = (code === 'EEXIST' || code === 'ELOOP') && lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink() === true;
    if (isLink) throw new Error(`DumpFilter ${id}: ${file} is a symbolic link; refusing to follow it`);
    if (code === 'EEXIST') throw new Error(`DumpFilter ${id}: ${file} already exists; refusing to overwrite it (append: true adds to it)`);
    throw new Error(`DumpFilter ${id}: cannot create ${file}: ${(e as Error).message}`);
  }
}

/**
 * True when `fd` (opened for append) already holds a capture of `format`; false when it is empty.
 * Anything else is refused: records of one format after the other's header would be unreadable.
 */
function appendsToCapture(id: string, file: string, fd: number, format: 'pcap' | 'pcapng'): boolean {
  if (fstatSync(fd).size === 0) return false;
  const magic = Buffer.alloc(4);
  let got = 0;
  let rfd: number | undefined;
  try {
    rfd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    got = readSync(rfd, magic, 0, 4, 0);
  } finally {
    if (rfd !== undefined) closeSync(rfd);
  }
  if (got === 4 && magic.readUInt32LE(0) === (format === 'pcap' ? PCAP_MAGIC : SHB)) return true;
  throw new Error(`DumpFilter ${id}: ${file} is not a ${format} capture written by this filter; refusing to append to it`);
}
