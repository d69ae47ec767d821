// Shared set-up for the state sync end-to-end tests: a virtual board with a minimal stateful ruleset
// (stateful forward, invalid dropped, tcp_loose=0, SNAT LAN→WAN to the WAN VIP — what the firewall
// issue describes), both nodes running duogate with CARP + statesync, and the tcpload tool.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { VirtualBoard, sleep } from '../../board/virtual/board.js';
import { request } from '../../host/control/client.js';

export type Node = 'primary' | 'secondary';
export const NODES: Node[] = ['primary', 'secondary'];
export const KEY = 'e2e-statesync-key-0123456789';

export const RULESET = `
table inet ssfw {
  chain input { type filter hook input priority 0; policy accept; ct state invalid counter drop; }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    ct state invalid counter drop
    iifname "lan0" oifname "wan0" tcp flags & (syn|ack|fin|rst) == syn accept
    iifname "lan0" oifname "wan0" meta l4proto { udp, icmp } accept
  }
  chain postrouting { type nat hook postrouting priority 100; oifname "wan0" ip saddr 192.168.1.0/24 snat ip to 203.0.113.1; }
}
`;

export function configYaml(board: VirtualBoard, node: Node, statesync: Record<string, unknown> | null): string {
  const p = node === 'primary';
  const me = p ? { wan: '203.0.113.2', lan: '192.168.1.2', sync: '172.16.1.1' } : { wan: '203.0.113.3', lan: '192.168.1.3', sync: '172.16.1.2' };
  const peer = p ? { wan: '203.0.113.3', lan: '192.168.1.3', sync: '172.16.1.2' } : { wan: '203.0.113.2', lan: '192.168.1.2', sync: '172.16.1.1' };
  const skew = p ? 0 : 100;
  const lines = [
    'schema: 1',
    `node: { name: ${node}, role: ${node} }`,
    'interfaces:',
    `  wan: { device: wan0, address: ${me.wan}/24, peer: ${peer.wan} }`,
    `  lan: { device: lan0, address: ${me.lan}/24, peer: ${peer.lan} }`,
    `  sync: { device: sync0, address: ${me.sync}/30, peer: ${peer.sync} }`,
    'carp:',
    '  preempt: true',
    '  vips:',
    `    - { interface: lan, vhid: 1, address: 192.168.1.1/24, password: lan-secret, advbase: 1, advskew: ${skew} }`,
    `    - { interface: wan, vhid: 2, address: 203.0.113.1/24, password: wan-secret, advbase: 1, advskew: ${skew} }`,
    `control: { socket: ${join(board.runDir, node + '.sock')} }`,
    `state_dir: ${join(board.runDir, node + '-state')}`,
    'log: { level: info }',
  ];
  if (statesync) lines.push(`statesync: ${JSON.stringify(statesync)}`);
  return lines.join('\n') + '\n';
}

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
      writeFileSync(this.files[n], configYaml(this.board, n, this.statesync));
      this.prepare(n);
    }
    this.server = this.board.spawn('server', process.execPath, ['--import', 'tsx', 'board/virtual/tcpload.ts', 'server'], { stdio: 'ignore' });
  }

  start(node: Node): void {
    this.board.startNode(node, ['--import', 'tsx', 'host/cli.ts', 'run', '--config', this.files[node]]);
  }

  async status(node: Node): Promise<any> {
    return await request(join(this.board.runDir, node + '.sock'), { cmd: 'status' }, 2000);
  }

  /** Poll until `fn(status)` holds (bounded). */
  async until(node: Node, fn: (s: any) => boolean, ms: number): Promise<any> {
    const end = Date.now() + ms;
    let last: any = null;
    for (let i = 0; i < 2000 && Date.now() < end; i++) {
      try { last = await this.status(node); if (fn(last)) return last; } catch { /* not up yet */ }
      await sleep(100);
    }
    throw new Error(`${node}: condition not met in ${ms} ms; last status: ${JSON.stringify(last?.statesync ?? last)?.slice(0, 600)}`);
  }

  /** Both daemons up, primary MASTER of both vhids, secondary BACKUP. */
  async startPair(): Promise<void> {
    this.start('primary'); this.start('secondary');
    await this.until('secondary', (s) => s.carp_role === 'BACKUP', 15000);
    await this.until('primary', (s) => s.carp_role === 'MASTER', 15000);
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
