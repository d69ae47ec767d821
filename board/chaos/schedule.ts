// The chaos plan: which faults, in which order, held how long, all from one seed (mulberry32). The plan is a
// pure function of (seed, minutes) so a run can be repeated; the runner (chaos.ts) decides the exact instants,
// because a fault may only start when the concurrency rule below allows it.
//
// Concurrency rule (docs/chaos.md): faults are in four classes and at most one fault of each class is in
// progress at any time, so up to four overlap.
//   node     power cut, LAN/WAN cable, freeze, duogate kill -9, duogate restart, maintenance, clock step —
//            one node at a time, and only once the pair has recovered from the previous one (both daemons
//            answer, one MASTER per VIP, state sync's bulk done): the pair can always recover, one node is whole.
//   sync     sync cable pulled, sync-link loss, sync-link reordering.
//   service  Kea or unbound killed.
//   config   a config push (valid or invalid) to the primary.
import type { NodeName } from '../virtual/board.js';

export type FaultKind =
  | 'power_cut' | 'cable_lan' | 'cable_wan' | 'freeze' | 'kill9' | 'restart' | 'maintenance' | 'clock_step'
  | 'cable_sync' | 'sync_loss' | 'sync_reorder'
  | 'kea_kill' | 'unbound_kill'
  | 'config_valid' | 'config_invalid';
export type FaultClass = 'node' | 'sync' | 'service' | 'config';

export const KINDS: Record<FaultKind, { cls: FaultClass; settleMs: number; survivable: boolean; what: string }> = {
  // settleMs: after the fault is over (power back and daemon started, cable replugged, node thawed, ...), the
  // pair must satisfy every invariant within this bound. survivable: state sync is meant to carry established
  // sessions through it (a session lost to it is a violation); for the others losses are counted only.
  power_cut: { cls: 'node', settleMs: 20_000, survivable: true, what: 'power cut, power on, duogate started' },
  cable_lan: { cls: 'node', settleMs: 10_000, survivable: true, what: 'LAN cable pulled and replugged' },
  cable_wan: { cls: 'node', settleMs: 10_000, survivable: true, what: 'WAN cable pulled and replugged' },
  freeze: { cls: 'node', settleMs: 12_000, survivable: true, what: 'every process of the node SIGSTOPped, then SIGCONT' },
  kill9: { cls: 'node', settleMs: 20_000, survivable: true, what: 'duogate SIGKILLed, restarted 3 s later (RestartSec)' },
  restart: { cls: 'node', settleMs: 20_000, survivable: true, what: 'duogate SIGTERM (bow-out) and started again' },
  maintenance: { cls: 'node', settleMs: 10_000, survivable: true, what: 'maintenance enter, later leave (CLI)' },
  clock_step: { cls: 'node', settleMs: 10_000, survivable: false, what: "the daemon's wall clock stepped ±1 day, later back" },
  cable_sync: { cls: 'sync', settleMs: 10_000, survivable: false, what: 'sync cable pulled and replugged' },
  sync_loss: { cls: 'sync', settleMs: 10_000, survivable: false, what: 'sync link drops 1-30 % of frames (nft numgen)' },
  sync_reorder: { cls: 'sync', settleMs: 10_000, survivable: false, what: 'sync link delays 5-30 % of frames 2-20 ms (nft numgen + TAP)' },
  kea_kill: { cls: 'service', settleMs: 12_000, survivable: false, what: 'kea-dhcp4 SIGKILLed (the daemon restarts it)' },
  unbound_kill: { cls: 'service', settleMs: 12_000, survivable: false, what: 'unbound SIGKILLed (the daemon restarts it)' },
  config_valid: { cls: 'config', settleMs: 10_000, survivable: false, what: 'a valid firewall change applied on the primary' },
  config_invalid: { cls: 'config', settleMs: 5_000, survivable: false, what: 'an invalid config applied on the primary (must be refused)' },
};
export const ALL_KINDS = Object.keys(KINDS) as FaultKind[];

export interface PlannedFault {
  n: number;
  kind: FaultKind;
  node: NodeName;
  /** Earliest start, ms from the start of the fault window (node faults: the gap after the pair recovered). */
  atMs: number;
  /** How long the fault is held before it is undone (0 for instant ones). */
  holdMs: number;
  /** Kind-specific: loss/reorder percent, clock step sign, config variant. */
  param: number;
}

/** mulberry32: small, fast, and the same sequence on every machine for a seed. */
export class Rng {
  private s: number;
  constructor(seed: number) { this.s = (seed >>> 0) ^ 0x6d2b79f5; }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  pick<T>(a: readonly T[]): T { return a[Math.floor(this.next() * a.length)]!; }
  shuffle<T>(a: T[]): T[] { for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(this.next() * (i + 1)); [a[i], a[j]] = [a[j]!, a[i]!]; } return a; }
}

