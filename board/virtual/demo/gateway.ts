// The gateway's part of the virtual-board demo, and the probes the gateway e2e test shares with it:
// a test DNS zone and a "who is connecting" TCP service on the WAN server, a real DHCP client (busybox udhcpc)
// in the LAN client, and DNS queries (dig) through the LAN VIP.
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { VirtualBoard } from '../board.js';
import type { DemoPlugin } from './plugin.js';
import { sleep, poll } from '../wait.js';

export const TEST_ZONE = { name: 'www.test.example', address: '203.0.113.80' } as const;
export const WHOAMI_PORT = 9000;
export const ECHO_PORT = 9001;
export const BLOCKED_PORT = 8081;

export interface DhcpEvent { event: string; ip: string; router: string; dns: string; serverid: string; lease: string; t: number }


export class GatewayProbes {
  readonly dir: string;
  private dhcp: ChildProcess | null = null;
  constructor(readonly board: VirtualBoard) { this.dir = path.join(board.runDir, 'gateway-probes'); }

  /**
   * On the WAN server: an unbound serving the test zone (an authoritative answer for TEST_ZONE from
   * local-data), a TCP service answering each connection with the peer address it sees, and a TCP echo.
   * Plus, on 8081, a listener the LAN must not reach (the block rule's target).
   */
  async startServer(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const conf = path.join(this.dir, 'server-unbound.conf');
    writeFileSync(conf, [
      'server:', '  interface: 203.0.113.10', '  port: 53', '  do-ip6: no', '  chroot: ""', '  username: ""',
      `  directory: "${this.dir}"`, `  pidfile: "${this.dir}/server-unbound.pid"`, '  do-daemonize: no', '  use-syslog: no', '  logfile: ""',
      '  access-control: 0.0.0.0/0 allow', '  module-config: "iterator"',
      '  local-zone: "test.example." static', `  local-data: "${TEST_ZONE.name}. 60 IN A ${TEST_ZONE.address}"`,
      'remote-control:', '  control-enable: no', '',
    ].join('\n'));
    this.board.spawn('server', 'unbound', ['-d', '-c', conf], { stdio: 'ignore' });
    this.board.spawn('server', 'socat', [`TCP-LISTEN:${WHOAMI_PORT},fork,reuseaddr`, 'SYSTEM:echo $SOCAT_PEERADDR'], { stdio: 'ignore' });
    this.board.spawn('server', 'socat', [`TCP-LISTEN:${ECHO_PORT},fork,reuseaddr`, 'PIPE'], { stdio: 'ignore' });
    this.board.spawn('server', 'socat', [`TCP-LISTEN:${BLOCKED_PORT},fork,reuseaddr`, 'SYSTEM:echo open'], { stdio: 'ignore' });
    for (let i = 0; i < 50; i++) {
      const ss = this.board.exec('server', 'ss', ['-Hlntu']).stdout;
      if ([':53 ', `:${WHOAMI_PORT} `, `:${ECHO_PORT} `, `:${BLOCKED_PORT} `].every((p) => ss.includes(p))) return;
      await sleep(50);
    }
    throw new Error('WAN server test services did not start (unbound/socat)');
  }

  /** Connect from the LAN client to the WAN server's whoami port: the source address the server saw, or null. */
  async whoami(timeoutS = 2): Promise<string | null> {
    const r = await this.board.execAsync('client', 'socat', ['-T', String(timeoutS), '-', `TCP:203.0.113.10:${WHOAMI_PORT},connect-timeout=${timeoutS}`], { timeoutMs: timeoutS * 1000 + 3000, input: '' });
    return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
  }

  /** Can the LAN client open a TCP connection to the server's port? */
  async tcpOpen(port: number, timeoutS = 1): Promise<boolean> {
    const r = await this.board.execAsync('client', 'socat', ['-T', String(timeoutS), '-', `TCP:203.0.113.10:${port},connect-timeout=${timeoutS}`], { timeoutMs: timeoutS * 1000 + 3000, input: '' });
    return r.status === 0;
  }

