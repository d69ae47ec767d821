// The config store: every change is a revision — the whole validated config, its hash, the time, a one-line
// description and where it came from — kept as one JSON file per revision under <state_dir>/configstore.
// Each file is written with writeFileAtomic (temp file, fsync, rename, fsync dir), so a crash or power cut
// at any moment leaves every revision either absent or whole; the newest whole file is the current config.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import type { Config } from '../config/schema.js';
import { redactValue, secretKind } from '../config/secrets.js';

export type Origin = 'local' | 'primary' | 'boot' | 'revert';

export interface RevisionMeta {
  seq: number;
  hash: string;
  time: string;
  description: string;
  origin: Origin;
  /** Sections received from the primary (origin 'primary'), and their hash as applied here. */
  synced?: string[];
  synced_hash?: string;
  /** The primary's revision this one carries (origin 'primary'). */
  primary_revision?: { seq: number; hash: string };
}
export interface Revision extends RevisionMeta { config: Config; text?: string }

/** JSON with object keys sorted at every level: the same config always hashes the same. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}
export function hashOf(v: unknown): string { return createHash('sha256').update(canonical(v)).digest('hex'); }

export class StoreError extends Error {
  constructor(readonly code: string, message: string) { super(message); this.name = 'StoreError'; }
}

const NAME = /^rev-(\d{8})\.json$/;

export class ConfigStore {
  readonly dir: string;
  constructor(stateDir: string, readonly keep = 50) {
    this.dir = path.join(stateDir, 'configstore');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // Temp files of a write that a crash interrupted: never renamed, so never part of the history.
    for (const f of readdirSync(this.dir)) if (f.startsWith('.') && f.endsWith('.tmp')) rmSync(path.join(this.dir, f), { force: true });
  }

  private files(): { seq: number; file: string }[] {
    return readdirSync(this.dir).flatMap((f) => {
      const m = NAME.exec(f);
      return m ? [{ seq: Number(m[1]), file: path.join(this.dir, f) }] : [];
    }).sort((a, b) => a.seq - b.seq);
  }

  private read(file: string): Revision | null {
    try {
      const r = JSON.parse(readFileSync(file, 'utf8')) as Revision;
      return r && typeof r.seq === 'number' && r.config && hashOf(r.config) === r.hash ? r : null;
    } catch { return null; } // unreadable: skipped (atomic writes make this a disk fault, not a crash artefact)
  }

  /** Every revision, oldest first, without the configs. */
  list(): RevisionMeta[] {
    return this.files().flatMap(({ file }) => {
      const r = this.read(file);
      if (!r) return [];
      const { config: _c, text: _t, ...meta } = r;
      return [meta];
    });
  }

  latest(): Revision | null {
    const fs = this.files();
    for (let i = fs.length - 1; i >= 0; i--) { const r = this.read(fs[i].file); if (r) return r; }
    return null;
  }

  /** A revision by sequence number ("7", "#7"), by hash prefix (at least 6 hex digits), or relative ("-1" = the one before the latest). */
  get(ref: string | number): Revision {
    const s = String(ref).replace(/^#/, '');
    const all = this.files();
    let hit: { file: string } | undefined;
    if (/^-\d+$/.test(s)) hit = all[all.length - 1 + Number(s)];
    else if (/^\d{1,7}$/.test(s)) hit = all.find((f) => f.seq === Number(s));
    else if (/^[0-9a-f]{6,64}$/i.test(s)) {
      const m = this.list().filter((r) => r.hash.startsWith(s.toLowerCase()));
      if (m.length > 1) throw new StoreError('DG_ERR_REVISION', `hash prefix ${s} matches ${m.length} revisions: give more digits`);
      if (m[0]) hit = all.find((f) => f.seq === m[0].seq);
    }
    const r = hit ? this.read(hit.file) : null;
    if (!r) throw new StoreError('DG_ERR_REVISION', `no revision "${ref}" in ${this.dir}: see "duogate config history" (the last ${this.keep} are kept)`);
    return r;
  }

  /** Record a new revision (atomically) and prune the oldest beyond `keep`. */
  record(config: Config, meta: Omit<RevisionMeta, 'seq' | 'hash' | 'time'> & { text?: string }): Revision {
    const all = this.files();
    const seq = (all[all.length - 1]?.seq ?? 0) + 1;
    const rev: Revision = { seq, hash: hashOf(config), time: new Date().toISOString(), ...meta, config };
    writeFileAtomic(path.join(this.dir, `rev-${String(seq).padStart(8, '0')}.json`), JSON.stringify(rev) + '\n');
    for (const old of all.slice(0, Math.max(0, all.length + 1 - this.keep))) rmSync(old.file, { force: true });
    return rev;
  }
}

/** Flatten to dotted paths (arrays by index) for a readable diff; secret fields (host/config/secrets.ts) as
 * their fingerprint, so a diff shows that a password changed, never the password. */
function flatten(v: unknown, at: string, out: Map<string, string>): void {
  const kind = at ? secretKind(at) : null;
  if (kind && v !== undefined) { out.set(at, JSON.stringify(redactValue(v, kind))); return; }
  if (Array.isArray(v)) { if (v.length === 0) out.set(at, '[]'); v.forEach((x, i) => flatten(x, `${at}[${i}]`, out)); return; }
  if (v && typeof v === 'object') {
    const keys = Object.keys(v).sort();
    if (keys.length === 0) out.set(at, '{}');
    for (const k of keys) flatten((v as Record<string, unknown>)[k], at ? `${at}.${k}` : k, out);
    return;
  }
  if (v !== undefined) out.set(at, JSON.stringify(v));
}

/** "- path: old" / "+ path: new" lines, sorted by path; empty when the configs are equal. Secrets redacted. */
export function diffConfigs(a: unknown, b: unknown): string[] {
  const fa = new Map<string, string>(); const fb = new Map<string, string>();
  flatten(a, '', fa); flatten(b, '', fb);
  const keys = [...new Set([...fa.keys(), ...fb.keys()])].sort();
  const out: string[] = [];
  for (const k of keys) {
    const x = fa.get(k); const y = fb.get(k);
    if (x === y) continue;
    if (x !== undefined) out.push(`- ${k}: ${x}`);
    if (y !== undefined) out.push(`+ ${k}: ${y}`);
  }
  return out;
}
