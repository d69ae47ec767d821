// The virtual board's single-address ISP (docs/wan.md): kea-dhcp4 in the WAN server's namespace hands exactly
// one address per client identifier (a reservation, no pool: any other client gets nothing) and is the router
// for it (203.0.113.10, the server itself). Started and stopped by PID; `move()` changes the reserved address
// (SIGHUP: Kea reloads its config), as an ISP that renumbers its customer does.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VirtualBoard } from './board.js';
import { ADDR } from './board.js';
import { killPids, pidAlive } from './netns.js';
import { poll } from './wait.js';

export interface IspOptions {
  /** Option 61 the reservation is for, as hex (default: 01 + the virtual MAC of vhid 2). */
  clientId?: string;
  /** The one address it hands (default 203.0.113.1). */
  address?: string;
  /** Lease time in seconds (default 60: renewals at 30 s happen within a test). */
  leaseS?: number;
}

export const ISP_ROUTER = ADDR.server.eth0.split('/')[0];

export class Isp {
  readonly dir: string;
  private cp: ChildProcess | null = null;
  private opts: Required<IspOptions>;

  constructor(private readonly board: VirtualBoard, o: IspOptions = {}) {
    this.dir = join(board.runDir, 'isp');
    this.opts = { clientId: o.clientId ?? '0100005e000102', address: o.address ?? '203.0.113.1', leaseS: o.leaseS ?? 60 };
  }

  get address(): string { return this.opts.address; }
  get pid(): number | undefined { return this.cp?.pid; }
  get log(): string { return join(this.dir, 'kea.log'); }

  private config(): string {
    const l = this.opts.leaseS;
    const cid = this.opts.clientId.match(/../g)!.join(':');
    return JSON.stringify({
      Dhcp4: {
        'interfaces-config': { interfaces: ['eth0'], 'dhcp-socket-type': 'raw' },
        'lease-database': { type: 'memfile', persist: true, name: join(this.dir, 'leases4.csv'), 'lfc-interval': 0 },
        'host-reservation-identifiers': ['client-id'],
        'valid-lifetime': l, 'renew-timer': Math.floor(l / 2), 'rebind-timer': Math.floor((l * 7) / 8),
        subnet4: [{
          id: 1, subnet: '203.0.113.0/24', pools: [],
          'option-data': [{ name: 'routers', data: ISP_ROUTER }, { name: 'domain-name-servers', data: ISP_ROUTER }],
          reservations: [{ 'client-id': cid, 'ip-address': this.opts.address }],
        }],
        loggers: [{ name: 'kea-dhcp4', output_options: [{ output: join(this.dir, 'kea.log') }], severity: 'INFO' }],
      },
    }, null, 1);
  }

  private env() {
    return { ...process.env, KEA_PIDFILE_DIR: this.dir, KEA_LOCKFILE_DIR: this.dir, KEA_CONTROL_SOCKET_DIR: this.dir, KEA_DHCP_DATA_DIR: this.dir };
  }

  /** Start Kea in the server namespace; resolves once it listens (its log says so), bounded. */
  async start(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true, mode: 0o750 });
    writeFileSync(join(this.dir, 'kea-dhcp4.json'), this.config());
    const out = openSync(join(this.dir, 'kea.stdout'), 'a');
    try {
      this.cp = this.board.spawn('server', 'kea-dhcp4', ['-c', join(this.dir, 'kea-dhcp4.json')], { stdio: ['ignore', out, out], env: this.env() });
    } finally { closeSync(out); }
    const { readFileSync } = await import('node:fs');
    const up = await poll(() => {
      if (this.cp?.exitCode !== null) throw new Error(`lab ISP: kea-dhcp4 exited (${this.cp?.exitCode}); see ${this.dir}`);
      try { return /DHCP4_STARTED|DHCP4_CONFIG_COMPLETE/.test(readFileSync(this.log, 'utf8')); } catch { return false; }
    }, 10_000, 50);
    if (!up) throw new Error(`lab ISP: kea-dhcp4 did not start within 10 s; see ${this.dir}`);
  }

  /** The ISP renumbers: the reservation moves to `address` (Kea reloads its config on SIGHUP). */
  move(address: string): void {
    this.opts.address = address;
    writeFileSync(join(this.dir, 'kea-dhcp4.json'), this.config());
    if (this.cp?.pid) killPids([this.cp.pid], 'SIGHUP');
  }

  /** Stop Kea by its PID (bounded). */
  async stop(): Promise<void> {
    const pid = this.cp?.pid;
    if (!pid) return;
    killPids([pid], 'SIGTERM');
    if (!await poll(() => !pidAlive(pid), 3000, 50)) killPids([pid], 'SIGKILL');
    this.cp = null;
  }
}
