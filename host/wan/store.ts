// The pair's WAN lease on disk (state_dir/wan-lease.json), on both nodes: a node that boots alone, or becomes
// MASTER after the peer died, starts its DHCP client from it. A monotonic reading does not survive a reboot, so
// the file anchors the lease to the wall clock; the INIT-REBOOT that follows confirms it with the server.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { removeFileDurable, writeFileAtomic } from '../io/atomic.js';
import type { Lease } from './dhcp/machine.js';

const FILE = 'wan-lease.json';

export class LeaseStore {
  readonly file: string;
  constructor(stateDir: string) { this.file = path.join(stateDir, FILE); }

  /** The stored lease in the caller's monotonic timebase (`now`), or null (none, or unreadable: logged by the caller). */
  load(now: number): { lease: Lease | null; error?: string } {
    let text: string;
    try { text = readFileSync(this.file, 'utf8'); } catch { return { lease: null }; }
    try {
      const j = JSON.parse(text);
      const l = j.lease as Lease & { obtainedAt?: number };
      if (typeof j.obtained_wall_ms !== 'number' || typeof l?.address !== 'string') return { lease: null, error: 'malformed' };
      return { lease: { ...l, obtainedAt: now - (Date.now() - j.obtained_wall_ms) } };
    } catch (e) { return { lease: null, error: (e as Error).message }; }
  }

  save(lease: Lease, now: number): void {
    const { obtainedAt, ...rest } = lease;
    writeFileAtomic(this.file, JSON.stringify({ lease: rest, obtained_wall_ms: Date.now() - (now - obtainedAt) }) + '\n');
  }

  clear(): void { removeFileDurable(this.file); }
}
