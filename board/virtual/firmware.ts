// Running duogate on the virtual board: where each node's config, socket, state and log live, and the small
// waits the demo and the end-to-end tests share.
import { sleep, poll, waitFor } from './wait.js';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import YAML from 'yaml';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import type { NodeName, VirtualBoard } from './board.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repo root, from board/virtual (tsx) or dist/board/virtual (compiled). */
export const ROOT = path.resolve(here, existsSync(path.resolve(here, '../../package.json')) ? '../..' : '../../..');
export const CLI = path.join(ROOT, 'dist/host/cli.js');

export class Firmware {
  constructor(readonly board: VirtualBoard) {}

  /** A test may run a node with another config file than the board's own. */
  readonly configOverride: Partial<Record<NodeName, string>> = {};

  /** A test may run a node from another build's CLI (an older release: test/e2e/rolling-upgrade.test.ts). */
  readonly cliOverride: Partial<Record<NodeName, string>> = {};

  cliPath(node: NodeName): string { return this.cliOverride[node] ?? CLI; }

  configFile(node: NodeName): string { return this.configOverride[node] ?? path.join(ROOT, 'board/virtual', `${node}.yaml`); }
  socket(node: NodeName): string { return path.join(this.board.runDir, `${node}.sock`); }
  stateDir(node: NodeName): string { return path.join(this.board.runDir, 'state', node); }

  /** Forget persistent state (maintenance flag, config revisions) so a run starts from the committed configs. */
  resetState(): void { rmSync(path.join(this.board.runDir, 'state'), { recursive: true, force: true }); }

  /** The board's committed config of `node`, parsed (a fresh copy each call). */
  boardConfig(node: NodeName): NodeConfig {
    return YAML.parse(readFileSync(path.join(ROOT, 'board/virtual', `${node}.yaml`), 'utf8'));
  }

  /**
   * The one way a test makes node configs: the board's committed ones, reduced to the core sections plus
   * `keep` (a test of one feature runs without the others), then `edit`, written under runDir/`dir` and used
   * by start() and cli() from then on. Sections the edit leaves alone keep their comments. Returns the files.
   */
  writeConfigs(dir: string, opts: WriteConfigs = {}): Partial<Record<NodeName, string>> {
    mkdirSync(path.join(this.board.runDir, dir), { recursive: true });
    const keep = opts.keep === 'all' ? null : new Set<string>([...CORE_SECTIONS, ...(opts.keep ?? [])]);
    const out: Partial<Record<NodeName, string>> = {};
    for (const n of opts.nodes ?? (['primary', 'secondary'] as NodeName[])) {
      const doc = YAML.parseDocument(readFileSync(path.join(ROOT, 'board/virtual', `${n}.yaml`), 'utf8'));
      const orig = doc.toJSON() as NodeConfig;
      const c: NodeConfig = structuredClone(keep ? Object.fromEntries(Object.entries(orig).filter(([k]) => keep.has(k))) : orig);
      opts.edit?.(c, n);
      for (const k of Object.keys(orig)) if (!(k in c)) doc.delete(k);
      for (const [k, v] of Object.entries(c)) if (!isDeepStrictEqual(orig[k], v)) doc.set(k, v);
      const file = path.join(this.board.runDir, dir, `${n}.yaml`);
      writeFileSync(file, doc.toString({ lineWidth: 0 }));
      this.configOverride[n] = file;
      out[n] = file;
    }
    return out;
  }

  argv(node: NodeName, extra: string[] = []): string[] {
    return [this.cliPath(node), 'run', '--config', this.configFile(node), '--socket', this.socket(node), '--state-dir', this.stateDir(node), ...extra];
  }

