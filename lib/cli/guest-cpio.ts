// The initramfs archive format Linux unpacks at boot (no VIRTIO section: the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst, the "newc" cpio format with
// magic 070701). Written here so building the guest image needs no host `cpio`.
//
// Each entry is a 110-byte ASCII header (magic + 13 eight-digit hex fields), the NUL-terminated
// name padded to a multiple of 4 bytes (counting the header), then the data padded the same way.
// The archive ends with an entry named TRAILER!!!.

/** One file, directory, symlink or device node of the archive. */
export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Uint8Array; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const HEADER_LENGTH = 110;
const MAGIC = '070701';
const TRAILER = 'TRAILER!!!';

/** The archive bytes for `entries`, in order (parents must come before their children). */
export function cpioNewc(entries: readonly CpioEntry[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const push = (b: Uint8Array): void => {
    chunks.push(b);
    total += b.length;
  };
  let ino = 1;
  for (const e of [...entries, null]) {
    const name = e === null ? TRAILER : stripSlash(e.path);
    let mode = 0;
    let data: Uint8Array = new Uint8Array(0);
    let rmajor = 0;
    let rminor = 0;
    let nlink = 1;
    if (e !== null) {
      switch (e.kind) {
        case 'dir':
          mode = S_IFDIR | (e.mode ?? 0o755);
          nlink = 2;
          break;
        case 'file':
          mode = S_IFREG | (e.mode ?? 0o644);
          data = e.data;
          break;
        case 'symlink':
          mode = S_IFLNK | 0o777;
          data = new TextEncoder().encode(e.target);
          break;
        case 'chardev':
          mode = S_IFCHR | (e.mode ?? 0o600);
          rmajor = e.major;
          rminor = e.minor;
          break;
      }
    }
    const nameBytes = new TextEncoder().encode(name + '\0');
    const fields = [e === null ? 0 : ino++, mode, 0, 0, nlink, 0, data.length, 0, 0, rmajor, rminor, nameBytes.length, 0];
    const header = MAGIC + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
    push(new TextEncoder().encode(header));
    push(nameBytes);
    push(new Uint8Array(pad4(HEADER_LENGTH + nameBytes.length)));
    push(data);
    push(new Uint8Array(pad4(data.length)));
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Bytes of padding after `n` bytes to reach a multiple of 4. */
function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function stripSlash(path: string): string {
  const p = path.replace(/^\/+/, '');
  if (p.length === 0) throw new RangeError(`cpioNewc: entry path must name something below /, got ${JSON.stringify(path)}`);
  return p;
}
