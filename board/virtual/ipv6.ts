// IPv6 on the virtual board (docs/carp.md "IPv6 routing"): the pair's dual-stack configuration and the clients'
// side of it. The LAN vhid carries 2001:db8:1::1/64 and the router address fe80::1 beside its IPv4 VIP, the WAN
// vhid 2001:db8:ff::1/64; each node has its own global address on both (global6); the MASTER advertises 2001:db8:1::/64 (SLAAC) with fe80::1 as router and the LAN VIP
// as DNS. The WAN server plays the ISP: fe80::10 is the pair's upstream router (interfaces.wan.gateway6) and it
// routes the LAN prefix to the WAN VIP, as an ISP routes a customer's prefix to the customer's address.
// The board's committed configs stay IPv4-only; the demo and the IPv6 tests add this part (dualStack).
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { VIP, type NodeName, type VirtualBoard } from './board.js';
import type { NodeConfig } from './firmware.js';
import { sleep } from './wait.js';

export const V6 = {
  lanPrefix: '2001:db8:1::/64', lanVip: '2001:db8:1::1', router: 'fe80::1',
  wanVip: '2001:db8:ff::1', server: '2001:db8:ff::10', upstream: 'fe80::10',
  /** Each node's link-local CARP source, the same on LAN and WAN (each NIC is its own link). */
  ll: { primary: 'fe80::2', secondary: 'fe80::3' } as Record<NodeName, string>,
  /** Each node's own global addresses (global6): its own traffic, a BACKUP's too. */
  lan: { primary: '2001:db8:1::2', secondary: '2001:db8:1::3' } as Record<NodeName, string>,
  wan: { primary: '2001:db8:ff::2', secondary: '2001:db8:ff::3' } as Record<NodeName, string>,
} as const;

/** A config edit: the board's config made dual-stack (see the header). `raInterval`: the RA's MaxRtrAdvInterval. */
export function dualStack(c: NodeConfig, n: NodeName, raInterval = 30): void {
  const other: NodeName = n === 'primary' ? 'secondary' : 'primary';
  for (const net of ['lan', 'wan']) {
    c.interfaces[net].address6 = V6.ll[n];
    c.interfaces[net].peer6 = V6.ll[other];
    c.interfaces[net].global6 = `${(net === 'lan' ? V6.lan : V6.wan)[n]}/64`;
  }
  c.interfaces.wan.gateway6 = V6.upstream;
  const lan = c.carp.vips.find((v: { vhid: number }) => v.vhid === VIP.lanVhid);
  const wan = c.carp.vips.find((v: { vhid: number }) => v.vhid === VIP.wanVhid);
  c.carp.vips.push(
    { ...lan, address: `${V6.lanVip}/64`, description: 'LAN gateway (IPv6)' },
    { ...lan, address: `${V6.router}/64`, description: 'LAN router (link-local)' },
    { ...wan, address: `${V6.wanVip}/64`, description: 'WAN address (IPv6)' },
  );
  c.ra = { vhid: VIP.lanVhid, prefixes: [V6.lanPrefix], interval_max: raInterval };
}

/**
 * The clients' side, after board.up(): the server gets its addresses and the route to the LAN prefix via the WAN
 * VIP; the LAN client becomes a SLAAC host (accepts RAs, makes its addresses from the prefix, no DAD wait).
 */
export function ipv6Up(board: VirtualBoard): void {
  board.exec('server', 'ip', ['-6', 'addr', 'add', `${V6.server}/64`, 'dev', 'eth0', 'nodad'], { check: true });
  board.exec('server', 'ip', ['-6', 'addr', 'add', `${V6.upstream}/64`, 'dev', 'eth0', 'nodad'], { check: true });
  board.exec('server', 'ip', ['-6', 'route', 'add', V6.lanPrefix, 'via', V6.wanVip, 'dev', 'eth0'], { check: true });
  board.sysctl('client', {
    'net.ipv6.conf.eth0.accept_dad': '0', 'net.ipv6.conf.eth0.accept_ra': '1',
    'net.ipv6.conf.eth0.autoconf': '1', 'net.ipv6.conf.eth0.addr_gen_mode': '0',
  });
}

/** The client's SLAAC address in the LAN prefix and its default IPv6 router, once both are there (bounded). */
export async function waitSlaac(board: VirtualBoard, timeoutMs: number): Promise<{ address: string | null; router: string | null }> {
  let address: string | null = null;
  let router: string | null = null;
  for (const end = Date.now() + timeoutMs; Date.now() < end && !(address && router);) {
    address = /inet6 (2001:db8:1:0:[0-9a-f:]+)\/64/.exec(board.exec('client', 'ip', ['-6', 'addr', 'show', 'dev', 'eth0']).stdout)?.[1] ?? null;
    router = defaultRouter6(board);
    if (!(address && router)) await sleep(100);
  }
  return { address, router };
}

/** The LAN client's default IPv6 router (null for none). */
export function defaultRouter6(board: VirtualBoard): string | null {
  const r = board.exec('client', 'ip', ['-6', '-j', 'route', 'show', 'default', 'dev', 'eth0']);
  try { return (JSON.parse(r.stdout || '[]') as { gateway?: string }[])[0]?.gateway ?? null; } catch { return null; }
}

/** tcpdump on the LAN switch port facing a node: wall times (ms) of the router advertisements it sent. */
export function raCapture(board: VirtualBoard, node: NodeName): { times: number[]; proc: ChildProcess } {
  const times: number[] = [];
  const proc = board.spawn('lansw', 'tcpdump', ['-i', `p-${node}`, '-Q', 'in', '-nn', '-tt', '-l', 'icmp6 and ip6[40] == 134'], { stdio: ['ignore', 'pipe', 'ignore'] });
  createInterface({ input: proc.stdout! }).on('line', (l) => { const s = Number(l.split(' ')[0]); if (s > 0) times.push(s * 1000); });
  return { times, proc };
}

/**
 * Router advertisements a node sent while it was not MASTER of the vhid: `masters` are its MASTER intervals
 * (wall ms) from its transition log; a capture timestamp may lead the log line by a few ms.
 */
export function rasOutsideMaster(times: number[], masters: [number, number][]): number {
  return times.filter((t) => !masters.some(([a, b]) => t >= a - 20 && t <= b + 50)).length;
}

/** A node's MASTER intervals of one vhid from its transition log lines (an open one ends at `end`). */
export function masterIntervals(transitions: { vhid: number; to: string; wall_ms: number }[], vhid: number, end: number): [number, number][] {
  const out: [number, number][] = [];
  let open: number | null = null;
  for (const t of transitions) {
    if (t.vhid !== vhid) continue;
    if (t.to === 'MASTER') open ??= t.wall_ms;
    else if (open !== null) { out.push([open, t.wall_ms]); open = null; }
  }
  if (open !== null) out.push([open, end]);
  return out;
}
