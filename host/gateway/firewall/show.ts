// `duogate firewall show`: the ruleset in force, read back from the kernel (not from the config), with each
// rule's counters.
import { execFileSync } from 'node:child_process';
import { FAMILY, TABLE } from './compile.js';

export interface RuleCounter { chain: string; comment: string; packets: number; bytes: number; handle: number }

/** Per-rule counters of duogate's table (`nft -j list table`). */
export function ruleCounters(): RuleCounter[] {
  let out: string;
  try {
    out = execFileSync('nft', ['-j', 'list', 'table', FAMILY, TABLE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`no duogate ruleset in force here (${String((e as any).stderr ?? e).trim()}); run inside the node's namespace, with the daemon started`);
  }
  const rows: RuleCounter[] = [];
  for (const item of (JSON.parse(out).nftables ?? []) as any[]) {
    const r = item.rule;
    if (!r) continue;
    const ctr = (r.expr as any[]).find((x) => x.counter)?.counter;
    if (!ctr) continue;
    rows.push({ chain: r.chain, comment: r.comment ?? '', packets: ctr.packets, bytes: ctr.bytes, handle: r.handle });
  }
  return rows;
}

/** One counter by the rule's comment (exact) in a chain; undefined if absent. */
export function counterOf(chain: string, comment: string): RuleCounter | undefined {
  return ruleCounters().find((r) => r.chain === chain && r.comment === comment);
}
