// The single-address WAN on the virtual board (`npm run demo -- --wan=dhcp`, test/e2e/wan-dhcp.test.ts): the node
// configs for it, and the capture that proves the BACKUP quiet. `backup_wan_frames` counts the frames a node sent
// into the WAN switch (tcpdump on its switch port, direction in: only what that node sent) whose Ethernet source
// is the virtual MAC, or that are DHCP (UDP port 67 or 68, from any MAC), at a moment when that node was not
// MASTER of the WAN vhid (its transition log, wall clock; 5 ms of slack for the two clocks' reading).
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { DHCP_WAN_ADDR, VIP, type NodeName, type VirtualBoard } from '../board.js';
import type { Firmware, NodeConfig } from '../firmware.js';

export const WAN_VMAC = `00:00:5e:00:01:0${VIP.wanVhid}`;

/** A board config made a single-address WAN: private node addresses, the WAN vhid virtual and leased. */
export function dhcpWanEdit(c: NodeConfig, n: NodeName): void {
  c.interfaces.wan = { ...c.interfaces.wan, address: DHCP_WAN_ADDR[n], peer: DHCP_WAN_ADDR[n === 'primary' ? 'secondary' : 'primary'].split('/')[0] };
  for (const v of c.carp.vips) if (v.interface === 'wan') { v.address = DHCP_WAN_ADDR.vip; v.mac = 'virtual'; }
  c.wan = { mode: 'dhcp', vhid: VIP.wanVhid };
}

export interface WanFrame { at: number; line: string; node?: NodeName }

/** tcpdump on both nodes' WAN switch ports for the whole run. */
export class WanCapture {
  readonly frames: Record<NodeName, WanFrame[]> = { primary: [], secondary: [] };
  private procs: ChildProcess[] = [];

  constructor(private readonly board: VirtualBoard) {}

  start(): void {
    for (const node of ['primary', 'secondary'] as NodeName[]) {
      const p = this.board.spawn('wansw', 'tcpdump', ['-i', `p-${node}`, '-Q', 'in', '-nn', '-tt', '-l', '-e', `ether src ${WAN_VMAC} or udp port 67 or udp port 68`], { stdio: ['ignore', 'pipe', 'ignore'] });
      createInterface({ input: p.stdout! }).on('line', (l) => { const s = Number(l.split(' ')[0]); if (s > 0) this.frames[node].push({ at: s * 1000, line: l }); });
      this.procs.push(p);
    }
  }

  stop(): void { for (const p of this.procs) p.kill('SIGTERM'); this.procs = []; }

  /** Frames each node sent while it was not MASTER of the WAN vhid (backup_wan_frames is their sum), and all it sent. */
  backupFrames(fw: Firmware, end: number): { backup_wan_frames: number; offending: WanFrame[]; seen: Record<NodeName, number> } {
    const offending: WanFrame[] = [];
    for (const node of ['primary', 'secondary'] as NodeName[]) {
      const wins = masterWindows(fw, node, end);
      offending.push(...this.frames[node].filter((f) => !wins.some(([a, b]) => f.at >= a - 5 && f.at <= b + 5)).map((f) => ({ ...f, node })));
    }
    return { backup_wan_frames: offending.length, offending, seen: { primary: this.frames.primary.length, secondary: this.frames.secondary.length } };
  }
}

/** When `node` was MASTER of the WAN vhid (wall ms), from its transition log; an open window ends at `end`. */
export function masterWindows(fw: Firmware, node: NodeName, end: number): [number, number][] {
  const out: [number, number][] = [];
  let from: number | null = null;
  for (const tr of fw.transitions(node)) {
    if (tr.vhid !== VIP.wanVhid) continue;
    if (tr.to === 'MASTER' && from === null) from = tr.wall_ms;
    else if (tr.to !== 'MASTER' && from !== null) { out.push([from, tr.wall_ms]); from = null; }
  }
  if (from !== null) out.push([from, end]);
  return out;
}