  /** An A query for `name` from the LAN client to the LAN VIP: the addresses answered ([] if none). */
  async dns(name = TEST_ZONE.name, server = '192.168.1.1'): Promise<string[]> {
    const r = await this.board.execAsync('client', 'dig', ['+short', '+time=1', '+tries=2', `@${server}`, name, 'A'], { timeoutMs: 6000 });
    return r.status === 0 ? r.stdout.split('\n').map((s) => s.trim()).filter((s) => /^\d+\.\d+\.\d+\.\d+$/.test(s)) : [];
  }

  get dhcpLog(): string { return path.join(this.dir, 'udhcpc.jsonl'); }
  /** udhcpc's own messages ("sending renew to server X", "broadcasting renew", ...): how a renew went. */
  get dhcpOut(): string { return path.join(this.dir, 'udhcpc.out'); }
  dhcpOutput(): string { try { return readFileSync(this.dhcpOut, 'utf8'); } catch { return ''; } }

  /** Start busybox udhcpc on the client's eth0; every event lands as a JSON line in dhcpLog. */
  startDhcpClient(): void {
    mkdirSync(this.dir, { recursive: true });
    const script = path.join(this.dir, 'udhcpc.sh');
    writeFileSync(script, `#!/bin/sh
# udhcpc event hook: record the event; on bound/renew put the leased address on the interface.
printf '{"event":"%s","ip":"%s","router":"%s","dns":"%s","serverid":"%s","lease":"%s","t":%s}\\n' \\
  "$1" "$ip" "$router" "$dns" "$serverid" "$lease" "$(date +%s%3N)" >> ${this.dhcpLog}
case "$1" in bound|renew) ip addr replace "$ip/$mask" dev "$interface" ;; esac
exit 0
`);
    chmodSync(script, 0o755);
    writeFileSync(this.dhcpLog, '');
    // -f foreground, -t: discover retries, -T: seconds between packets, -A: pause after a failed round.
    // A SIGUSR1 renew (busybox 1.35, measured) is one unicast REQUEST, then three broadcast ones, -T apart, then
    // the lease is dropped (deconfig) and udhcpc starts over with a DISCOVER. -T 3 (busybox's default) gives the
    // new master's Kea ~12 s for that; -T 1 gave it ~4 s, which a loaded machine sometimes missed.
    const out = openSync(this.dhcpOut, 'w');
    this.dhcp = this.board.spawn('client', 'busybox', ['udhcpc', '-f', '-i', 'eth0', '-s', script, '-t', '10', '-T', '3', '-A', '3'], { stdio: ['ignore', out, out] });
    closeSync(out);
  }

  /** Ask udhcpc to renew its lease now (its SIGUSR1). */
  renewDhcp(): void { this.dhcp?.kill('SIGUSR1'); }

  stopDhcpClient(): void { this.dhcp?.kill('SIGTERM'); this.dhcp = null; }

  dhcpEvents(): DhcpEvent[] {
    try {
      return readFileSync(this.dhcpLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as DhcpEvent);
    } catch { return []; }
  }

  /** Wait (bounded) for a bound/renew event after `since` (epoch ms). */
  async waitLease(since: number, timeoutMs: number): Promise<DhcpEvent | null> {
    return await poll(() => this.dhcpEvents().find((x) => x.t >= since && (x.event === 'bound' || x.event === 'renew')), timeoutMs, 100);
  }
}

