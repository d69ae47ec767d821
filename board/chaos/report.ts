// The chaos run's result: per fault kind, times injected, the LAN client's outage (longest gap between echo
// replies from the fault's start to the end of its settle bound) p50/p95/max, long sessions lost (those that
// died in the fault's window; whether a loss is a violation is the invariants' call), violations attributed.
import { ALL_KINDS, type FaultKind } from './schedule.js';
import type { Violation } from './invariants.js';

export interface FaultRecord {
  n: number; kind: FaultKind; node: string; start: number; end: number | null; settleUntil: number | null;
  inject: string; undo: string; outageMs: number | null; sessionsLost: number;
}

export interface KindRow { kind: FaultKind; injected: number; outage_p50_ms: number | null; outage_p95_ms: number | null; outage_max_ms: number | null; sessions_lost: number; violations: number }

export function pct(sorted: number[], p: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function rows(faults: FaultRecord[], violations: Violation[]): KindRow[] {
  return ALL_KINDS.map((kind) => {
    const fs = faults.filter((f) => f.kind === kind);
    const out = fs.map((f) => f.outageMs).filter((x): x is number => x !== null).sort((a, b) => a - b);
    const ids = new Set(fs.map((f) => f.n));
    return {
      kind, injected: fs.length,
      outage_p50_ms: pct(out, 50), outage_p95_ms: pct(out, 95), outage_max_ms: out.length ? out[out.length - 1]! : null,
      sessions_lost: fs.reduce((a, f) => a + f.sessionsLost, 0),
      violations: violations.filter((v) => v.faults.some((n) => ids.has(n))).length,
    };
  });
}

export function table(r: KindRow[]): string {
  const head = ['fault', 'injected', 'outage p50', 'p95', 'max (ms)', 'sessions lost', 'violations'];
  const body = r.map((x) => [x.kind, String(x.injected), fmt(x.outage_p50_ms), fmt(x.outage_p95_ms), fmt(x.outage_max_ms), String(x.sessions_lost), String(x.violations)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]) => c.map((s, i) => (i === 0 ? s.padEnd(w[i]!) : s.padStart(w[i]!))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

const fmt = (v: number | null) => (v === null ? '-' : String(Math.round(v)));
