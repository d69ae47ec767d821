// What config sync carries, and how each section changes on its way to the secondary (configsync.md §1.5-1.7).
// A category names a config section: `vips` is carp.vips, anything else is the top-level section of that name
// (firewall, nat, dhcp, dns: the sections each feature's feature.ts marks `synced`). Sections travel
// whole and replace what the secondary had, so deletions propagate; a section absent on the primary is deleted
// on the secondary.
import type { Config } from '../config/schema.js';
import { hashOf } from '../configstore/store.js';
import { features } from '../features.js';

/** The node's identity, NICs, runtime paths and CARP settings: read by the core, never synced. */
const CORE_LOCAL = ['schema', 'node', 'interfaces', 'control', 'state_dir', 'log', 'carp'] as const;

/**
 * Never synced, refused in `sections` and on the wire: the core's node-local sections and every feature section
 * its feature does not mark synced, among them the sync settings and credentials themselves and the keys of the
 * links between the two nodes (statesync.key, peer.key): a config-sync peer must not be able to set or learn
 * them. mqtt is per node too (its client id, client certificate and broker account).
 */
export function neverSynced(): string[] {
  const synced = new Set(features.flatMap((f) => f.synced ?? []));
  return [...CORE_LOCAL, ...features.flatMap((f) => Object.keys(f.sections)).filter((s) => !synced.has(s))];
}

export function sectionPath(category: string): string[] { return category === 'vips' ? ['carp', 'vips'] : [category]; }

export function getSection(c: Config, category: string): unknown {
  let v: unknown = c;
  for (const k of sectionPath(category)) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** Replace a section in place; null/undefined deletes it (carp.vips becomes []). */
export function setSection(c: Config, category: string, value: unknown): void {
  if (category === 'vips') { c.carp.vips = (value ?? []) as Config['carp']['vips']; return; }
  if (value === null || value === undefined) delete c[category];
  else c[category] = value;
}

/** What config sync may carry: `vips` and every section a feature marks `synced`. Nothing else is written from the wire. */
export function syncable(): string[] { return ['vips', ...features.flatMap((f) => f.synced ?? [])]; }

/**
 * Why a category cannot be synced, or null. An allowlist: a name is carried only when it is listed in syncable(),
 * so a new node-local section is never writable by a peer even if its schema would accept what is sent.
 */
export function unsyncable(category: string): string | null {
  if (neverSynced().includes(category)) return `"${category}" is node-local and never synced (configsync.md §1.7)`;
  if (!syncable().includes(category)) {
    return `"${String(category).slice(0, 40)}" is not a section config sync carries (it carries ${syncable().join(', ')})`;
  }
  return null;
}

/** A per-node rewrite on the way to the secondary. Features declare theirs (Feature.transforms). */
export type Transform = (value: unknown, from: Config) => unknown;
const coreTransforms: Record<string, Transform> = {
  // pfSense/OPNsense: the secondary is the backup because its advskew is the primary's + 100, capped at 254.
  vips: (v) => (v as Config['carp']['vips']).map((vip) => ({ ...vip, advskew: Math.min(vip.advskew + 100, 254) })),
};
export function transforms(): Record<string, Transform> {
  return Object.assign({}, coreTransforms, ...features.map((f) => f.transforms ?? {}));
}

/** The sections as the secondary should end up with them (transforms applied). */
export function outgoingSections(c: Config, categories: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const tf = transforms();
  for (const cat of categories) {
    const v = getSection(c, cat);
    out[cat] = v === undefined ? null : tf[cat] ? tf[cat](structuredClone(v), c) : structuredClone(v);
  }
  return out;
}

/** Hash of the synced sections as they stand in `c` (the secondary) or as they are sent (the primary). */
export function syncedHash(sections: Record<string, unknown>): string {
  return hashOf(Object.fromEntries(Object.entries(sections).map(([k, v]) => [k, v ?? null])));
}
export function currentSections(c: Config, categories: string[]): Record<string, unknown> {
  return Object.fromEntries(categories.map((cat) => [cat, getSection(c, cat) ?? null]));
}
