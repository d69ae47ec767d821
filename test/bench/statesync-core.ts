// The state sync core alone (no kernel, no sockets): how fast the WebAssembly core parses a dump, encodes the
// send queue and applies the peer's items, for IPv4 and IPv6 entries. The board bench (statesync.ts) is bound by
// the kernel's creates; this one shows the core's own cost per state, the figure a core change moves.
//   npm run bench -- --only=statesync_core, or, to compare another build of the core (A/B):
//   node --import tsx test/bench/statesync-core.ts [--core <path to a compiled host/statesync/core.js>] [--n 100000]
// Figures: per family, ns per state for parse (dump → table), encode (queue → wire items) and apply (wire items →
// table + ctnetlink requests), the median of 7 runs.
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { be32, enc, nest, nlmsg, tuple, tuple6, u8, type Attr } from '../helpers/netlink.js';
import { SyncCore as SourceCore } from '../../host/statesync/core.js';
import type { Bench } from './registry.js';

type Core = typeof SourceCore;
const RUNS = 7;

function entry(i: number, v6: boolean): Buffer {
  const sp = 1024 + (i % 60000); const dp = 443;
  const src = v6 ? `fd00:1::${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}` : `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
  const dst = v6 ? 'fd00:2::7' : '198.51.100.7';
  const attrs: Attr[] = v6
    ? [tuple6(1, src, dst, sp, dp), tuple6(2, dst, src, dp, sp)]
    : [tuple(1, src, dst, sp, dp), tuple(2, dst, '203.0.113.1', dp, sp)];
  attrs.push(be32(3, v6 ? 0x18e : 0x19e), be32(7, 431999), be32(8, 0));
  attrs.push(nest(4, [nest(1, [u8(1, 3), u8(2, 7), u8(3, 7), { type: 4, data: Buffer.from([0x23, 0]) }, { type: 5, data: Buffer.from([0x23, 0]) }])]));
  return nlmsg(0x100, 0x2, 1, 0, Buffer.concat([Buffer.from([v6 ? 10 : 2, 0, 0, 0]), ...attrs.map(enc)]));
}

/** The dump as chunks that each fit the core's receive buffer. */
function chunks(N: number, v6: boolean, cap: number): Buffer[] {
  const out: Buffer[] = []; let cur: Buffer[] = []; let len = 0;
  for (let i = 0; i < N; i++) {
    const m = entry(i, v6);
    if (len + m.length > cap) { out.push(Buffer.concat(cur)); cur = []; len = 0; }
    cur.push(m); len += m.length;
  }
  if (cur.length) out.push(Buffer.concat(cur));
  return out;
}

function run(SyncCore: Core, N: number, dump: Buffer[]): { parse: number; encode: number; apply: number; states: number } {
  const a = new SyncCore(N * 4); const b = new SyncCore(N * 4);
  let t = performance.now();
  for (const c of dump) { a.nlRx().set(c); a.x.ssHandleNetlink(1000, c.length, 1, 1); }
  const parse = performance.now() - t;
  const batches: Buffer[] = [];
  t = performance.now();
  for (;;) { const n = a.x.ssPollBatch(1000, 1412, 1); if (!n) break; batches.push(Buffer.from(a.txBatch())); }
  const encode = performance.now() - t;
  t = performance.now();
  for (const m of batches) {
    b.peerRx().set(m); b.x.ssApply(1000, m.length, 1);
    if (b.x.ssNlTxLen() > 256 * 1024) b.x.ssNlTxReset();
  }
  const apply = performance.now() - t;
  return { parse, encode, apply, states: b.x.ssCount() };
}

const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

/** ns per state for each step and family, the median of RUNS runs of `n` states. */
export function measureCore(SyncCore: Core, n: number): Record<string, unknown> {
  const out: Record<string, unknown> = { n };
  for (const v6 of [false, true]) {
    const dump = chunks(n, v6, new SyncCore(1024).x.ssNlRxCap());
    const rs = Array.from({ length: RUNS }, () => run(SyncCore, n, dump));
    const ns = (k: 'parse' | 'encode' | 'apply') => Math.round(med(rs.map((r) => r[k])) * 1e6 / n);
    out[v6 ? 'v6' : 'v4'] = { parse_ns: ns('parse'), encode_ns: ns('encode'), apply_ns: ns('apply'), states_applied: rs[0]!.states };
  }
  return out;
}

export const statesyncCoreBench: Bench = async (say) => {
  const r = measureCore(SourceCore, 100_000) as Record<'v4' | 'v6', Record<string, number>>;
  for (const f of ['v4', 'v6'] as const) say(`statesync core ${f}: parse ${r[f].parse_ns} ns, encode ${r[f].encode_ns} ns, apply ${r[f].apply_ns} ns per state`);
  return r;
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (k: string) => { const i = process.argv.indexOf(k); return i > 0 ? process.argv[i + 1] : undefined; };
  const corePath = arg('--core');
  const C = corePath ? (await import(pathToFileURL(corePath).href)).SyncCore as Core : SourceCore;
  console.log(JSON.stringify({ ...measureCore(C, Number(arg('--n') ?? 100_000)), core: corePath ?? 'source' }));
}
