// Persistent CARP maintenance mode (pfSense's "Enter Persistent CARP Maintenance Mode"): a flag file in the
// state directory, written atomically, read at every start, so the mode survives daemon and box restarts.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { removeFileDurable, writeFileAtomic } from '../io/atomic.js';

export class MaintenanceFlag {
  readonly file: string;
  constructor(stateDir: string) { this.file = path.join(stateDir, 'maintenance.json'); }
  get(): { since: string; by: string } | null {
    if (!existsSync(this.file)) return null;
    try { return JSON.parse(readFileSync(this.file, 'utf8')); } catch { return { since: 'unknown', by: 'unknown' }; }
  }
  set(on: boolean, by: string): void {
    if (on) writeFileAtomic(this.file, JSON.stringify({ since: new Date().toISOString(), by }) + '\n');
    else removeFileDurable(this.file); // a power cut right after `leave` must not bring maintenance back
  }
}