/**
 * The plan for a fault window of `windowMs`. Every kind comes once, in a seeded order, before any comes twice,
 * so a short run still injects all of them; then kinds are drawn at random until the window is full. Short
 * windows (< 5 min) use short holds and gaps so all kinds fit. `only` restricts the plan to some kinds (a
 * reproduction: `--only kill9`).
 */
export function plan(seed: number, windowMs: number, only: readonly FaultKind[] = ALL_KINDS): PlannedFault[] {
  const rng = new Rng(seed);
  const short = windowMs < 300_000;
  const out: PlannedFault[] = [];
  const perClass = new Map<FaultClass, FaultKind[]>();
  for (const k of ALL_KINDS.filter((x) => only.includes(x))) perClass.set(KINDS[k].cls, [...(perClass.get(KINDS[k].cls) ?? []), k]);
  for (const [cls, kinds] of perClass) {
    const order = rng.shuffle([...kinds]);
    if (cls === 'node') {
      // A queue: each waits for the pair to recover from the one before, so atMs is the gap after recovery.
      // As many as fit at about one per 9 s (short runs) or 25 s, every kind once first.
      const n = Math.max(order.length, Math.floor(windowMs / (short ? 9_000 : 25_000)));
      for (let i = 0; i < n; i++) {
        const kind = i < order.length ? order[i]! : rng.pick(kinds);
        out.push(fault(kind, rng.int(short ? 1_000 : 3_000, short ? 3_000 : 30_000), rng, short));
      }
      continue;
    }
    // The first round spread evenly (over 80 % of a short window, about a minute per kind in a long one), then
    // random gaps until the window is full.
    const span = short ? windowMs * 0.8 : Math.min(windowMs * 0.8, order.length * 60_000);
    let t = 0;
    for (let i = 0; ; i++) {
      const at = i < order.length
        ? Math.floor((span * i) / order.length) + rng.int(1_000, Math.max(1_000, Math.floor((span * 0.5) / order.length)))
        : t + rng.int(short ? 3_000 : 10_000, short ? 10_000 : 60_000);
      if (at > windowMs - 5_000) break;
      const f = fault(i < order.length ? order[i]! : rng.pick(kinds), at, rng, short);
      out.push(f);
      t = Math.max(t, at + f.holdMs);
    }
  }
  // Timed faults by time, then the node queue in its own order.
  const timed = out.filter((f) => KINDS[f.kind].cls !== 'node').sort((a, b) => a.atMs - b.atMs);
  const all = [...timed, ...out.filter((f) => KINDS[f.kind].cls === 'node')];
  all.forEach((f, i) => { f.n = i + 1; });
  return all;
}

function fault(kind: FaultKind, atMs: number, rng: Rng, short: boolean): PlannedFault {
  const node = rng.pick(['primary', 'secondary'] as const);
  // Config is edited on the primary (it pushes to the secondary), whatever node was drawn.
  return { n: 0, kind, node: KINDS[kind].cls === 'config' ? 'primary' : node, atMs, holdMs: holdFor(kind, rng, short), param: paramFor(kind, rng) };
}

function holdFor(kind: FaultKind, rng: Rng, short: boolean): number {
  const s = short ? 0.5 : 1;
  switch (kind) {
    case 'power_cut': return Math.round(rng.int(2_000, 8_000) * s);
    case 'cable_lan': case 'cable_wan': case 'cable_sync': return Math.round(rng.int(2_000, 10_000) * s);
    case 'freeze': return Math.round(rng.int(2_000, 6_000) * s);
    case 'kill9': return 3_000; // systemd's RestartSec (board/minipc/overlay/etc/systemd/system/duogate.service)
    case 'restart': return 0;
    case 'maintenance': return Math.round(rng.int(3_000, 10_000) * s);
    case 'clock_step': return Math.round(rng.int(4_000, 15_000) * s);
    case 'sync_loss': case 'sync_reorder': return Math.round(rng.int(5_000, 30_000) * s);
    default: return 0;
  }
}

function paramFor(kind: FaultKind, rng: Rng): number {
  switch (kind) {
    case 'sync_loss': return rng.int(1, 30);
    case 'sync_reorder': return rng.int(5, 30);
    case 'clock_step': return rng.next() < 0.5 ? -86_400_000 : 86_400_000;
    case 'config_invalid': return rng.int(0, 2);
    default: return rng.int(0, 1_000_000);
  }
}
