// How each chaos fault is done and undone on the virtual board. inject() returns once the fault is in place;
// undo() once it is over (power back and the daemon started, cable replugged, ...), which is where the fault's
// settle bound (schedule.ts) starts. Each returns a short note for the report (what happened, what was refused).
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { request } from '../../host/control/client.js';
import type { NodeName, VirtualBoard } from '../virtual/board.js';
import { Firmware, ROOT, CLI } from '../virtual/firmware.js';
import { killPids, netnsPids } from '../virtual/netns.js';
import type { PlannedFault } from './schedule.js';

/**
 * The board's firmware, every daemon started with the clock preload (clock-step.mjs), its offset in
 * runDir/chaos/clock-<node>; 0 until a clock_step fault writes ±1 day there.
 */
export class ChaosFirmware extends Firmware {
  clockFile(node: NodeName): string { return path.join(this.board.runDir, 'chaos', `clock-${node}`); }
  setClock(node: NodeName, shiftMs: number): void {
    mkdirSync(path.dirname(this.clockFile(node)), { recursive: true });
    writeFileSync(this.clockFile(node), String(shiftMs));
  }
  override async start(node: NodeName, timeoutMs = 15_000): Promise<void> {
    const argv = ['--import', path.join(ROOT, 'board/chaos/clock-step.mjs'), ...this.argv(node)];
    this.board.startNode(node, argv, { DUOGATE_CHAOS_CLOCK_FILE: this.clockFile(node) });
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const p = this.board.nodeProcess(node);
      if (p && (p.exitCode !== null || p.signalCode !== null)) throw new Error(`${node}: duogate exited (${p.exitCode ?? p.signalCode}) during start; log ${this.board.logPath(node)}\n${this.tail(node)}`);
      try { await this.status(node); return; } catch { await sleep(100); }
    }
    throw new Error(`${node}: duogate did not answer on ${this.socket(node)} within ${timeoutMs} ms; log ${this.board.logPath(node)}`);
  }
  running(node: NodeName): boolean {
    const p = this.board.nodeProcess(node);
    return !!p && p.exitCode === null && p.signalCode === null;
  }
}

export interface FaultCtx { board: VirtualBoard; fw: ChaosFirmware }

/** State a fault keeps between inject and undo. */
const frozen = new Map<NodeName, number[]>();
let reorder: ChildProcess | null = null;

const SYNC_PORTS = ['p-primary', 'p-secondary'];

/** nftables netdev ingress chains on both ports of the sync cable, one rule each. */
function syncRules(board: VirtualBoard, rule: string): void {
  const chains = SYNC_PORTS.map((p) => `  chain in_${p.replace('-', '_')} { type filter hook ingress device "${p}" priority 0; ${rule}; }`);
  board.exec('synccable', 'nft', ['-f', '-'], { input: `table netdev chaos {\n${chains.join('\n')}\n}\n`, check: true });
}
function clearSyncRules(board: VirtualBoard): void {
  board.exec('synccable', 'nft', ['delete', 'table', 'netdev', 'chaos']);
}

