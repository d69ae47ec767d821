// Putting a compiled ruleset in force: one `nft -f FILE` (a single kernel transaction, so a refused ruleset
// leaves the previous one untouched), then the conntrack sysctls the stateful ruleset depends on.
// Other features ask `firewallApplied()` / `whenFirewallApplied()` before relying on the ruleset.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { FAMILY, TABLE, type Compiled, type Origin } from './compile.js';

export class FirewallApplyError extends Error {
  readonly code = 'DG_ERR_FIREWALL_REFUSED';
  constructor(message: string, readonly problems: { line: number; origin?: Origin; error: string }[], readonly nftOutput: string) { super(message); }
}

export interface AppliedInfo { applied: boolean; at: string | null; rules: number; file: string | null; applyMs: number | null }
let applied: AppliedInfo = { applied: false, at: null, rules: 0, file: null, applyMs: null };
const waiters: (() => void)[] = [];

/** Is duogate's ruleset (stateful filter + NAT) in force in this process's namespace? */
export function firewallApplied(): AppliedInfo { return { ...applied }; }

/** Resolves once the ruleset is in force (at once if it is); rejects after timeoutMs. */
export function whenFirewallApplied(timeoutMs = 10_000): Promise<void> {
  if (applied.applied) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { const i = waiters.indexOf(done); if (i >= 0) waiters.splice(i, 1); reject(new Error(`firewall not applied after ${timeoutMs} ms: check the firewall service's log`)); }, timeoutMs);
    const done = () => { clearTimeout(t); resolve(); };
    waiters.push(done);
  });
}

/** Marks the ruleset as gone (the service stopped and removed it). */
export function markFirewallRemoved(): void { applied = { applied: false, at: null, rules: 0, file: null, applyMs: null }; }

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const cp = execFile(cmd, args, { timeout: 20_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as any).code === 'number' ? (err as any).code : -1) : 0;
      resolve({ code, stdout, stderr: stderr || (err && code === -1 ? err.message : '') });
    });
    if (input !== undefined) cp.stdin?.end(input);
  });
}

/** `FILE:LINE:COL-COL: Error: msg` lines of nft's output, mapped back to config origins. */
export function mapNftErrors(stderr: string, c: Compiled): { line: number; origin?: Origin; error: string }[] {
  const out: { line: number; origin?: Origin; error: string }[] = [];
  for (const m of stderr.matchAll(/^[^\n:]*:(\d+):[\d-]+: Error: ([^\n]*)$/gm)) {
    const line = Number(m[1]);
    out.push({ line, origin: c.origins.get(line), error: m[2]! });
  }
  return out;
}

/**
 * Apply a compiled ruleset atomically. The file is kept at `file` (for reading, and for `nft -f` by hand).
 * Throws FirewallApplyError naming the config field of each refused line; the previous ruleset stays in force.
 */
export async function applyRuleset(c: Compiled, file: string): Promise<AppliedInfo> {
  mkdirSync(path.dirname(file), { recursive: true });
  const next = `${file}.next`;
  writeFileSync(next, c.text, { mode: 0o600 });
  const t0 = performance.now();
  const r = await run('nft', ['-f', next]);
  if (r.code !== 0) {
    const problems = mapNftErrors(r.stderr, c);
    const what = problems.length
      ? problems.map((p) => `${p.origin ? p.origin.field + (p.origin.description ? ` ("${p.origin.description}")` : '') : `generated line ${p.line}`}: ${p.error}`).join('; ')
      : r.stderr.trim() || `nft exited ${r.code}`;
    throw new FirewallApplyError(`ruleset refused, the previous ruleset stays in force: ${what} (generated file ${next})`, problems, r.stderr);
  }
  const applyMs = performance.now() - t0;
  writeFileAtomic(file, c.text);
  setConntrackSysctls();
  applied = { applied: true, at: new Date().toISOString(), rules: c.origins.size, file, applyMs: Math.round(applyMs * 10) / 10 };
  for (const w of waiters.splice(0)) w();
  return firewallApplied();
}

/**
 * tcp_loose=0: a packet of a flow the node has no state for never creates one mid-stream (it is INVALID /
 * new-not-SYN and dropped). be_liberal=0: windows are checked. Per namespace; exist once conntrack is loaded,
 * which the ruleset's `ct` expressions do.
 */
export function setConntrackSysctls(): void {
  for (const [k, v] of [['nf_conntrack_tcp_loose', '0'], ['nf_conntrack_tcp_be_liberal', '0']]) {
    const p = `/proc/sys/net/netfilter/${k}`;
    writeFileSync(p, v);
    const got = readFileSync(p, 'utf8').trim();
    if (got !== v) throw new Error(`sysctl net.netfilter.${k} is ${got} after writing ${v}`);
  }
}

/** Remove duogate's table (daemon stop). Other tables are left alone. */
export async function removeRuleset(): Promise<void> {
  await run('nft', ['delete', 'table', FAMILY, TABLE]);
  markFirewallRemoved();
}

/** The ruleset in force, with counters (`nft list table`). */
export async function listRuleset(json = false): Promise<string> {
  const r = await run('nft', [...(json ? ['-j'] : []), 'list', 'table', FAMILY, TABLE]);
  if (r.code !== 0) throw new Error(`no duogate ruleset in force (nft: ${r.stderr.trim()}); is the daemon running with a firewall section?`);
  return r.stdout;
}
