// The chaos harness's traffic: pings every 10 ms (board/virtual/pinger.ts), 20 long checksummed TCP sessions
// and a stream of short connections (sessions.ts), DNS queries to the LAN VIP (dig, once a second), and three
// DHCP clients (busybox udhcpc, each in its own namespace `${prefix}-dhcN` wired to the LAN switch) renewing
// at random. The WAN server runs the demo's test services (unbound test zone) and tcpload's echo server.
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { VirtualBoard } from '../virtual/board.js';
import { ROOT } from '../virtual/firmware.js';
import { Pinger } from '../virtual/pinger.js';
import { GatewayProbes, TEST_ZONE } from '../virtual/demo/gateway.js';
import { deleteNetns, ipBatch, killAllIn } from '../virtual/netns.js';
import type { Rng } from './schedule.js';

export interface SessionLoss { id: number; t: number; since: number; opened: number; established: boolean; why: string }
export interface Short { t: number; ok: boolean; ms: number; why: string }
export interface DnsQuery { t: number; ok: boolean }
export interface DhcpEv { client: string; event: string; ip: string; t: number }

export const DHCP_CLIENTS = 3;

export class Traffic {
  readonly pinger: Pinger;
  readonly losses: SessionLoss[] = [];
  readonly shorts: Short[] = [];
  readonly dns: DnsQuery[] = [];
  opened = 0;
  alive = 0;
  renewsAsked = 0;
  private sessions: ChildProcess | null = null;
  private readonly dhcp: ChildProcess[] = [];
  private timers: NodeJS.Timeout[] = [];
  private readonly dir: string;
  private stopped = false;

  constructor(readonly board: VirtualBoard, private readonly rng: Rng) {
    this.pinger = new Pinger(board, 10);
    this.dir = path.join(board.runDir, 'chaos');
  }

  dhcpNs(i: number): string { return `${this.board.prefix}-dhc${i}`; }
  dhcpLog(i: number): string { return path.join(this.dir, `udhcpc-${i}.jsonl`); }

  /** Services on the WAN server (before the firmware converges: nothing here needs it). */
  async startServer(): Promise<void> {
    await new GatewayProbes(this.board).startServer();
    this.board.spawn('server', process.execPath, [path.join(ROOT, 'dist/board/virtual/tcpload.js'), 'server'], { stdio: 'ignore' });
    for (let i = 0; i < 50 && !this.board.exec('server', 'ss', ['-Hlnt']).stdout.includes(':5000 '); i++) await sleep(100);
  }

  start(durationMs: number): void {
    mkdirSync(this.dir, { recursive: true });
    this.pinger.start(durationMs);
    this.sessions = this.board.spawn('client', process.execPath, [path.join(ROOT, 'dist/board/chaos/sessions.js'), '--sessions', '20', '--short-per-s', '5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    createInterface({ input: this.sessions.stdout! }).on('line', (line) => {
      let o: any; try { o = JSON.parse(line); } catch { return; }
      if (o.ev === 'lost') this.losses.push(o);
      else if (o.ev === 'short') this.shorts.push(o);
      else if (o.ev === 'open') this.opened++;
      else if (o.ev === 'tick') this.alive = o.alive;
    });
    const dnsLoop = setInterval(() => {
      const t = Date.now();
      void this.board.execAsync('client', 'dig', ['+short', '+time=1', '+tries=1', '@192.168.1.1', TEST_ZONE.name, 'A'], { timeoutMs: 4000 })
        .then((r) => { if (!this.stopped) this.dns.push({ t, ok: r.status === 0 && r.stdout.includes(TEST_ZONE.address) }); });
    }, 1000);
    this.timers.push(dnsLoop);
    void this.startDhcp();
    // Renewals: every 5-10 s one client (at random) is asked to renew now (udhcpc's SIGUSR1).
    const renew = () => {
      if (this.stopped) return;
      const i = this.rng.int(0, DHCP_CLIENTS - 1);
      if (this.dhcp[i]?.exitCode === null) { this.dhcp[i]!.kill('SIGUSR1'); this.renewsAsked++; }
      this.timers.push(setTimeout(renew, this.rng.int(5_000, 10_000)));
    };
    this.timers.push(setTimeout(renew, 5_000));
  }

  private async startDhcp(): Promise<void> {
    const script = path.join(this.dir, 'udhcpc.sh');
    writeFileSync(script, `#!/bin/sh
# udhcpc event hook: record the event as a JSON line (file in $CHAOS_LOG); put a bound/renewed lease on the NIC.
printf '{"event":"%s","ip":"%s","t":%s}\\n' "$1" "$ip" "$(date +%s%3N)" >> "$CHAOS_LOG"
case "$1" in bound|renew) ip addr replace "$ip/$mask" dev "$interface" ;; deconfig) ip addr flush dev "$interface" ;; esac
exit 0
`);
    chmodSync(script, 0o755);
    for (let i = 1; i <= DHCP_CLIENTS; i++) {
      const ns = this.dhcpNs(i);
      await killAllIn([ns]); deleteNetns([ns]);
      // A host of its own on the LAN switch: a veth with both ends created inside board namespaces.
      ipBatch([`netns add ${ns}`, `link add eth0 netns ${ns} address 02:d6:0a:01:00:0${i} type veth peer name p-dhc${i} netns ${this.board.nsName('lansw')}`]);
      ipBatch(['link set lo up', 'link set eth0 up'], ns);
      ipBatch([`link set p-dhc${i} master br0`, `link set p-dhc${i} up`], this.board.nsName('lansw'));
      writeFileSync(this.dhcpLog(i), '');
      this.dhcp.push(this.board.spawn(ns, 'busybox', ['udhcpc', '-f', '-i', 'eth0', '-s', script, '-t', '5', '-T', '2', '-A', '2'], { stdio: 'ignore', env: { ...process.env, CHAOS_LOG: this.dhcpLog(i) } }));
    }
  }

  dhcpEvents(): DhcpEv[] {
    const out: DhcpEv[] = [];
    for (let i = 1; i <= DHCP_CLIENTS; i++) {
      try {
        for (const l of readFileSync(this.dhcpLog(i), 'utf8').split('\n')) if (l) { try { out.push({ client: `dhc${i}`, ...JSON.parse(l) }); } catch { /* cut line */ } }
      } catch { /* not yet */ }
    }
    return out.sort((a, b) => a.t - b.t);
  }

  /** Each client's address now, from its events (bound/renew set it, deconfig/leasefail/nak clear it). */
  dhcpBound(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.dhcpEvents()) {
      if (e.event === 'bound' || e.event === 'renew') out[e.client] = e.ip;
      else if (e.event === 'deconfig' || e.event === 'leasefail' || e.event === 'nak') out[e.client] = '';
    }
    return out;
  }

  lastReplyAgeMs(now = Date.now()): number {
    const r = this.pinger.replies;
    return r.length ? now - r[r.length - 1]!.recv : Infinity;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) { clearInterval(t); clearTimeout(t); }
    await this.pinger.stop();
    const s = this.sessions;
    if (s && s.exitCode === null) { const gone = new Promise((r) => s.once('exit', r)); s.kill('SIGTERM'); await Promise.race([gone, sleep(2000)]); }
    for (const d of this.dhcp) if (d.exitCode === null) d.kill('SIGTERM');
    const names = Array.from({ length: DHCP_CLIENTS }, (_, i) => this.dhcpNs(i + 1));
    await killAllIn(names, { termFirstMs: 300 });
    deleteNetns(names);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