/** Demo plugin: a lease and a DNS answer through the VIP before the power-off, and both again after it. */
export function gatewayPlugin(): DemoPlugin {
  let probes: GatewayProbes;
  let first: { lease: DhcpEvent | null; dns: string[]; snat: string | null } = { lease: null, dns: [], snat: null };
  let after: { lease: DhcpEvent | null; dns: string[]; snat: string | null } = { lease: null, dns: [], snat: null };
  let failback: { dns: string[]; snat: string | null } = { dns: [], snat: null };
  let offAt = 0;
  let renewAt = 0;
  let kea = '';
  return {
    name: 'gateway',
    async setup(ctx) {
      probes = new GatewayProbes(ctx.board);
      await probes.startServer();
      const t0 = Date.now();
      probes.startDhcpClient();
      first = { lease: await probes.waitLease(t0, 30_000), dns: await probes.dns(), snat: await probes.whoami() };
      ctx.say(`gateway: lease ${first.lease?.ip ?? 'NONE'} (router ${first.lease?.router}, dns ${first.lease?.dns}); ` +
        `DNS ${TEST_ZONE.name} -> ${first.dns.join(',') || 'NO ANSWER'}; server sees ${first.snat ?? 'NO CONNECTION'}`);
    },
    async beforePowerOff() { offAt = Date.now(); },
    async afterTakeover(ctx) {
      // The demo's lease is long (an hour), so once the secondary's Kea has taken over, ask the client to renew now
      // (SIGUSR1 = udhcpc's "renew"): its unicast to the server identifier (the dead primary's own address) goes
      // unanswered, and the rebind broadcast that follows reaches the secondary's Kea, as a real client's would at T2.
      // Wait for PARTNER-DOWN (before it, each answer waits for the lease update to the dead peer to fail).
      // One signal only: a second one while a renew is pending makes udhcpc start over with a DISCOVER.
      // Kea 2.2 sees a powered-off partner only when a heartbeat's HTTP request times out (~10 s), so on a loaded
      // machine PARTNER-DOWN can come well after 15 s: wait up to 40 s and say how long it took.
      const waitFrom = Date.now();
      let partnerDown = false;
      for (let i = 0; i < 400 && !partnerDown; i++) {
        partnerDown = (await ctx.status('secondary').catch(() => null))?.dhcp?.ha_state === 'partner-down';
        if (!partnerDown) await sleep(100);
      }
      kea = partnerDown ? `partner-down ${Date.now() - offAt} ms after the power cut` : `NOT in partner-down ${Date.now() - waitFrom} ms after the takeover`;
      ctx.say(`gateway: secondary's Kea ${kea}${partnerDown ? '' : '; renewing anyway'}`);
      renewAt = Date.now();
      probes.renewDhcp();
      const lease = await probes.waitLease(offAt + 1, 40_000);
      after = { lease, dns: await probes.dns(), snat: await probes.whoami() };
      if (!lease || lease.event !== 'renew') ctx.say(`gateway: udhcpc events since the power cut: ${JSON.stringify(probes.dhcpEvents().filter((e) => e.t > offAt))}`);
      ctx.say(`gateway after takeover: renewed ${after.lease?.ip ?? 'NONE'} (${after.lease?.event ?? '-'}); DNS -> ${after.dns.join(',') || 'NO ANSWER'}; server sees ${after.snat ?? 'NO CONNECTION'}`);
    },
    async afterFailback(ctx) {
      failback = { dns: await probes.dns(), snat: await probes.whoami() };
      ctx.say(`gateway after failback: DNS -> ${failback.dns.join(',') || 'NO ANSWER'}; server sees ${failback.snat ?? 'NO CONNECTION'}`);
    },
    async finish() {
      probes.stopDhcpClient();
      const vip = (e: DhcpEvent | null) => !!e && e.router === '192.168.1.1' && e.dns.split(' ').includes('192.168.1.1');
      const dhcpOk = vip(first.lease) && vip(after.lease) && after.lease!.event === 'renew' && first.lease!.ip === after.lease!.ip;
      // When it fails, the report itself says what the client saw (a CI log may show the report but not the story).
      const rel = (e: DhcpEvent) => `${e.event}${e.ip ? ` ${e.ip}` : ''} at +${e.t - renewAt} ms`;
      return {
        dhcp_ok: dhcpOk,
        ...(dhcpOk ? {} : { dhcp_detail: `first ${first.lease ? rel(first.lease) : 'none'}; secondary's Kea ${kea}; since the renew request: ${probes.dhcpEvents().filter((e) => e.t >= renewAt).map(rel).join(', ') || 'no event'}` }),
        dhcp_lease: first.lease?.ip ?? null,
        dns_ok: [first.dns, after.dns, failback.dns].every((a) => a.includes(TEST_ZONE.address)),
        snat_ok: [first.snat, after.snat, failback.snat].every((a) => a === '203.0.113.1'),
      };
    },
  };
}
