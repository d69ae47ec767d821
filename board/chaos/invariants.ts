// The chaos harness's invariants: a pure checker fed observations (the runner polls the board and the daemons)
// and returning violations. Kept free of I/O so a unit test can feed it a forged observation and see it fail.
//
// Checked only when the pair is settled (no fault in progress and every fault's settle bound passed):
//   one_master      exactly one node is MASTER of each VIP (per the daemons' status)
//   same_node       both VIPs are held by the same node
//   vip_kernel      each VIP address is on exactly one node's NIC, the MASTER's
//   preferred       the node the config prefers holds them (primary, unless it is in maintenance: preempt on)
//   reach           the LAN client got an echo reply from the WAN server within the last second
//   config          config revisions converged: the primary's peer is in_sync and the secondary applied its latest
//   alarms          no alarm raised on either node (its cause is gone)
//   services        Kea and unbound run on both nodes
// Checked all the time:
//   session_lost    an established session died while only faults state sync must survive were active (or none)
//   dhcp_duplicate  one address bound by two DHCP clients at once, or leased to two MACs in the Kea lease files
//   rss             a daemon's RSS above its bound
//   table           the kernel's conntrack count or state sync's table above its bound
import type { NodeName } from '../virtual/board.js';

export const BOUNDS = {
  /** Per-process RSS bounds, MB: duogate idles at 76-118 MB (README); Kea and unbound at ~10-30 MB. */
  rss_mb: { duogate: 250, kea: 120, unbound: 120 },
  /** The traffic keeps ~20 long sessions, ~5 new short connections/s (TIME_WAIT 120 s), pings and DNS. */
  conntrack: 20_000,
  table: 20_000,
  /** The LAN client's last echo reply may be this old when settled. */
  reply_age_ms: 1_000,
} as const;

export interface NodeObs {
  /** The daemon answered its control socket. */
  up: boolean;
  /** vhid → state ('1' LAN, '2' WAN). */
  states: Record<string, string>;
  maintenance: boolean;
  alarms: string[];
  /** VIP addresses present on the node's NICs (from the kernel). */
  vips: string[];
  config?: { seq?: number; peerState?: string; behind?: number; receivedPrimarySeq?: number };
  kea?: boolean;
  unbound?: boolean;
  rssMb?: { duogate?: number; kea?: number; unbound?: number };
  conntrack?: number;
  table?: number;
}

export interface Observation {
  t: number;
  settled: boolean;
  nodes: Record<NodeName, NodeObs>;
  /** Age of the LAN client's latest echo reply, ms. */
  replyAgeMs: number;
}

export interface Violation { invariant: string; t: number; detail: string; faults: number[] }

export interface ActiveFault { n: number; kind: string; survivable: boolean; start: number }

export const VIPS: Record<string, string> = { '1': '192.168.1.1', '2': '203.0.113.1' };

export class Invariants {
  readonly violations: Violation[] = [];
  /** Invariants currently failing (one violation per episode, not per sample). */
  private readonly open = new Map<string, number>();
  readonly max = { rss_mb: { duogate: 0, kea: 0, unbound: 0 }, conntrack: 0, table: 0 };
  /** Observations taken, and how many of them were settled (the settled checks ran on those). */
  observations = 0;
  settledObservations = 0;

  /** Record a failing check; `key` identifies the episode (the same key is not counted again until it clears). */
  private fail(key: string, invariant: string, t: number, detail: string, faults: number[]): void {
    if (this.open.has(key)) return;
    this.open.set(key, t);
    this.violations.push({ invariant, t, detail, faults });
  }

  private pass(prefix: string): void {
    for (const k of [...this.open.keys()]) if (k === prefix || k.startsWith(`${prefix}:`)) this.open.delete(k);
  }

