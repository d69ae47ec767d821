// The virtual board's third internal network, `guest` (issue #14; declared in board/virtual/primary.yaml and
// secondary.yaml: guest0, vhid 3, rules that let guests reach the internet but not the LAN, a DHCP scope) and
// the probes the networks test and the demo run from the `guest` client namespace. The board always wires
// guest0 (board.ts); a node uses it when its config declares interfaces.guest.
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { VIP, type VirtualBoard } from './board.js';
import { poll } from './wait.js';

export const GUEST = {
  vip: VIP.guest, vhid: VIP.guestVhid, range: { from: '192.168.20.150', to: '192.168.20.199' },
} as const;

export interface GuestLease { event: string; ip: string; router: string; dns: string; serverid: string; t: number }

/** Probes from the guest client namespace: a DHCP client, DNS through its VIP, TCP to the WAN server, the LAN. */
export class GuestProbes {
  readonly dir: string;
  private dhcp: ChildProcess | null = null;
  constructor(readonly board: VirtualBoard) { this.dir = path.join(board.runDir, 'guest-probes'); }

  get dhcpLog(): string { return path.join(this.dir, 'udhcpc.jsonl'); }
  /** udhcpc's own messages ("sending renew to server X", "broadcasting renew", ...): how a renew went. */
  get dhcpOut(): string { return path.join(this.dir, 'udhcpc.out'); }
  dhcpOutput(): string { try { return readFileSync(this.dhcpOut, 'utf8'); } catch { return ''; } }

  /** busybox udhcpc on the guest's eth0; each event a JSON line in dhcpLog; bound/renew set the address and route. */
  startDhcpClient(): void {
    mkdirSync(this.dir, { recursive: true });
    const script = path.join(this.dir, 'udhcpc.sh');
    writeFileSync(script, `#!/bin/sh
printf '{"event":"%s","ip":"%s","router":"%s","dns":"%s","serverid":"%s","t":%s}\\n' "$1" "$ip" "$router" "$dns" "$serverid" "$(date +%s%3N)" >> ${this.dhcpLog}
case "$1" in bound|renew) ip addr replace "$ip/$mask" dev "$interface"; ip route replace default via "$router" ;; esac
exit 0
`);
    chmodSync(script, 0o755);
    writeFileSync(this.dhcpLog, '');
    // -T 3 as the LAN client's (demo/gateway.ts): a unicast renew gets 3 s before udhcpc falls back to broadcasts.
    const out = openSync(this.dhcpOut, 'w');
    this.dhcp = this.board.spawn('guest', 'busybox', ['udhcpc', '-f', '-i', 'eth0', '-s', script, '-t', '10', '-T', '3', '-A', '3'], { stdio: ['ignore', out, out] });
    closeSync(out);
  }

  /** Ask udhcpc to renew its lease now (its SIGUSR1), as it does by itself at T1. */
  renewDhcp(): void { this.dhcp?.kill('SIGUSR1'); }

  stopDhcpClient(): void { this.dhcp?.kill('SIGTERM'); this.dhcp = null; }

  leases(): GuestLease[] {
    try { return readFileSync(this.dhcpLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as GuestLease); } catch { return []; }
  }

  /** Wait (bounded) for a bound/renew event, after `since` (epoch ms) if given. */
  async waitLease(timeoutMs: number, since = 0): Promise<GuestLease | null> {
    return await poll(() => this.leases().find((x) => x.t >= since && (x.event === 'bound' || x.event === 'renew')), timeoutMs, 100);
  }

  /** An A query from the guest to `server` (default: the guest VIP). */
  async dns(name: string, server: string = GUEST.vip): Promise<string[]> {
    const r = await this.board.execAsync('guest', 'dig', ['+short', '+time=1', '+tries=2', `@${server}`, name, 'A'], { timeoutMs: 6000 });
    return r.status === 0 ? r.stdout.split('\n').map((s) => s.trim()).filter((s) => /^\d+\.\d+\.\d+\.\d+$/.test(s)) : [];
  }

  /** A TCP connection from the guest: what the peer answered (the whoami service prints the source it sees), or null. */
  async tcp(host: string, port: number, timeoutS = 2): Promise<string | null> {
    const r = await this.board.execAsync('guest', 'socat', ['-T', String(timeoutS), '-', `TCP:${host}:${port},connect-timeout=${timeoutS}`], { timeoutMs: timeoutS * 1000 + 3000, input: '' });
    return r.status === 0 ? r.stdout.trim() : null;
  }

  /** One ping from the guest (true when answered). */
  async ping(host: string): Promise<boolean> {
    const r = await this.board.execAsync('guest', 'ping', ['-c', '1', '-W', '1', host], { timeoutMs: 4000 });
    return r.status === 0;
  }
}
