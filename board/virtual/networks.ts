// The virtual board's third internal network, `guest` (issue #14): its node config (interfaces.guest, vhid 3,
// rules that let guests reach the internet but not the LAN, a DHCP scope) and the probes the networks test and
// the demo run from the `guest` client namespace. The board always wires guest0 (board.ts); a node uses it
// only when its config declares interfaces.guest, which addGuest() adds to a test's copy of the board configs.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { GUEST_ADDR, VIP, type NodeName, type VirtualBoard } from './board.js';
import { poll } from './wait.js';

export const GUEST = {
  vip: VIP.guest, vhid: VIP.guestVhid, range: { from: '192.168.20.150', to: '192.168.20.199' },
  peer: (n: NodeName) => GUEST_ADDR[n === 'primary' ? 'secondary' : 'primary'].split('/')[0]!,
} as const;

type Doc = Record<string, any>;

/** Add the guest network to a node's config (a Firmware.writeConfigs `edit`). */
export function addGuest(c: Doc, n: NodeName): void {
  c.interfaces = { ...c.interfaces, guest: { device: 'guest0', address: GUEST_ADDR[n], peer: GUEST.peer(n) } };
  const skew = n === 'primary' ? 0 : 100;
  c.carp.vips = [...c.carp.vips, {
    interface: 'guest', vhid: GUEST.vhid, address: `${GUEST.vip}/24`, password: 'guest-carp-secret', advbase: 1, advskew: skew, description: 'Guest gateway',
  }];
  if (c.firewall) {
    c.firewall.rules = {
      ...c.firewall.rules,
      // pfSense semantics: these filter what enters on guest0. The LAN first, then anything else (the internet).
      guest: [
        { action: 'block', protocol: 'any', source: 'guest net', destination: 'lan net', description: 'Guests never reach the LAN' },
        { action: 'pass', protocol: 'any', source: 'guest net', destination: 'any', description: 'Guests reach the internet' },
      ],
    };
  }
  if (c.dhcp) c.dhcp.networks = { guest: { range: GUEST.range } };
}

export interface GuestLease { event: string; ip: string; router: string; dns: string; t: number }

/** Probes from the guest client namespace: a DHCP client, DNS through its VIP, TCP to the WAN server, the LAN. */
export class GuestProbes {
  readonly dir: string;
  private dhcp: ChildProcess | null = null;
  constructor(readonly board: VirtualBoard) { this.dir = path.join(board.runDir, 'guest-probes'); }

  get dhcpLog(): string { return path.join(this.dir, 'udhcpc.jsonl'); }

  /** busybox udhcpc on the guest's eth0; each event a JSON line in dhcpLog; bound/renew set the address and route. */
  startDhcpClient(): void {
    mkdirSync(this.dir, { recursive: true });
    const script = path.join(this.dir, 'udhcpc.sh');
    writeFileSync(script, `#!/bin/sh
printf '{"event":"%s","ip":"%s","router":"%s","dns":"%s","t":%s}\\n' "$1" "$ip" "$router" "$dns" "$(date +%s%3N)" >> ${this.dhcpLog}
case "$1" in bound|renew) ip addr replace "$ip/$mask" dev "$interface"; ip route replace default via "$router" ;; esac
exit 0
`);
    chmodSync(script, 0o755);
    writeFileSync(this.dhcpLog, '');
    this.dhcp = this.board.spawn('guest', 'busybox', ['udhcpc', '-f', '-i', 'eth0', '-s', script, '-t', '20', '-T', '1', '-A', '1'], { stdio: 'ignore' });
  }

  stopDhcpClient(): void { this.dhcp?.kill('SIGTERM'); this.dhcp = null; }

  leases(): GuestLease[] {
    try { return readFileSync(this.dhcpLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as GuestLease); } catch { return []; }
  }

  async waitLease(timeoutMs: number): Promise<GuestLease | null> {
    return await poll(() => this.leases().find((x) => x.event === 'bound' || x.event === 'renew'), timeoutMs, 100);
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