  /** Feed one observation; `blame` = the faults a failure is attributed to (the latest to settle). */
  observe(o: Observation, blame: number[] = []): void {
    const nodes: NodeName[] = ['primary', 'secondary'];
    this.observations++;
    // Bounds, all the time.
    for (const n of nodes) {
      const ob = o.nodes[n];
      for (const p of ['duogate', 'kea', 'unbound'] as const) {
        const v = ob.rssMb?.[p];
        if (v === undefined) continue;
        this.max.rss_mb[p] = Math.max(this.max.rss_mb[p], v);
        if (v > BOUNDS.rss_mb[p]) this.fail(`rss:${n}:${p}`, 'rss', o.t, `${n} ${p} RSS ${v.toFixed(0)} MB > ${BOUNDS.rss_mb[p]} MB`, blame);
        else this.pass(`rss:${n}:${p}`);
      }
      if (ob.conntrack !== undefined) {
        this.max.conntrack = Math.max(this.max.conntrack, ob.conntrack);
        if (ob.conntrack > BOUNDS.conntrack) this.fail(`table:${n}:ct`, 'table', o.t, `${n} conntrack ${ob.conntrack} > ${BOUNDS.conntrack}`, blame);
      }
      if (ob.table !== undefined) {
        this.max.table = Math.max(this.max.table, ob.table);
        if (ob.table > BOUNDS.table) this.fail(`table:${n}:ss`, 'table', o.t, `${n} state sync table ${ob.table} > ${BOUNDS.table}`, blame);
      }
    }
    if (!o.settled) return;
    this.settledObservations++;
    const p = o.nodes.primary; const s = o.nodes.secondary;
    const check = (key: string, ok: boolean, detail: () => string) => {
      if (ok) this.pass(key); else this.fail(key, key, o.t, detail(), blame);
    };
    const masters = (vhid: string) => nodes.filter((n) => o.nodes[n].states[vhid] === 'MASTER');
    const m1 = masters('1'); const m2 = masters('2');
    const st = () => `primary ${JSON.stringify(p.states)}${p.up ? '' : ' (down)'}, secondary ${JSON.stringify(s.states)}${s.up ? '' : ' (down)'}`;
    check('one_master', m1.length === 1 && m2.length === 1, () => `MASTER of vhid 1: [${m1}], vhid 2: [${m2}]: ${st()}`);
    check('same_node', m1.length !== 1 || m2.length !== 1 || m1[0] === m2[0], () => `vhid 1 on ${m1[0]}, vhid 2 on ${m2[0]}`);
    const holders = (vip: string) => nodes.filter((n) => o.nodes[n].vips.includes(vip));
    const h1 = holders(VIPS['1']!); const h2 = holders(VIPS['2']!);
    check('vip_kernel', h1.length === 1 && h2.length === 1 && (m1.length !== 1 || h1[0] === m1[0]) && (m2.length !== 1 || h2[0] === m2[0]),
      () => `LAN VIP on [${h1}], WAN VIP on [${h2}], MASTERs [${m1}] / [${m2}]`);
    const preferred: NodeName = p.up && !p.maintenance ? 'primary' : 'secondary';
    const bothMaint = p.maintenance && s.maintenance;
    check('preferred', bothMaint || (m1[0] === preferred && m2[0] === preferred), () => `expected ${preferred} to hold both VIPs (primary maintenance ${p.maintenance}): ${st()}`);
    check('reach', o.replyAgeMs <= BOUNDS.reply_age_ms, () => `LAN client's last echo reply from the WAN server ${Math.round(o.replyAgeMs)} ms ago`);
    const pc = p.config; const sc = s.config;
    check('config', !!pc && !!sc && pc.peerState === 'in_sync' && (pc.behind ?? 0) === 0 && sc.receivedPrimarySeq === pc.seq,
      () => `primary revision ${pc?.seq} peer ${pc?.peerState} behind ${pc?.behind}; secondary applied primary's #${sc?.receivedPrimarySeq}`);
    check('alarms', p.alarms.length === 0 && s.alarms.length === 0, () => `primary [${p.alarms}], secondary [${s.alarms}]`);
    check('services', !!(p.kea && p.unbound && s.kea && s.unbound), () => `kea ${p.kea}/${s.kea}, unbound ${p.unbound}/${s.unbound} (primary/secondary)`);
  }

  /**
   * A long session died at `since` (its last progress). A violation if it was established before every fault
   * active then began and all of them are ones state sync must survive, or if no fault was active at all.
   * Returns whether it was counted as a violation.
   */
  sessionLost(ev: { id: number; since: number; opened: number; why: string }, active: ActiveFault[]): boolean {
    const settledBefore = active.every((f) => ev.opened < f.start - 2_000);
    const survivable = active.every((f) => f.survivable);
    if (!survivable || !settledBefore) return false;
    const what = active.length ? `during ${active.map((f) => `#${f.n} ${f.kind}`).join(', ')}` : 'with no fault active';
    this.violations.push({ invariant: 'session_lost', t: ev.since, detail: `session ${ev.id} lost ${what}: ${ev.why}`, faults: active.map((f) => f.n) });
    return true;
  }

  /**
   * DHCP: `bound` = each client's current address; `leases` = each node's active Kea leases (address → MAC).
   * One address must never belong to two clients, nor to two MACs across both nodes' lease files.
   */
  dhcp(t: number, bound: Record<string, string>, leases: Record<NodeName, Record<string, string>>, blame: number[] = []): void {
    const byIp = new Map<string, string[]>();
    for (const [client, ip] of Object.entries(bound)) if (ip) byIp.set(ip, [...(byIp.get(ip) ?? []), client]);
    for (const [ip, clients] of byIp) {
      if (clients.length > 1) this.fail(`dhcp_duplicate:bound:${ip}`, 'dhcp_duplicate', t, `${ip} bound by ${clients.join(' and ')}`, blame);
      else this.pass(`dhcp_duplicate:bound:${ip}`);
    }
    const macs = new Map<string, Set<string>>();
    for (const n of ['primary', 'secondary'] as const) for (const [ip, mac] of Object.entries(leases[n] ?? {})) (macs.get(ip) ?? macs.set(ip, new Set()).get(ip)!).add(mac.toLowerCase());
    for (const [ip, set] of macs) {
      if (set.size > 1) this.fail(`dhcp_duplicate:lease:${ip}`, 'dhcp_duplicate', t, `${ip} leased to ${[...set].join(' and ')} (Kea lease files)`, blame);
      else this.pass(`dhcp_duplicate:lease:${ip}`);
    }
  }

  /** A check the runner makes itself (an invalid config accepted, a fault that could not be undone...). */
  record(invariant: string, t: number, detail: string, faults: number[]): void {
    this.violations.push({ invariant, t, detail, faults });
  }
}

/** Active leases of a Kea memfile CSV (the last line per address wins; expired and declined ones dropped). */
export function parseKeaLeases(csv: string, nowS: number): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = csv.split('\n');
  const head = (lines[0] ?? '').split(',');
  const col = (name: string) => head.indexOf(name);
  const [ia, ih, ie, is] = [col('address'), col('hwaddr'), col('expire'), col('state')];
  if (ia < 0 || ih < 0) return out;
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    if (f.length < head.length - 1 || !f[ia]) continue;
    const live = (ie < 0 || Number(f[ie]) > nowS) && (is < 0 || f[is] === '0');
    if (live) out[f[ia]!] = f[ih]!; else delete out[f[ia]!];
  }
  return out;
}
