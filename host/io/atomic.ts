// Crash-safe file replacement: write a temp file in the same directory, fsync it, rename over the target,
// fsync the directory. A power cut at any point leaves the old file or the new one, never a mix.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): void {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally { closeSync(fd); }
  renameSync(tmp, file);
  fsyncDir(dir);
}

/** Remove a file so that the removal survives a power cut (the directory entry is flushed too). */
export function removeFileDurable(file: string): void {
  rmSync(file, { force: true });
  try { fsyncDir(path.dirname(file)); } catch { /* the directory is gone too: nothing left to flush */ }
}

function fsyncDir(dir: string): void {
  const dfd = openSync(dir, 'r');
  try { fsyncSync(dfd); } finally { closeSync(dfd); }
}
