// The retained state document a node publishes on <prefix>/<node>/state, built from `duogate status`.
// Flat, template-friendly fields for Home Assistant (strings ON/OFF for binary sensors, as HA compares text),
// plus each feature's own status section unchanged under `services`.
//
// Feature figures come from the features themselves (Feature.figures, declared in host/feature.ts and set in each feature.ts), each reading its
// own status section: statesync (healthy = the peer heard within 3 s and no bulk timeout; states =
// states_table), configsync (primary: peer.state in_sync; secondary: no drift), dhcp (ha_state, leases).
// Absent figures are null (Home Assistant shows "unknown"). Any section's `alarms` array feeds `alarms`.

import { DROP_NAMES } from '../core/core.js';
import type { Figures } from '../feature.js';
import { features } from '../features.js';

export type { Figures };

export const onOff = (b: boolean | null | undefined): 'ON' | 'OFF' | null => (b === null || b === undefined ? null : b ? 'ON' : 'OFF');

/** The vhid key used in topics and templates: vhid1, vhid2, ... */
export const vhidKey = (vhid: number) => `vhid${vhid}`;

// secrets (fingerprints of this node's keys) is for comparing the two nodes by hand, not for the broker.
const CORE_KEYS = new Set(['node', 'role', 'carp_role', 'uptime_s', 'maintenance', 'demotion', 'preempt', 'links', 'networks', 'vips', 'carp_counters', 'secrets']);

/** The CARP states a network's sensor can show: one vhid's state when all agree, MIXED, or NONE (no VIP). */
export const NET_CARP_STATES = ['INIT', 'BACKUP', 'MASTER', 'MIXED', 'NONE'] as const;

/** A network's CARP state from its VIPs' (`duogate status` networks.<name>.vips). */
export function netCarp(vips: { state: string }[] | undefined): (typeof NET_CARP_STATES)[number] {
  const states = new Set((vips ?? []).map((v) => v.state));
  if (states.size === 0) return 'NONE';
  const [one] = states;
  return states.size === 1 && (NET_CARP_STATES as readonly string[]).includes(one) ? one as (typeof NET_CARP_STATES)[number] : 'MIXED';
}

/**
 * Every network of the node (status `networks`) for the state document: link ON/OFF (null when the daemon does
 * not watch that NIC), its device and VLAN, this node's address, its VIPs with their states and one CARP state.
 */
export function networksDocument(nets: Record<string, any> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, x] of Object.entries(nets ?? {})) {
    const vips = Array.isArray(x?.vips) ? x.vips : [];
    out[name] = {
      kind: x.kind ?? null, device: x.device ?? null, vlan: x.vlan ?? null, address: x.address ?? null,
      link: onOff(typeof x.carrier === 'boolean' ? x.carrier : null), carp: netCarp(vips),
      vip: vips.flatMap((v: any) => v.addresses ?? []).join(' ') || null,
      vips: vips.map((v: any) => ({ vhid: v.vhid, addresses: v.addresses ?? [], state: v.state })),
    };
  }
  return out;
}

/** The pair's figures from a `duogate status` object: each feature reads its own section (by its name). */
export function featureFigures(s: Record<string, any>): Figures {
  const f: Figures = { config_in_sync: null, state_sync_ok: null, states: null, dhcp_ha_state: null, dhcp_leases: null };
  for (const feat of features) {
    const sec = s[feat.name];
    if (!feat.figures || !sec || typeof sec !== 'object') continue;
    for (const [k, v] of Object.entries(feat.figures(sec))) if (v !== null && v !== undefined) (f as unknown as Record<string, unknown>)[k] = v;
  }
  return f;
}

export interface AlarmSummary { name: string; message: string; since?: string; vhid?: number; source: string }

/** Every active alarm any service reports in its status section. */
export function collectAlarms(s: Record<string, any>): AlarmSummary[] {
  const out: AlarmSummary[] = [];
  for (const [k, v] of Object.entries(s)) {
    if (CORE_KEYS.has(k) || !v || typeof v !== 'object' || !Array.isArray(v.alarms)) continue;
    for (const a of v.alarms) if (a && typeof a.name === 'string') out.push({ name: a.name, message: String(a.message ?? a.name), since: a.since, vhid: a.vhid, source: k });
  }
  return out;
}

