// Shared set-up for the state sync end-to-end tests: a virtual board with a minimal stateful ruleset
// (stateful forward, invalid dropped, tcp_loose=0, SNAT LAN→WAN to the WAN VIP — what the firewall
// issue describes), both nodes running duogate with CARP + statesync, and the tcpload tool.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { VirtualBoard, sleep } from '../../board/virtual/board.js';
import { request } from '../../host/control/client.js';
import { waitFor } from '../../board/virtual/wait.js';

export type Node = 'primary' | 'secondary';
export const NODES: Node[] = ['primary', 'secondary'];
export const KEY = 'e2e-statesync-key-0123456789';

import { configYaml, RULESET, linksUp } from '../bench/statesync-board.js';

export { RULESET };

export class Lab {
  readonly board: VirtualBoard;
  files: Record<Node, string> = { primary: '', secondary: '' };
  server: ChildProcess | null = null;
  constructor(prefix: string, readonly statesync: Record<string, unknown> | null) { this.board = new VirtualBoard({ prefix }); }

  /** Firewall + sysctls the way the gateway issue sets them; needed again after every power-on. */
  prepare(node: Node): void {
    this.board.sysctl(node, { 'net.netfilter.nf_conntrack_tcp_loose': '0' });
    this.board.exec(node, 'nft', ['-f', '-'], { input: RULESET, check: true });
    this.board.sysctl(node, { 'net.netfilter.nf_conntrack_tcp_loose': '0' });
  }

  async up(): Promise<void> {
    await this.board.up();
    // With outbound NAT the server needs no route back to the LAN: replies go to the WAN VIP.
    this.board.exec('server', 'ip', ['route', 'del', '192.168.1.0/24'], {});
    for (const n of NODES) {
      this.files[n] = join(this.board.runDir, `${n}-statesync.yaml`);
      writeFileSync(this.files[n], configYaml(this.board.runDir, n, this.statesync));
      this.prepare(n);
    }
    this.server = this.board.spawn('server', process.execPath, ['--import', 'tsx', 'board/virtual/tcpload.ts', 'server'], { stdio: 'ignore' });
  }

  async start(node: Node): Promise<void> {
    await linksUp(this.board, node);
    this.board.startNode(node, ['--import', 'tsx', 'host/cli.ts', 'run', '--config', this.files[node]]);
  }

  async status(node: Node): Promise<any> {
    return await request(join(this.board.runDir, node + '.sock'), { cmd: 'status' }, 2000);
  }

  /** Poll until `fn(status)` holds (bounded). */
  async until(node: Node, fn: (s: any) => boolean, ms: number): Promise<any> {
    let last: any = null;
    return await waitFor(`${node}: a status condition`, async () => { last = await this.status(node); return fn(last) ? last : null; }, ms, 100,
      () => `last status: ${JSON.stringify(last?.statesync ?? last)?.slice(0, 600)}`);
  }

  /** Both daemons up, primary MASTER of both vhids, secondary BACKUP. */
  async startPair(): Promise<void> {
    await this.start('primary'); await this.start('secondary');
    await this.until('secondary', (s) => s.carp_role === 'BACKUP', 15000);
    await this.until('primary', (s) => s.carp_role === 'MASTER', 15000);
  }

  /**
   * Board up, the pair elected, and the primary's bulk on join over, in one of the states `ends` (the failover
   * tests also accept 'timeout').
   */
  async startSynced(ends: string[] = ['done']): Promise<void> {
    await this.up();
    await this.startPair();
    await this.until('primary', (s) => ends.includes(s.statesync?.bulk?.state), 10000);
  }

  /** conntrack -L of a node as "proto src dst sport dport" original tuples (sorted). */
  kernelTuples(node: Node, filter: (l: string) => boolean = () => true): string[] {
    const r = this.board.exec(node, 'conntrack', ['-L', '-f', 'ipv4', '-o', 'extended'], { timeoutMs: 10000 });
    return r.stdout.split('\n').filter((l) => l.trim() && filter(l)).map((l) => {
      const proto = l.split(/\s+/)[2];
      const f = (k: string) => l.match(new RegExp(`\\b${k}=(\\S+)`))?.[1] ?? '';
      return `${proto} ${f('src')} ${f('dst')} ${f('sport')} ${f('dport')}`;
    }).sort();
  }

  client(args: string[]): { cp: ChildProcess; result: Promise<any> } {
    const cp = this.board.spawn('client', process.execPath, ['--import', 'tsx', 'board/virtual/tcpload.ts', 'client', '--dst', '203.0.113.10', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    cp.stdout!.on('data', (d) => { out += d; });
    const result = new Promise<any>((resolve) => cp.on('exit', () => {
      const line = out.split('\n').find((l) => l.includes('"summary"'));
      resolve(line ? JSON.parse(line) : { summary: false, raw: out.slice(-500) });
    }));
    return { cp, result };
  }
}
