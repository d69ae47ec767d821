// Low-level helpers around iproute2 for the virtual board.
// Everything here acts only on named network namespaces; nothing touches the
// host's namespace except `ip netns add/del` bookkeeping and `ip link add ...
// netns A ... peer ... netns B`, which creates both veth ends directly inside
// their namespaces.
import { sleep } from './wait.js';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

export interface ExecResult {
  status: number;
  stdout: string;
  stderr: string;
  signal: NodeJS.Signals | null;
}

export class IpError extends Error {
  constructor(message: string, readonly stderr: string) {
    super(message);
    this.name = 'IpError';
  }
}

/** Run `ip [-n ns] args...`; throws IpError with ip's stderr on failure. */
export function ip(args: string[], ns?: string): string {
  const full = ns ? ['-n', ns, ...args] : args;
  const r = spawnSync('ip', full, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw new IpError(`ip ${full.join(' ')}: ${r.error.message}`, '');
  if (r.status !== 0) {
    throw new IpError(`ip ${full.join(' ')} failed (${r.status}): ${r.stderr.trim()}`, r.stderr);
  }
  return r.stdout;
}

/**
 * Run many ip commands in one process: `ip [-n ns] -batch -`.
 * With `force`, ip keeps going after a failing line (and still exits non-zero);
 * we then ignore the status, used for best-effort teardown.
 */
export function ipBatch(lines: string[], ns?: string, opts: { force?: boolean } = {}): void {
  if (lines.length === 0) return;
  const args = [...(ns ? ['-n', ns] : []), ...(opts.force ? ['-force'] : []), '-batch', '-'];
  const input = lines.join('\n') + '\n';
  const r = spawnSync('ip', args, { input, encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw new IpError(`ip ${args.join(' ')}: ${r.error.message}`, '');
  if (r.status !== 0 && !opts.force) {
    throw new IpError(
      `ip ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}\n--- batch ---\n${input}`,
      r.stderr,
    );
  }
}

/** Names of existing named namespaces (from /run/netns, no exec needed). */
export function listNetns(): string[] {
  const dir = '/run/netns';
  if (!existsSync(dir)) return [];
  return readdirSync(dir);
}

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

/**
 * PIDs of processes whose network namespace is `name`; same rule as
 * `ip netns pids` (compare /proc/PID/ns/net with /run/netns/NAME) but done
 * in-process, one /proc scan for any number of namespaces.
 */
export function netnsPids(name: string): number[] {
  return pidsIn([name]);
}

/** PIDs of processes in any of the named namespaces (one /proc scan). */
export function pidsIn(names: string[]): number[] {
  const inodes = new Set<string>();
  for (const n of names) {
    try {
      const st = statSync(`/run/netns/${n}`);
      inodes.add(`net:[${st.ino}]`);
    } catch {
      /* no such namespace */
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    try {
      if (inodes.has(readlinkSync(`/proc/${e}/ns/net`))) pids.push(pid);
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return pids;
}

/** Send `signal` to each pid, ignoring ones that are already gone. Returns the count signalled. */
export function killPids(pids: number[], signal: NodeJS.Signals | number): number {
  let n = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
      n++;
    } catch {
      /* gone already */
    }
  }
  return n;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); treat it as dead.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export { sleep };

/**
 * SIGKILL every process in the namespaces, repeating (bounded: 20 rounds, ~2 s)
 * until `ip netns pids` reports none, so a process forked mid-kill dies too.
 * Returns true if the namespaces ended up empty.
 */
export async function killAllIn(namespaces: string[], opts: { termFirstMs?: number } = {}): Promise<boolean> {
  const present = namespaces.filter(netnsExists);
  if (present.length === 0) return true;
  if (opts.termFirstMs && opts.termFirstMs > 0) {
    const pids = pidsIn(present);
    if (pids.length > 0) {
      killPids(pids, 'SIGTERM');
      const deadline = Date.now() + opts.termFirstMs;
      while (Date.now() < deadline && pidsIn(present).length > 0) await sleep(20);
    }
  }
  for (let round = 0; round < 20; round++) {
    const pids = pidsIn(present);
    if (pids.length === 0) return true;
    killPids(pids, 'SIGKILL');
    await sleep(round === 0 ? 5 : 100);
  }
  return pidsIn(present).length === 0;
}

/** Delete the given namespaces if present (one `ip -force -batch`). */
export function deleteNetns(namespaces: string[]): void {
  const present = namespaces.filter(netnsExists);
  ipBatch(present.map((n) => `netns del ${n}`), undefined, { force: true });
}