/** The state document for one node from its `duogate status` object. `self` is the telemetry section's own name. */
/**
 * Sync failures as alarms, from the feature figures: state sync unhealthy or config not in sync. Pure; the
 * caller holds each condition for a while first (SyncWatch) so a start-up or a failover does not flap them.
 */
export function syncProblems(f: Figures): { name: string; message: string }[] {
  const out: { name: string; message: string }[] = [];
  if (f.state_sync_ok === 'OFF') out.push({ name: 'state_sync_failing', message: 'state sync failing: the peer has not been heard on the state-sync port for over 3 s or the bulk sync timed out; sessions will not survive a failover (see duogate status, statesync)' });
  if (f.config_in_sync === 'OFF') out.push({ name: 'config_out_of_sync', message: 'config not in sync: the secondary does not have the primary\'s latest revision, or has local edits (see duogate status, configsync; `duogate config sync`)' });
  return out;
}

/** Holds sync problems for `holdMs` before they count as alarms; reports raises and clears. */
export class SyncWatch {
  private since = new Map<string, number>();
  private active = new Map<string, AlarmSummary>();
  constructor(private readonly holdMs: number) {}
  update(now: number, problems: { name: string; message: string }[]): { alarm: AlarmSummary; active: boolean }[] {
    const changes: { alarm: AlarmSummary; active: boolean }[] = [];
    const names = new Set(problems.map((p) => p.name));
    for (const [n, a] of this.active) if (!names.has(n)) { this.active.delete(n); changes.push({ alarm: a, active: false }); }
    for (const n of [...this.since.keys()]) if (!names.has(n)) this.since.delete(n);
    for (const p of problems) {
      const t = this.since.get(p.name) ?? now;
      this.since.set(p.name, t);
      if (now - t >= this.holdMs && !this.active.has(p.name)) {
        const a = { name: p.name, message: p.message, since: new Date().toISOString(), source: 'telemetry' };
        this.active.set(p.name, a);
        changes.push({ alarm: a, active: true });
      }
    }
    return changes;
  }
  list(): AlarmSummary[] { return [...this.active.values()]; }
}

export function stateDocument(s: Record<string, any>, opts: { version: string; self?: string }): Record<string, unknown> {
  const vips: Record<string, unknown> = {};
  for (const v of s.vips ?? []) {
    vips[vhidKey(v.vhid)] = {
      vhid: v.vhid, interface: v.interface, addresses: v.addresses, state: v.state, master: onOff(v.state === 'MASTER'),
      demote: v.demote, last_change: v.last_change, last_change_why: v.last_change_why,
    };
  }
  const c = s.carp_counters ?? {};
  const alarms = collectAlarms(s);
  const services: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) if (!CORE_KEYS.has(k) && k !== opts.self) services[k] = v;
  const peer = s.peer && typeof s.peer === 'object' ? s.peer : null;
  return {
    node: s.node,
    role: s.role,
    carp: s.carp_role,
    master: onOff(s.carp_role === 'MASTER'),
    vips,
    networks: networksDocument(s.networks),
    maintenance: onOff(!!s.maintenance?.on),
    maintenance_since: s.maintenance?.since ?? null,
    demotion: s.demotion ?? 0,
    adverts: { sent: c.sent ?? 0, accepted: c.accepted ?? 0 },
    drops: Object.fromEntries(DROP_NAMES.map((k) => [k, c[k] ?? 0])),
    drops_total: DROP_NAMES.reduce((a, k) => a + (Number(c[k]) || 0), 0),
    peer: peer ? { name: peer.peer ?? null, sync_link: peer.sync_link ?? null, connected: onOff(peer.sync_link === 'ok' || peer.lan_path === 'ok') } : null,
    ...featureFigures(s),
    alarms,
    problem: onOff(alarms.length > 0),
    uptime_s: s.uptime_s ?? null,
    version: opts.version,
    updated: new Date().toISOString(),
    services,
  };
}