  /**
   * Start the daemon in the node and wait (bounded) until its control socket answers. The socket opens once every
   * feature has started (Kea, unbound, the ruleset: 1-3 s here), which a loaded machine (two boards, a build)
   * stretched past 10 s: 30 s only delays the report of a daemon that never comes up.
   */
  async start(node: NodeName, timeoutMs = 30_000): Promise<void> {
    this.board.startNode(node, this.argv(node));
    const up = await poll(async () => {
      const p = this.board.nodeProcess(node);
      if (p && (p.exitCode !== null || p.signalCode !== null)) {
        throw new Error(`${node}: duogate exited (${p.exitCode ?? p.signalCode}) during start; log: ${this.board.logPath(node)}\n${this.tail(node)}`);
      }
      try { await this.status(node); return true; } catch { return false; }
    }, timeoutMs, 100);
    if (up) return;
    throw new Error(`${node}: duogate did not answer on ${this.socket(node)} within ${timeoutMs} ms; log: ${this.board.logPath(node)}\n${this.tail(node)}`);
  }

  async status(node: NodeName): Promise<any> {
    const { request } = await import('../../host/control/client.js');
    return await request(this.socket(node), { cmd: 'status' }, 2000);
  }

  /** Run the duogate CLI inside a node's namespace. */
  cli(node: NodeName, args: string[]): { status: number | null; stdout: string; stderr: string } {
    return this.board.exec(node, process.execPath, [this.cliPath(node), ...args, '--socket', this.socket(node), '--config', this.configFile(node), '--state-dir', this.stateDir(node)], { timeoutMs: 15_000 });
  }

  /** Both daemons started (the primary first) and converged: primary MASTER, secondary BACKUP. */
  async startPair(timeoutMs = 15_000): Promise<void> {
    await this.start('primary');
    await sleep(300);
    await this.start('secondary');
    if (!await this.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), timeoutMs)) {
      throw new Error(`the pair did not converge to primary=MASTER, secondary=BACKUP within ${timeoutMs} ms\nprimary:\n${this.tail('primary')}\nsecondary:\n${this.tail('secondary')}`);
    }
  }

  /** Each VIP's state on a node: { '1': 'MASTER', '2': 'MASTER' } ({} when the daemon does not answer). */
  async states(node: NodeName): Promise<Record<string, string>> {
    try {
      const s = await this.status(node);
      return Object.fromEntries(s.vips.map((v: any) => [String(v.vhid), v.state]));
    } catch { return {}; }
  }

  /** Wait until `pred` holds for the pair's states; returns them. Bounded by timeoutMs. */
  async waitStates(pred: (p: Record<string, string>, s: Record<string, string>) => boolean, timeoutMs: number, stepMs = 20): Promise<{ primary: Record<string, string>; secondary: Record<string, string> } | null> {
    return await poll(async () => {
      const [p, s] = await Promise.all([this.states('primary'), this.states('secondary')]);
      return pred(p, s) ? { primary: p, secondary: s } : null;
    }, timeoutMs, stepMs);
  }

  /** The daemon's transition log lines: [{vhid, from, to, wall_ms}]. */
  transitions(node: NodeName): { vhid: number; from: string; to: string; why: string; wall_ms: number }[] {
    let text = '';
    try { text = readFileSync(this.board.logPath(node), 'utf8'); } catch { return []; }
    const out = [];
    for (const line of text.split('\n')) {
      if (!line.includes('"carp transition"')) continue;
      try { out.push(JSON.parse(line)); } catch { /* a line cut by a power-off */ }
    }
    return out;
  }

  tail(node: NodeName, lines = 15): string {
    try { return readFileSync(this.board.logPath(node), 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return ''; }
  }
}

/** The sections every node config has; the rest belong to features. */
export const CORE_SECTIONS = ['schema', 'node', 'interfaces', 'carp', 'control', 'state_dir', 'log'] as const;

/** A node config as YAML gives it: sections by name. */
export type NodeConfig = Record<string, any>;

export interface WriteConfigs {
  /** Sections kept besides CORE_SECTIONS ('all': every section of the board's config). Default: none. */
  keep?: string[] | 'all';
  /** Change the config in place (add, replace or delete sections). */
  edit?: (c: NodeConfig, node: NodeName) => void;
  /** Which nodes' files are (re)written. Default: both. */
  nodes?: NodeName[];
}

export { sleep, poll, waitFor };
/** Every vhid the node reports (or those given) is in state `want`; false when the node reports none. */
export const allAre = (st: Record<string, string>, want: string, vhids: string[] = Object.keys(st)) => vhids.length > 0 && vhids.every((v) => st[v] === want);