export async function inject(f: PlannedFault, c: FaultCtx): Promise<string> {
  const { board, fw } = c;
  const n = f.node;
  switch (f.kind) {
    case 'power_cut': await board.powerOff(n); return `${n} powered off`;
    case 'cable_lan': board.pullCable(n, 'lan'); return `${n} LAN cable pulled`;
    case 'cable_wan': board.pullCable(n, 'wan'); return `${n} WAN cable pulled`;
    case 'cable_sync': board.pullCable(n, 'sync'); return 'sync cable pulled';
    case 'freeze': {
      // Everything of the node, except the harness's own short commands that happen to be in its namespace
      // (children of this process other than the daemon): freezing those would stall the harness.
      const daemon = board.nodeProcess(n)?.pid;
      const pids = netnsPids(board.nsName(n)).filter((p) => p === daemon || ppid(p) !== process.pid);
      killPids(pids, 'SIGSTOP');
      frozen.set(n, pids);
      return `${n}: ${pids.length} processes stopped`;
    }
    case 'kill9': {
      const cp = board.nodeProcess(n);
      if (!fw.running(n) || !cp) return `${n}: duogate not running`;
      const gone = new Promise((r) => cp.once('exit', r));
      cp.kill('SIGKILL');
      await Promise.race([gone, sleep(3000)]);
      return `${n}: duogate pid ${cp.pid} killed -9`;
    }
    case 'restart': {
      const r = await board.stopNode(n, 'SIGTERM', 10_000);
      await fw.start(n);
      return `${n}: duogate stopped (${r.code ?? r.signal}${r.forced ? ', forced' : ''}) and started`;
    }
    case 'maintenance': return `${n}: ${await cli(board, fw, n, ['maintenance', 'enter'])}`;
    case 'clock_step': fw.setClock(n, f.param); return `${n}: wall clock ${f.param > 0 ? '+' : '-'}1 day`;
    case 'sync_loss': syncRules(board, `numgen random mod 100 < ${f.param} drop`); return `sync link drops ${f.param} %`;
    case 'sync_reorder': {
      reorder = board.spawn('synccable', '/usr/bin/python3', [path.join(ROOT, 'board/chaos/reorder.py'), 'rord0', '2', '20', String(f.param)], { stdio: ['ignore', 'pipe', 'pipe'] });
      const ready = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 5000);
        reorder!.stdout!.once('data', () => { clearTimeout(t); resolve(true); });
        reorder!.once('exit', () => { clearTimeout(t); resolve(false); });
      });
      if (!ready) throw new Error('sync_reorder: reorder.py did not start (python3, /dev/net/tun)');
      board.exec('synccable', 'ip', ['link', 'set', 'rord0', 'master', 'br0', 'up'], { check: true });
      board.exec('synccable', 'bridge', ['link', 'set', 'dev', 'rord0', 'learning', 'off', 'flood', 'off', 'mcast_flood', 'off', 'bcast_flood', 'off'], { check: true });
      syncRules(board, `meta pkttype unicast numgen random mod 100 < ${f.param} fwd to "rord0"`);
      return `sync link delays ${f.param} % of unicast frames by 2-20 ms`;
    }
    case 'kea_kill': case 'unbound_kill': {
      const st = await fw.status(n).catch(() => null);
      const pid: number | undefined = f.kind === 'kea_kill' ? st?.dhcp?.kea?.pid : st?.dns?.unbound?.pid;
      if (!pid) return `${n}: daemon down or ${f.kind === 'kea_kill' ? 'Kea' : 'unbound'} not running`;
      killPids([pid], 'SIGKILL');
      return `${n}: ${f.kind === 'kea_kill' ? 'kea-dhcp4' : 'unbound'} pid ${pid} killed -9`;
    }
    case 'config_valid': {
      const cfg = YAML.parse(readFileSync(fw.configFile('primary'), 'utf8'));
      const port = 7000 + (f.param % 900);
      cfg.firewall.rules.lan = [{ action: 'block', protocol: 'tcp', source: 'lan net', destination: 'wan_server', destination_port: port, log: false, description: `chaos push ${f.n}` }, ...cfg.firewall.rules.lan];
      try {
        const r = await request(fw.socket('primary'), { cmd: 'config.apply', text: YAML.stringify(cfg), file: 'chaos', description: `chaos #${f.n}: block tcp/${port}`, write_file: false }, 30_000);
        return `applied as revision #${r.seq}`;
      } catch (e) { return `not delivered: ${(e as Error).message.slice(0, 120)}`; }
    }
    case 'config_invalid': {
      const text = invalidConfig(readFileSync(fw.configFile('primary'), 'utf8'), f.param);
      try {
        const r = await request(fw.socket('primary'), { cmd: 'config.apply', text, file: 'chaos', description: `chaos #${f.n}: invalid`, write_file: false }, 30_000);
        return `ACCEPTED as revision #${r?.seq}`;
      } catch (e) {
        const err = e as Error & { code?: string };
        return /ECONNREFUSED|ENOENT|timed out|not answer|NO_DAEMON|not running/i.test(`${err.code} ${err.message}`) ? `not delivered: ${err.message.slice(0, 120)}` : `refused: ${err.code ?? ''} ${err.message.slice(0, 120)}`;
      }
    }
  }
}

export async function undo(f: PlannedFault, c: FaultCtx): Promise<string> {
  const { board, fw } = c;
  const n = f.node;
  switch (f.kind) {
    case 'power_cut': await board.powerOn(n); await fw.start(n); return 'powered on, duogate started';
    case 'cable_lan': board.plugCable(n, 'lan'); return 'replugged';
    case 'cable_wan': board.plugCable(n, 'wan'); return 'replugged';
    case 'cable_sync': board.plugCable(n, 'sync'); return 'replugged';
    case 'freeze': killPids(frozen.get(n) ?? [], 'SIGCONT'); frozen.delete(n); return 'thawed';
    case 'kill9': if (!fw.running(n)) await fw.start(n); return 'duogate started again';
    case 'maintenance': return await cli(board, fw, n, ['maintenance', 'leave']);
    case 'clock_step': fw.setClock(n, 0); return 'clock stepped back';
    case 'sync_loss': clearSyncRules(board); return 'loss rules removed';
    case 'sync_reorder': {
      clearSyncRules(board);
      const p = reorder; reorder = null;
      if (p && p.exitCode === null) { const gone = new Promise((r) => p.once('exit', r)); p.kill('SIGTERM'); await Promise.race([gone, sleep(2000)]); }
      return 'reorder rules removed';
    }
    default: return '';
  }
}

/** Undo whatever may still be in place (the run is ending or failed): thaw, replug, clear the sync rules. */
export async function undoAll(c: FaultCtx): Promise<void> {
  for (const [, pids] of frozen) killPids(pids, 'SIGCONT');
  frozen.clear();
  try { clearSyncRules(c.board); } catch { /* none */ }
  if (reorder && reorder.exitCode === null) reorder.kill('SIGTERM');
}

/** `duogate ...` in the node's namespace, the way an operator runs it; its first output line. */
async function cli(board: VirtualBoard, fw: Firmware, node: NodeName, args: string[]): Promise<string> {
  const r = await board.execAsync(node, process.execPath, [CLI, ...args, '--socket', fw.socket(node), '--config', fw.configFile(node), '--state-dir', fw.stateDir(node)], { timeoutMs: 15_000 });
  const line = (r.stdout.trim() || r.stderr.trim()).split('\n')[0] ?? '';
  return r.status === 0 ? line : `FAILED (${r.status}): ${line}`;
}

/** Three ways a config can be wrong; each must be refused with an error and change nothing. */
export function invalidConfig(text: string, variant: number): string {
  const cfg = YAML.parse(text);
  switch (variant % 3) {
    case 0: cfg.firewall.rules.lan = [{ action: 'pass', protocol: 'tcp', source: 'lan net', destination: '1.2.3.4/99' }, ...cfg.firewall.rules.lan]; return YAML.stringify(cfg);
    case 1: cfg.carp.vips[0].vhid = 300; return YAML.stringify(cfg);
    default: return `${text}\nfirewall: [unclosed\n`;
  }
}

function ppid(pid: number): number {
  try { return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]); } catch { return -1; }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
