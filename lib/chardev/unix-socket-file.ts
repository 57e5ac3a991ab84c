// A unix socket file only its owner can use, and that only its creator removes. Shared by the
// chardev socket server and the QMP server.
//
// Listening directly on `path` would create the socket file with the process umask (often 0755:
// any local user could connect) and would race with a chmod. Instead the listener is bound in a
// fresh private directory beside `path` (mkdtemp: mode 0700), made 0600 there, and renamed into
// place; the file's inode is remembered so that closing removes the file only when it is still
// ours (another server may have replaced it at the same path since).

import { chmod, lstat, mkdtemp, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
export const MAX_UNIX_PATH_BYTES = 107;

/** A socket file this process created and may remove. */
export interface UnixSocketFile {
  readonly path: string;
  /** Unlinks the file if it is still the one created here; never anything else. Idempotent. */
  remove(): Promise<void>;
}

/**
 * Binds a listener on a 0600 unix socket at `path` through `listen(stagedPath)`, which must resolve
 * once the listener is bound. Refuses (throws, naming `owner`) when `path` exists and is not a
 * socket, or when the staging path would not fit in a socket address.
 */
export async function listenUnixPrivate(owner: string, path: string, listen: (stagedPath: string) => Promise<void>): Promise<UnixSocketFile> {
  const target = resolve(path);
  const existing = await lstat(target).catch(() => undefined);
  if (existing !== undefined && !existing.isSocket()) {
    throw new Error(`${owner}: ${path} exists and is not a socket; refusing to replace it`);
  }
  const staging = await mkdtemp(join(dirname(target), '.s'));
  const stagedPath = join(staging, 's');
  try {
    if (Buffer.byteLength(stagedPath) > MAX_UNIX_PATH_BYTES) {
      throw new Error(
        `${owner}: ${path}: its directory is too long to stage the socket in ` +
          `(needs ${Buffer.byteLength(stagedPath)} of at most ${MAX_UNIX_PATH_BYTES} bytes)`,
      );
    }
    await listen(stagedPath);
    await chmod(stagedPath, 0o600);
    await rename(stagedPath, target);
    const ino = (await stat(target)).ino;
    let removed = false;
    return {
      path: target,
      async remove(): Promise<void> {
        if (removed) return;
        removed = true;
        const st = await stat(target).catch(() => undefined);
        if (st !== undefined && st.ino === ino) await unlink(target).catch(() => undefined);
      },
    };
  } finally {
    await unlink(stagedPath).catch(() => undefined);
    await rmdir(staging).catch(() => undefined);
  }
}
