// Human-readable `duogate status`, laid out like pfSense's Status → CARP page.
import { DROP_NAMES } from './core/core.js';

export function formatStatus(s: any): string {
  const lines: string[] = [];
  const m = s.maintenance?.on ? `ON since ${s.maintenance.since}` : 'off';
  lines.push(`node ${s.node} (${s.role})   CARP: ${s.carp_role}   maintenance: ${m}   demotion: ${s.demotion}   preempt: ${s.preempt ? 'on' : 'off'}`);
  lines.push(`links: ${Object.entries(s.links ?? {}).map(([r, l]: [string, any]) => `${r}=${l.device}${l.carrier ? '' : ' (NO CARRIER)'}`).join('  ')}`);
  // Every network (wan, the internal ones, sync) with its address and VIPs; `links` above has the carrier.
  if (s.networks) {
    lines.push(`networks: ${Object.entries(s.networks).map(([n, x]: [string, any]) =>
      `${n}=${x.device} ${x.address}${x.vips?.length ? ` (${x.vips.map((v: any) => `vhid ${v.vhid} ${v.state}`).join(', ')})` : ''}`).join('  ')}`);
  }
  lines.push('');
  const rows = [['INTERFACE', 'VHID', 'VIRTUAL IP', 'STATUS', 'MAC', 'ADVBASE', 'ADVSKEW', 'DEMOTE', 'MASTER HEARD', 'LAST CHANGE']];
  for (const v of s.vips ?? []) {
    rows.push([
      `${v.interface} (${v.device})`, String(v.vhid), v.addresses.join(','), v.state,
      v.mac ? `${v.mac_mode} ${v.mac}` : '-', String(v.advbase),
      v.advertised_skew !== v.advskew ? `${v.advskew}→${v.advertised_skew}` : String(v.advskew), String(v.demote),
      v.state === 'MASTER' ? '-' : v.master_heard_s_ago === null ? 'never' : `${v.master_heard_s_ago}s ago (${v.master_source})`,
      v.last_change ? `${v.last_change} (${v.last_change_why})` : '-',
    ]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) lines.push(r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd());
  const c = s.carp_counters ?? {};
  lines.push('');
  lines.push(`adverts: ${c.accepted ?? 0} accepted, ${c.sent ?? 0} sent`);
  lines.push(`dropped: ${DROP_NAMES.map((d) => `${d}=${c[d] ?? 0}`).join(' ')}`);
  const sections = Object.entries(s).filter(([k]) => !CORE_KEYS.includes(k));
  // Alarms first and loud: whichever feature raised them (peer, telemetry, ...), once each.
  const alarms = new Map<string, string>();
  for (const [, v] of sections) for (const a of (v as any)?.alarms ?? []) alarms.set(a.name ?? a.key, a.message ?? String(a));
  lines.splice(2, 0, ...(alarms.size ? ['ALARMS:', ...[...alarms].map(([n, m]) => `  ! ${n}: ${m}`)] : ['alarms: none']));
  // Sections of a config push that a tool refused: in force is still their previous config (docs/configsync.md).
  const cs = s.configsync;
  const refused: any[] = cs?.rejected?.sections ?? cs?.peer?.rejected ?? [];
  if (refused.length) {
    const where = cs?.rejected ? `from the primary's #${cs.rejected.primary_seq} here` : 'on the secondary';
    lines.splice(2 + (alarms.size ? alarms.size + 1 : 1), 0, `CONFIG SYNC: sections refused ${where}, their previous config stays in force:`,
      ...refused.map((r) => `  ! ${r.section} (${r.service}) ${r.code}: ${r.reason}`));
  }
  lines.push('');
  const kw = Math.max(...sections.map(([k]) => k.length), 0) + 1;
  for (const [k, v] of sections) lines.push(`${(k + ':').padEnd(kw)} ${flatten(v).join(' ')}`);
  return lines.join('\n') + '\n';
}

const CORE_KEYS = ['node', 'role', 'carp_role', 'uptime_s', 'maintenance', 'demotion', 'preempt', 'links', 'networks', 'vips', 'carp_counters'];

/** A feature section as `key=value` pairs (nested keys dotted, lists of scalars joined, alarms left out). */
function flatten(v: unknown, prefix = ''): string[] {
  if (v === null || typeof v !== 'object') return [`${prefix || 'value'}=${v}`];
  if (Array.isArray(v)) {
    if (v.every((x) => x === null || typeof x !== 'object')) return [`${prefix}=${v.join(',') || '-'}`];
    return [`${prefix}=[${v.length}]`];
  }
  const out: string[] = [];
  for (const [k, x] of Object.entries(v)) {
    if (k === 'alarms') continue;
    const key = prefix ? `${prefix}.${k}` : k;
    if (x !== null && typeof x === 'object' && !Array.isArray(x) && prefix.split('.').length >= 2) out.push(`${key}={..}`);
    else out.push(...flatten(x, key));
  }
  return out;
}
