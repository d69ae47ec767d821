// One chaos run per board: a second run would tear the first one's board down under it. The lock is a pid file
// created exclusively (O_EXCL), so two runs started together cannot both pass; one left by a run that died
// (kill -9, a power cut) names a dead pid and is taken over.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pidAlive } from '../virtual/netns.js';

export class LockHeld extends Error {
  readonly code = 'DG_ERR_CHAOS_LOCKED';
  constructor(readonly holder: number | null, readonly file: string, what: string) {
    super(holder
      ? `another chaos run (pid ${holder}) uses ${what}; wait for it, or stop it with kill -INT ${holder}, or use another --prefix`
      : `another chaos run is starting on ${what} (${file} is being written); wait for it, or use another --prefix`);
    this.name = 'LockHeld';
  }
}

const readPid = (file: string): number | null => {
  try { const n = Number(readFileSync(file, 'utf8').trim()); return Number.isInteger(n) && n > 0 ? n : null; } catch { return null; }
};

/** Take the lock or throw LockHeld; returns the release (removes the file only while it is still this run's). */
export function takeRunLock(file: string, what: string): () => void {
  mkdirSync(path.dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => { if (readPid(file) === process.pid) rmSync(file, { force: true }); };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = readPid(file);
    // Empty: its run created it a moment ago and has not written its pid yet. Alive: it runs.
    if (holder === null || holder === process.pid || pidAlive(holder) || attempt > 0) throw new LockHeld(holder, file, what);
    // Stale: remove it (unless another run took it over meanwhile) and try once more; that run's wx decides.
    if (readPid(file) === holder) rmSync(file, { force: true });
  }
  throw new LockHeld(readPid(file), file, what);
}
